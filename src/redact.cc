#include "redact.h"

#include <algorithm>
#include <string_view>

namespace xmatters {
namespace {

// Masks the value of every name=value item of a query or fragment, keeping
// the names so that a log line still says which parameter was there. An
// item without '=' may itself be a bare key or token, so it is masked whole.
// An empty value stays empty: it hides nothing and tells an operator that
// the parameter was left blank.
void append_masked_items(std::string& out, std::string_view items) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = items.find_first_of("&;", start);
    const std::string_view item = items.substr(start, end == std::string_view::npos ? end : end - start);
    const std::size_t eq = item.find('=');
    if (eq != std::string_view::npos) {
      out.append(item.substr(0, eq + 1));
      if (eq + 1 < item.size()) out += "***";
    } else if (!item.empty()) {
      out += "***";
    }
    if (end == std::string_view::npos) return;
    out += items[end];
    start = end + 1;
  }
}

}  // namespace

std::string redact_url(const std::string& url) {
  const std::string_view u(url);
  std::string out;
  out.reserve(u.size());

  // The authority starts after "scheme://"; a string without one (a proxy
  // given as "user:pw@proxy:3128") is treated as starting with it.
  // A "://" after the first '/', '?', '#' or '@' is not the scheme's: it
  // is in a query or a password, and the authority still starts at 0.
  std::size_t sep = u.find("://");
  if (sep != std::string_view::npos && u.find_first_of("/?#@") < sep) sep = std::string_view::npos;
  const std::size_t authority = sep == std::string_view::npos ? 0 : sep + 3;
  std::size_t authority_end = u.find_first_of("/?#", authority);
  if (authority_end == std::string_view::npos) authority_end = u.size();
  const std::size_t at = u.substr(authority, authority_end - authority).rfind('@');

  out.append(u.substr(0, authority));
  const std::size_t host = at == std::string_view::npos ? authority : authority + at + 1;

  const std::size_t query = u.find('?', authority_end);
  const std::size_t fragment = u.find('#', authority_end);
  const std::size_t path_end = std::min(query, fragment);
  out.append(u.substr(host, (path_end == std::string_view::npos ? u.size() : path_end) - host));

  if (query != std::string_view::npos && query < fragment) {
    out += '?';
    append_masked_items(out, u.substr(query + 1, fragment == std::string_view::npos ? fragment : fragment - query - 1));
  }
  if (fragment != std::string_view::npos) {
    out += '#';
    append_masked_items(out, u.substr(fragment + 1));
  }
  return out;
}

}  // namespace xmatters
