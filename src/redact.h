// What the plugin shows of its secrets: URLs as libcurl parses them (one
// parser for checking, sending and logging), and a scrubber that takes every
// configured secret out of text that came from elsewhere (replies, errors).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace xmatters {

struct IntegrationConfig;

// A URL as libcurl's curl_url() reads it: the parser that the requests use.
struct UrlParts {
  std::string scheme;    // lower case
  std::string host;      // IPv6 in brackets
  std::string user;      // percent-decoded; "" when absent
  std::string password;  // percent-decoded; "" when absent
  std::vector<std::string> query_values;  // percent-decoded, of every name=value (or bare item)
};

// Throws std::invalid_argument when libcurl refuses the URL; the message is
// libcurl's reason and never contains any part of the URL.
// default_scheme is put in front of a URL without "scheme://" ("" refuses it).
UrlParts parse_url(const std::string& url, const char* default_scheme = "");

// The URL with its password and every query (and fragment) value replaced by
// "***", so that it can be logged; the user name stays, as it tells which
// account is used: redact_url("https://u:pw@h/p?apiKey=K&a=b") is
// "https://u:***@h/p?apiKey=***&a=***".
// A URL libcurl cannot parse is shown as "***": nothing in it can be told
// apart from a secret.
std::string redact_url(const std::string& url);

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
