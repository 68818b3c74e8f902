#include "http_client.h"

#include <curl/curl.h>
#include <jansson.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>

#include "reply.h"
#include "resources.h"

#ifndef XMATTERS_VERSION
#define XMATTERS_VERSION "unknown"
#endif

namespace xmatters {

namespace {

constexpr std::size_t kReplyStart = 200;
// Enough of the reply to find the requestId; the rest is read and dropped.
constexpr std::size_t kReplyKept = 64 * 1024;

struct EasyCleanup {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistFree>;

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<unsigned char>(in[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 0x3f] : '=';
  }
  return out;
}

void global_init() {
  // libcurl's global state must exist before handles are made on several
  // threads; it is never cleaned up, as the plugin may be unloaded while
  // other libcurl users in the process go on.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

// The secrets a URL carries: its user:password and its query values.
void add_url_secrets(const std::string& url, std::vector<std::string>& secrets) {
  const std::size_t scheme = url.find("://");
  const std::size_t authority = scheme == std::string::npos ? 0 : scheme + 3;
  const std::size_t authority_end = url.find_first_of("/?#", authority);
  const std::size_t at = url.rfind('@', authority_end == std::string::npos ? url.size() : authority_end);
  if (at != std::string::npos && at >= authority) {
    const std::string userinfo = url.substr(authority, at - authority);
    secrets.push_back(userinfo);
    const std::size_t colon = userinfo.find(':');
    if (colon != std::string::npos) {
      secrets.push_back(userinfo.substr(colon + 1));
      secrets.push_back(percent_decode(userinfo.substr(colon + 1)));
    }
  }
  const std::size_t q = url.find('?');
  if (q == std::string::npos) return;
  const std::string query = url.substr(q + 1, url.find('#', q) == std::string::npos ? std::string::npos
                                                                                     : url.find('#', q) - q - 1);
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    const std::size_t eq = pair.find('=');
    if (eq != std::string::npos) {
      secrets.push_back(pair.substr(eq + 1));
      secrets.push_back(percent_decode(pair.substr(eq + 1)));
    }
    start = end + 1;
  }
}

bool is_credential_header(const std::string& name) {
  const std::string n = lower(name);
  for (const char* word : {"auth", "key", "token", "secret", "cookie", "password"})
    if (n.find(word) != std::string::npos) return true;
  return false;
}

std::string printable(const std::string& s) {
  std::string out = s.substr(0, kReplyStart);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    else if (u < 0x20 || u > 0x7e) c = '?';
  }
  return out;
}

std::string request_id_of(const std::string& reply) {
  Json j(json_loadb(reply.data(), reply.size(), 0, nullptr));
  const json_t* id = j ? json_object_get(j.get(), "requestId") : nullptr;
  return json_is_string(id) ? json_string_value(id) : "";
}

}  // namespace

struct HttpClient::State {
  const IntegrationConfig& config;
  const std::atomic<bool>* cancel;
  std::unique_ptr<CURL, EasyCleanup> easy;
  Slist fixed_headers;  // every request's headers but the Idempotency-Key
  std::vector<std::string> secrets;  // longest first
  char error[CURL_ERROR_SIZE] = {};
  std::string reply;

  State(const IntegrationConfig& c, const std::atomic<bool>* cancel_flag) : config(c), cancel(cancel_flag) {}

  static std::size_t on_data(char* data, std::size_t size, std::size_t n, void* self) {
    auto& reply = static_cast<State*>(self)->reply;
    const std::size_t len = size * n;
    if (reply.size() < kReplyKept) reply.append(data, std::min(len, kReplyKept - reply.size()));
    return len;
  }

  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto* cancel = static_cast<State*>(self)->cancel;
    return cancel != nullptr && cancel->load() ? 1 : 0;
  }
};

HttpClient::HttpClient(const IntegrationConfig& integration, const std::atomic<bool>* cancel)
    : state_(std::make_unique<State>(integration, cancel)) {
  global_init();
  state_->easy.reset(curl_easy_init());
  if (!state_->easy) throw std::runtime_error("cannot create a libcurl handle");
  CURL* h = state_->easy.get();
  const auto& c = integration;

  bool ok = true;
  auto set = [&](CURLcode rc) { ok = ok && rc == CURLE_OK; };
  set(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));  // several threads; no SIGALRM
#if LIBCURL_VERSION_NUM >= 0x075700
  // A request cut short (Timeout, shutdown) does not wait for a hung DNS
  // look-up to end: collectd's shutdown is bounded by Timeout.
  set(curl_easy_setopt(h, CURLOPT_QUICK_EXIT, 1L));
