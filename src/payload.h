// Panopta-format payloads (CONTRACT §4): the built-in JSON body, the user's
// Template / ClearTemplate, and DetailsURL.
#pragma once

#include <string>

#include "config.h"
#include "event.h"
#include "outage_tracker.h"

namespace xmatters {

class PayloadBuilder {
 public:
  // The integration's templates were checked by parse_config.
  explicit PayloadBuilder(const IntegrationConfig& integration);

  // The request body of one event; always valid JSON, whatever bytes the
  // notification holds.
  std::string build(const Transition& t, const std::string& event_id) const;

 private:
  const IntegrationConfig& integration_;
};

// Checks a Template / ClearTemplate text: expands it with sample values and
// parses the result. Returns "" when it is valid JSON, else jansson's message
// with line and column.
std::string check_template(const std::string& text);

// Replaces invalid UTF-8 sequences with U+FFFD.
std::string sanitize_utf8(const std::string& bytes);

// RFC 3339 UTC: "2026-11-28T11:47:45Z", or with fraction
// "2026-11-28T11:47:45.123456Z".
std::string format_rfc3339(TimePoint t, bool with_fraction = false);

}  // namespace xmatters
