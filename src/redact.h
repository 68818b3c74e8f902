#pragma once

#include <string>

namespace xmatters {

// The URL with every query value replaced by "***" and any user:password@
// removed, so that it can be logged: redact_url("https://h/p?apiKey=K&a=b")
// is "https://h/p?apiKey=***&a=***".
std::string redact_url(const std::string& url);

}  // namespace xmatters
