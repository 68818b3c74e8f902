#include "util/url.h"

#include <curl/curl.h>

#include <memory>
#include <new>
#include <stdexcept>
#include <string_view>

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

}  // namespace xmatters