#endif
  set(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, state_->error));
  set(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(c.timeout.count())));
  set(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(c.timeout.count())));
  set(curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L));
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c.verify_peer ? 1L : 0L));
  set(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c.verify_host ? 2L : 0L));
  if (c.ca_cert) set(curl_easy_setopt(h, CURLOPT_CAINFO, c.ca_cert->c_str()));
  if (c.client_cert) set(curl_easy_setopt(h, CURLOPT_SSLCERT, c.client_cert->c_str()));
  if (c.client_key) set(curl_easy_setopt(h, CURLOPT_SSLKEY, c.client_key->c_str()));
  // An empty string is libcurl's "no proxy, whatever the environment says".
  if (c.proxy) set(curl_easy_setopt(h, CURLOPT_PROXY, c.proxy->c_str()));
  if (c.user) {
    set(curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC)));
    set(curl_easy_setopt(h, CURLOPT_USERNAME, c.user->c_str()));
    set(curl_easy_setopt(h, CURLOPT_PASSWORD, c.password ? c.password->c_str() : ""));
  }
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &State::on_data));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, state_.get()));
  set(curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L));
  set(curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &State::on_progress));
  set(curl_easy_setopt(h, CURLOPT_XFERINFODATA, state_.get()));
  if (!ok) throw std::runtime_error("libcurl refused an option (is it older than 7.85?)");

  // Ours first, unless a configured Header replaces one of them.
  auto configured = [&](const char* name) {
    const std::string prefix = lower(name) + ":";
    return std::any_of(c.headers.begin(), c.headers.end(),
                       [&](const std::string& h) { return lower(h).rfind(prefix, 0) == 0; });
  };
  std::vector<std::string> lines;
  if (!configured("Content-Type")) lines.emplace_back("Content-Type: application/json");
  if (!configured("User-Agent")) lines.emplace_back("User-Agent: collectd-xmatters/" XMATTERS_VERSION);
  // Waiting for "100 Continue" only delays small bodies.
  lines.emplace_back("Expect:");
  lines.insert(lines.end(), c.headers.begin(), c.headers.end());
  for (const auto& line : lines) {
    curl_slist* next = curl_slist_append(state_->fixed_headers.get(), line.c_str());
    if (next == nullptr) throw std::bad_alloc();
    state_->fixed_headers.release();
    state_->fixed_headers.reset(next);
  }

  auto& secrets = state_->secrets;
  if (c.password) secrets.push_back(*c.password);
  // What the Authorization header carries, which a reply may echo.
  if (c.user && c.password) secrets.push_back(base64(*c.user + ":" + *c.password));
  add_url_secrets(c.outage_url, secrets);
  add_url_secrets(c.clear_url, secrets);
  if (c.proxy) add_url_secrets(*c.proxy, secrets);
  for (const auto& h : c.headers) {
    const std::size_t colon = h.find(':');
    if (colon == std::string::npos || !is_credential_header(h.substr(0, colon))) continue;
    const std::size_t v = h.find_first_not_of(" \t", colon + 1);
    if (v == std::string::npos) continue;
    secrets.push_back(h.substr(v));
    // "Bearer TOKEN": a reply that echoes the token alone must not show it.
    const std::size_t space = h.find_first_of(" \t", v);
    if (space != std::string::npos) {
      const std::size_t token = h.find_first_not_of(" \t", space);
      if (token != std::string::npos) secrets.push_back(h.substr(token));
    }
  }
  secrets.erase(std::remove_if(secrets.begin(), secrets.end(), [](const std::string& s) { return s.empty(); }),
                secrets.end());
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

HttpClient::~HttpClient() = default;

std::string HttpClient::scrub(std::string text) const {
  for (const auto& secret : state_->secrets) {
    for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
      text.replace(at, secret.size(), "***");
  }
  return text;
}

HttpResult HttpClient::post(const std::string& url, const std::string& body, const std::string& idempotency_key) {
  CURL* h = state_->easy.get();
  HttpResult result;
  state_->reply.clear();
  state_->error[0] = '\0';

  // The list is copied so that the per-request line can go on its end; the
  // fixed part stays shared by every request of this client.
  Slist headers;
  for (const curl_slist* l = state_->fixed_headers.get(); l != nullptr; l = l->next) {
    curl_slist* next = curl_slist_append(headers.get(), l->data);
    if (next == nullptr) throw std::bad_alloc();
    headers.release();
    headers.reset(next);
  }
  const std::string key_line = "Idempotency-Key: " + idempotency_key;
  curl_slist* with_key = curl_slist_append(headers.get(), key_line.c_str());
  if (with_key == nullptr) throw std::bad_alloc();
  headers.release();
  headers.reset(with_key);

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));

  const CURLcode rc = curl_easy_perform(h);
  // The handle must not point at the list or body after they are gone.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, nullptr);

  if (rc != CURLE_OK) {
    result.error = scrub(state_->error[0] != '\0' ? state_->error : curl_easy_strerror(rc));
    result.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    result.cancelled = rc == CURLE_ABORTED_BY_CALLBACK;
    return result;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  curl_header* retry_after = nullptr;
  if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &retry_after) == CURLHE_OK && retry_after != nullptr)
    result.retry_after = parse_retry_after(retry_after->value, std::chrono::system_clock::now());
  result.reply_start = printable(scrub(state_->reply.substr(0, kReplyStart * 2)));
  if (result.status >= 200 && result.status < 300) result.request_id = request_id_of(state_->reply);
  return result;
}

}  // namespace xmatters
