// When a maintenance window (collectd-xmatters(5) MAINTENANCE) covers: its
// weekdays and times of day as wall-clock time in its time zone. Computed
// from the instant asked about each time, so that a step of the system's
// clock changes nothing but the answer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outage/notification.h"  // TimePoint
#include "silence/time_zone.h"

namespace xmatters {

// Weekdays as a bit set, bit d for weekday d, 0 = Sunday.
using Weekdays = std::uint8_t;
inline constexpr Weekdays kEveryDay = 0x7f;

// "mon-fri", "sat,sun", "sun", "fri-mon", full names too; case-insensitive.
// Throws std::invalid_argument saying what is wrong.
Weekdays parse_weekdays(std::string_view text);

// A time of day range, seconds after local midnight. An end at or before
// the start ("22:00-02:00") ends on the next day: the range belongs to
// the day it starts on.
struct TimeRange {
  std::int32_t start = 0, end = 86400;
};

// "02:00-04:30", "22:00-24:00", "23:00-01:00", to the second
// "02:00:30-02:01:15". Throws std::invalid_argument.
TimeRange parse_time_range(std::string_view text);

class WindowSchedule {
 public:
  // times empty: the whole of each day of weekdays.
  WindowSchedule(Weekdays weekdays, std::vector<TimeRange> times, TimeZone zone);

  // Whether the wall clock in the zone shows, at t, a time inside the window.
  bool covers(TimePoint t) const;
  // The first instant after t at which covers() changes, in whole seconds;
  // nullopt when it never does (every day, the whole day).
  std::optional<TimePoint> next_change(TimePoint t) const;

  const TimeZone& zone() const { return zone_; }

 private:
  bool covers_local(std::int64_t local) const;
  bool covers_seconds(std::int64_t t) const { return covers_local(t + zone_.offset_at(t)); }

  Weekdays weekdays_;
  std::vector<TimeRange> times_;
  TimeZone zone_;
};

}  // namespace xmatters
