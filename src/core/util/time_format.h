// Times as the plugin writes them: in payloads, dead letters and the
// control channel's answers.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "outage/notification.h"  // TimePoint

namespace xmatters {

// RFC 3339 UTC: "2026-11-28T11:47:45Z", or with fraction
// "2026-11-28T11:47:45.123456Z" (microseconds). Rounds down, also before
// the epoch.
std::string format_rfc3339(TimePoint t, bool with_fraction = false);

// The same into buf, without an allocation; returns the text, which lives
// in buf.
using Rfc3339Buffer = std::array<char, 32>;
std::string_view format_rfc3339(TimePoint t, bool with_fraction, Rfc3339Buffer& buf);

}  // namespace xmatters
