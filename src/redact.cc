#include "redact.h"

#include <curl/curl.h>
#include <jansson.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>

#include "config.h"
#include "resources.h"
#include "text.h"

namespace xmatters {
namespace {

struct CurluCleanup {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using Curlu = std::unique_ptr<CURLU, CurluCleanup>;

struct CurlFree {
  void operator()(char* p) const { curl_free(p); }
};
using CurlString = std::unique_ptr<char, CurlFree>;

bool has_scheme(const std::string& url) { return url.find("://") != std::string::npos; }

// The URL parsed, or the reason libcurl gives for refusing it.
Curlu parse(const std::string& url, CURLUcode& rc) {
  Curlu u(curl_url());
  if (!u) throw std::bad_alloc();
  // Schemes are checked by the callers: a proxy's socks5:// is not one of
  // the protocols libcurl's URL parser knows.
  rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME);
  return u;
}

// The part, "" when the URL has none.
std::string part(CURLU* u, CURLUPart which, unsigned int flags = 0) {
  char* p = nullptr;
  if (curl_url_get(u, which, &p, flags) != CURLUE_OK || p == nullptr) return "";
  const CurlString owned(p);
  return owned.get();
}

std::string percent_decode(std::string_view s) {
  int n = 0;
  const CurlString out(curl_easy_unescape(nullptr, s.data(), static_cast<int>(s.size()), &n));
  if (!out) throw std::bad_alloc();
  return std::string(out.get(), static_cast<std::size_t>(n));
}

// Calls f(name_and_equals, value) for each item of a query or fragment
// ("a=1&b;c=2"): an item without '=' is all value, as it may itself be a
// bare key or token; f(separator) between them.
template <typename Item, typename Separator>
void for_each_item(std::string_view items, Item&& item, Separator&& separator) {
  for (;;) {
    const std::size_t end = items.find_first_of("&;");
    const std::string_view it = items.substr(0, end);
    const std::size_t eq = it.find('=');
    if (eq == std::string_view::npos)
      item(std::string_view(), it);
    else
      item(it.substr(0, eq + 1), it.substr(eq + 1));
    if (end == std::string_view::npos) return;
    separator(items[end]);
    items.remove_prefix(end + 1);
  }
}

// The names are kept, so that a log line still says which parameter was
// there; an empty value stays empty: it hides nothing and tells an operator
// that the parameter was left blank.
std::string masked_items(std::string_view items) {
  std::string out;
  for_each_item(
      items,
      [&](std::string_view name, std::string_view value) {
        out += name;
        if (!value.empty()) out += "***";
      },
      [&](char sep) { out += sep; });
  return out;
}

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

// s as the inside of a JSON string, as a reply's encoder may write it.
std::string json_escaped(const std::string& s, std::size_t flags) {
  const Json j(json_stringn(s.data(), s.size()));
  if (!j) return s;  // not UTF-8: no JSON encoder writes it
  const DumpedJson text(json_dumps(j.get(), JSON_ENCODE_ANY | flags));
  if (!text) throw std::bad_alloc();
  const std::string quoted = text.get();
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace

UrlParts parse_url(const std::string& url, const char* default_scheme) {
  CURLUcode rc;
  const bool prefixed = *default_scheme != '\0' && !has_scheme(url);
  const Curlu u = parse(prefixed ? std::string(default_scheme) + "://" + url : url, rc);
  if (rc != CURLUE_OK) throw std::invalid_argument(curl_url_strerror(rc));
  UrlParts parts;
  parts.scheme = part(u.get(), CURLUPART_SCHEME);  // libcurl lower-cases it
  parts.host = part(u.get(), CURLUPART_HOST);
  parts.user = part(u.get(), CURLUPART_USER, CURLU_URLDECODE);
  parts.password = part(u.get(), CURLUPART_PASSWORD, CURLU_URLDECODE);
  for_each_item(
      part(u.get(), CURLUPART_QUERY), [&](std::string_view, std::string_view value) {
        if (!value.empty()) parts.query_values.push_back(percent_decode(value));
      },
      [](char) {});
  return parts;
}

std::string redact_url(const std::string& url) {
  if (url.empty()) return url;
  // A proxy may be given without its scheme; it is shown as it was given.
  const bool prefixed = !has_scheme(url);
  CURLUcode rc;
  const Curlu u = parse(prefixed ? "http://" + url : url, rc);
  if (rc != CURLUE_OK) return "***";
  if (!part(u.get(), CURLUPART_PASSWORD).empty()) curl_url_set(u.get(), CURLUPART_PASSWORD, "***", 0);
  for (const CURLUPart p : {CURLUPART_QUERY, CURLUPART_FRAGMENT}) {
    const std::string items = part(u.get(), p);
    if (!items.empty()) curl_url_set(u.get(), p, masked_items(items).c_str(), 0);
  }
  std::string out = part(u.get(), CURLUPART_URL);
  if (out.empty()) return "***";
  if (prefixed && out.rfind("http://", 0) == 0) out.erase(0, 7);
  return out;
}

Scrubber::Scrubber(const IntegrationConfig& c) {
  if (c.password) add(*c.password);
  // What the Authorization header of basic auth carries.
  if (c.user && c.password) add(base64(*c.user + ":" + *c.password));
  // A proxy may be given without its scheme.
  std::vector<std::pair<const std::string*, const char*>> urls = {{&c.outage_url, ""}, {&c.clear_url, ""}};
  if (c.proxy && !c.proxy->empty()) urls.emplace_back(&*c.proxy, "http");
  for (const auto& [url, default_scheme] : urls) {
    UrlParts parts;
    try {
      parts = parse_url(*url, default_scheme);
    } catch (const std::invalid_argument&) {
      continue;  // parse_config refuses it; libcurl cannot send it either
    }
    add(parts.password);
    if (!parts.user.empty() && !parts.password.empty()) add(base64(parts.user + ":" + parts.password));
    for (const auto& v : parts.query_values) add(v);
  }
  for (const auto& h : c.headers) {
    const std::size_t colon = h.find(':');
    const std::size_t v = colon == std::string::npos ? colon : h.find_first_not_of(" \t", colon + 1);
    if (v == std::string::npos) continue;
    const std::string value = h.substr(v, h.find_last_not_of(" \t") + 1 - v);
    add(value);
    // "Bearer TOKEN": a reply that echoes the token alone must not show it.
    const std::size_t space = value.find_first_of(" \t");
    if (space != std::string::npos) add(value.substr(value.find_first_not_of(" \t", space)));
  }
  std::sort(secrets_.begin(), secrets_.end());
  secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void Scrubber::add(const std::string& secret) {
  if (secret.size() < kMinSecret) return;
  secrets_.push_back(secret);
  secrets_.push_back(percent_encoded(secret));
  secrets_.push_back(json_escaped(secret, 0));
  secrets_.push_back(json_escaped(secret, JSON_ESCAPE_SLASH));
  secrets_.push_back(json_escaped(secret, JSON_ESCAPE_SLASH | JSON_ENSURE_ASCII));
}

std::string Scrubber::scrub(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_)
    for (std::size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 3))
      out.replace(at, secret.size(), "***");
  return out;
}

}  // namespace xmatters
