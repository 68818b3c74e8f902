// Panopta-format payloads (collectd-xmatters(5) PAYLOAD): the built-in JSON body, the user's
// Template / ClearTemplate, and DetailsURL. All three read one set of macro
// values computed per event. Only std::bad_alloc is ever thrown.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "config.h"
#include "event.h"
#include "outage_tracker.h"
#include "utf8.h"  // sanitize_utf8, part of what a payload guarantees

namespace xmatters {

class PayloadBuilder {
 public:
  // The integration's templates were checked by parse_config.
  explicit PayloadBuilder(const IntegrationConfig& integration);

  // The request body of one event; always valid JSON, whatever bytes the
  // notification holds. Uses the integration's clear_template for a clear
  // and outage_template for an outage event when set; an expansion that is
  // not JSON (check_template keeps that from happening) gives the built-in
  // body instead.
  std::string build(const Transition& t, const std::string& event_id) const;

 private:
  const IntegrationConfig& integration_;
};

// Checks a Template / ClearTemplate text: expands it with sample values (an
// awkward set: quotes, backslashes, control characters, non-ASCII, several
// targets; and an empty set: "" values, no target) and parses the result.
// Returns "" when it is valid JSON, else jansson's message with the line and
// column in the template text, e.g. "not valid JSON once expanded: '}'
// expected near end of file (line 3, column 0)".
std::string check_template(const std::string& text);


// The items and reasons of one notification, as its payload states them
// (raw bytes, sanitized when written); kept for each member of a host
// outage, whose payloads list them.
std::string notification_items(const Notification& n);
std::string notification_reasons(const Notification& n);

// A host or flood outage's payload lists at most this many members in
// `services`, `items` and `reasons`, and only while the list stays within
// kJoinedMax bytes, then " and N more" (collectd-xmatters(5), OUTAGES):
// ten members of collectd's longest names, each byte escaped as "\u0001",
// would take the body past kMaxBody.
inline constexpr std::size_t kMembersListed = 10;
inline constexpr std::size_t kJoinedMax = 1536;

// The most bytes a request body has: a template that could expand to more is
// refused at start-up, and the built-in payload leaves out meta items beyond
// it (collectd-xmatters(5), PAYLOAD).
inline constexpr std::size_t kMaxBody = 64 * 1024;

// The most bytes DetailsURL may expand to (with the longest, least valid
// values collectd allows): a longer one is refused at start-up, so that the
// built-in payload keeps within kMaxBody.
inline constexpr std::size_t kDetailsUrlMax = 16 * 1024;

// The most bytes text can expand to for an event of integration, from
// collectd's field limits (names 128 bytes, message 256), with every byte
// of every value escaped as long as JSON escapes it.
std::size_t template_worst_case(const std::string& text, const IntegrationConfig& integration);

// The same for integration's DetailsURL (0 when it has none).
std::size_t details_url_worst_case(const IntegrationConfig& integration);

// RFC 3339 UTC: "2026-11-28T11:47:45Z", or with fraction
// "2026-11-28T11:47:45.123456Z" (microseconds). Rounds down, also before
// the epoch.
std::string format_rfc3339(TimePoint t, bool with_fraction = false);

// The same into buf, without an allocation; returns the text, which lives
// in buf.
using Rfc3339Buffer = std::array<char, 32>;
std::string_view format_rfc3339(TimePoint t, bool with_fraction, Rfc3339Buffer& buf);

}  // namespace xmatters
