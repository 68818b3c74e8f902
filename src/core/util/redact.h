// What the plugin shows of its secrets: URLs through redact_url (url.h,
// included for it), and a scrubber that takes every configured secret out of
// text that came from elsewhere (replies, errors).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/url.h"  // redact_url

namespace xmatters {

struct IntegrationConfig;

// Every secret of an integration, in the forms a reply may echo it: the
// password (as given, and as basic auth's base64 of "user:password"), every
// Header value (and the token of "Scheme token"), the passwords and query
// values of OutageURL, ClearURL and Proxy; each also percent-encoded and
// JSON-escaped. Values shorter than kMinSecret are left alone: they would
// mask every occurrence of ordinary text ("1", "on") and protect nothing.
class Scrubber {
 public:
  static constexpr std::size_t kMinSecret = 4;

  explicit Scrubber(const IntegrationConfig& integration);

  // text with every occurrence of a secret replaced by "***".
  std::string scrub(std::string_view text) const;

 private:
  void add(const std::string& secret);
  std::vector<std::string> secrets_;  // longest first
};

}  // namespace xmatters
