#include "delivery/http_client.h"

#include <curl/curl.h>
#include <jansson.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>

#include "util/redact.h"
#include "util/resources.h"
#include "util/text.h"

#ifndef XMATTERS_VERSION
#define XMATTERS_VERSION "unknown"
#endif

namespace xmatters {

namespace {

constexpr std::size_t kReplyStart = 200;
// Enough of the reply to find the requestId; the rest is read and dropped.
constexpr std::size_t kReplyKept = 64 * 1024;
// How long the body of a 2xx reply may take after its status line.
constexpr auto kBodyGrace = std::chrono::seconds(2);

bool is_success(long status) { return status >= 200 && status < 300; }

struct EasyCleanup {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistFree>;

void global_init() {
  // libcurl's global state must exist before handles are made on several
  // threads; it is never cleaned up, as the plugin may be unloaded while
  // other libcurl users in the process go on.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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

struct HttpClient::Transfer {
  const IntegrationConfig& config;
  const std::atomic<bool>* cancel;
  std::unique_ptr<CURL, EasyCleanup> easy;
  Slist fixed_headers;  // every request's headers but the Idempotency-Key
  Scrubber scrubber;
  char error[CURL_ERROR_SIZE] = {};
  std::string reply;
  // The final (non-1xx) status line of the reply in progress, and when it
  // came: from then on the event is delivered, whatever the body does.
  long final_status = 0;
  std::chrono::steady_clock::time_point status_time;

  Transfer(const IntegrationConfig& c, const std::atomic<bool>* cancel_flag)
      : config(c), cancel(cancel_flag), scrubber(c) {}

  static std::size_t on_header(char* data, std::size_t size, std::size_t n, void* self) {
    auto& s = *static_cast<Transfer*>(self);
    const std::size_t len = size * n;
    // "HTTP/1.1 202 Accepted" or "HTTP/2 202"; libcurl passes each status
    // line of the transfer (a 100 Continue's too) before its headers.
    const std::string_view line(data, len);
    if (line.rfind("HTTP/", 0) == 0) {
      const std::size_t sp = line.find(' ');
      long status = 0;
      for (std::size_t i = sp + 1; sp != std::string_view::npos && i < line.size() && i < sp + 4; ++i)
        status = line[i] >= '0' && line[i] <= '9' ? status * 10 + (line[i] - '0') : 0;
      if (status >= 200) {
        s.final_status = status;
        s.status_time = std::chrono::steady_clock::now();
      }
    }
    return len;
  }

  static std::size_t on_data(char* data, std::size_t size, std::size_t n, void* self) {
    auto& reply = static_cast<Transfer*>(self)->reply;
    const std::size_t len = size * n;
    if (reply.size() < kReplyKept) reply.append(data, std::min(len, kReplyKept - reply.size()));
    return len;
  }

  // libcurl calls it about once a second at least, and on every chunk.
  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto& s = *static_cast<const Transfer*>(self);
    if (s.cancel != nullptr && s.cancel->load()) return 1;
    // A 2xx is the delivery: its body (for the requestId) gets a short
    // while, so that a body that stalls neither holds the connection until
    // Timeout nor makes the event look undelivered and sent again.
    return is_success(s.final_status) && std::chrono::steady_clock::now() - s.status_time > kBodyGrace ? 1 : 0;
  }
};

HttpClient::HttpClient(const IntegrationConfig& integration, const std::atomic<bool>* cancel)
    : transfer_(std::make_unique<Transfer>(integration, cancel)) {
  global_init();
  transfer_->easy.reset(curl_easy_init());
  if (!transfer_->easy) throw std::runtime_error("cannot create a libcurl handle");
  CURL* h = transfer_->easy.get();
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
  set(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, transfer_->error));
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
  set(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::on_data));
  set(curl_easy_setopt(h, CURLOPT_WRITEDATA, transfer_.get()));
  // A proxy's "200 Connection established" is not the reply: on_header
  // must see the server's status lines only.
  set(curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L));
  set(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::on_header));
  set(curl_easy_setopt(h, CURLOPT_HEADERDATA, transfer_.get()));
  set(curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L));
  set(curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress));
  set(curl_easy_setopt(h, CURLOPT_XFERINFODATA, transfer_.get()));
  if (!ok) throw std::runtime_error("libcurl refused an option (is it older than 7.85?)");

  // Ours first, unless a configured Header replaces one of them.
  auto configured = [&](const char* name) {
    const std::string prefix = ascii_lower(name) + ":";
    return std::any_of(c.headers.begin(), c.headers.end(),
                       [&](const std::string& h) { return ascii_lower(h).rfind(prefix, 0) == 0; });
  };
  std::vector<std::string> lines;
  if (!configured("Content-Type")) lines.emplace_back("Content-Type: application/json");
  if (!configured("User-Agent")) lines.emplace_back("User-Agent: collectd-xmatters/" XMATTERS_VERSION);
  // Waiting for "100 Continue" only delays small bodies.
  lines.emplace_back("Expect:");
  lines.insert(lines.end(), c.headers.begin(), c.headers.end());
  for (const auto& line : lines) {
    curl_slist* next = curl_slist_append(transfer_->fixed_headers.get(), line.c_str());
    if (next == nullptr) throw std::bad_alloc();
    transfer_->fixed_headers.release();
    transfer_->fixed_headers.reset(next);
  }

}

HttpClient::~HttpClient() = default;

std::string HttpClient::scrub(std::string_view text) const { return transfer_->scrubber.scrub(text); }

HttpResult HttpClient::post(const std::string& url, const std::string& body, const std::string& idempotency_key) {
  CURL* h = transfer_->easy.get();
  HttpResult result;
  transfer_->reply.clear();
  transfer_->error[0] = '\0';
  transfer_->final_status = 0;

  // The list is copied so that the per-request line can go on its end; the
  // fixed part stays shared by every request of this client.
  Slist headers;
  for (const curl_slist* l = transfer_->fixed_headers.get(); l != nullptr; l = l->next) {
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

  // A 2xx status line is the delivery (collectd-xmatters(5) DELIVERY), even when the body
  // then stalled (cut short above), broke off or timed out.
  if (rc != CURLE_OK && !is_success(transfer_->final_status)) {
    result.error = scrub(transfer_->error[0] != '\0' ? transfer_->error : curl_easy_strerror(rc));
    result.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    result.cancelled = rc == CURLE_ABORTED_BY_CALLBACK;
    return result;
  }
  result.status = transfer_->final_status;
  result.received = std::chrono::system_clock::now();
  if (result.status == 0) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  if (is_success(result.status)) {
    if (rc == CURLE_OK) result.request_id = request_id_of(transfer_->reply);
    return result;
  }
  curl_header* retry_after = nullptr;
  if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &retry_after) == CURLHE_OK && retry_after != nullptr)
    result.retry_after = retry_after->value;
  // The whole kept reply is scrubbed before it is cut: a secret across the
  // cut would otherwise show its first part.
  result.reply_start = printable(scrub(transfer_->reply));
  return result;
}

}  // namespace xmatters
