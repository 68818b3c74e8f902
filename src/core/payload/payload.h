// Panopta-format payloads (collectd-xmatters(5) PAYLOAD): the built-in JSON body, the user's
// Template / ClearTemplate, and DetailsURL. All three read one set of macro
// values computed per event. Only std::bad_alloc is ever thrown.
#pragma once

#include <cstddef>
#include <string>

#include "config/config.h"
#include "outage/event.h"
#include "outage/outage_tracker.h"
#include "payload/payload_limits.h"
#include "util/utf8.h"  // sanitize_utf8, part of what a payload guarantees

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

// The most bytes text can expand to for an event of integration, from
// collectd's field limits (names 128 bytes, message 256), with every byte
// of every value escaped as long as JSON escapes it.
std::size_t template_worst_case(const std::string& text, const IntegrationConfig& integration);

// The same for integration's DetailsURL (0 when it has none).
std::size_t details_url_worst_case(const IntegrationConfig& integration);

}  // namespace xmatters
