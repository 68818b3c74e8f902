// collectd hands over whatever bytes its plugins put in a notification; JSON
// must be UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace xmatters {

// Whether bytes is well-formed UTF-8 (no overlong forms, surrogates, or code
// points above U+10FFFF).
bool valid_utf8(std::string_view bytes);

// bytes with each ill-formed sequence replaced by U+FFFD, one per maximal
// subpart, as Unicode recommends.
std::string sanitize_utf8(const std::string& bytes);

}  // namespace xmatters
