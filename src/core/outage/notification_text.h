// What a payload says of one notification in words (collectd-xmatters(5),
// PAYLOAD): its items (the data source) and its reasons (which threshold
// the value crossed). The tracker keeps both for each member of a host
// outage, whose payloads list them; raw bytes, sanitized when written.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "outage/notification.h"

namespace xmatters {

// collectd's field limits: names (host, plugin, type, their instances, data
// sources) 128 bytes, the message 256.
inline constexpr std::size_t kNameMax = 128, kMessageMax = 256;

// The DataSource meta item, cut to kNameMax bytes; "" when there is none.
std::string_view notification_data_source(const Notification& n);
std::string notification_items(const Notification& n);

// One short sentence: which threshold the value crossed, "no data for N s"
// for collectd's missing-value FAILURE, or else collectd's own message.
std::string notification_reasons(const Notification& n);

// The CurrentValue meta item, unless it is NaN (collectd's "no value").
std::optional<double> current_value(const Notification& n);

// %g-like (95, 0.5, 1e+06) and locale-independent; a whole number below
// 1e15 is written out (1234567).
std::string compact_number(double v);

}  // namespace xmatters
