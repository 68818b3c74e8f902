// URLs as libcurl's curl_url() reads them: one parser for checking
// (parse_config), sending (libcurl itself) and logging (redact_url).
#pragma once

#include <string>
#include <vector>

namespace xmatters {

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

}  // namespace xmatters
