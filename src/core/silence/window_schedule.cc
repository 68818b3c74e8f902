#include "silence/window_schedule.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "util/text.h"

namespace xmatters {

namespace {

constexpr std::int64_t kDay = 86400;

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int weekday_of(std::string_view name) {
  static const char* const kNames[] = {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
  const std::string n = ascii_lower(trim(name));
  for (int d = 0; d < 7; ++d) {
    const std::string full = kNames[d];
    if (n == full || n == full.substr(0, 3)) return d;
  }
  throw std::invalid_argument("\"" + std::string(trim(name)) + "\" is not a weekday (sun, mon, tue, wed, thu, fri, sat)");
}

// "hh:mm", or "hh:mm:ss" to the second, as seconds after midnight; 24:00
// only where allowed.
std::int32_t time_of_day(std::string_view text, bool allow_24) {
  text = trim(text);
  const bool ok = (text.size() == 5 || (text.size() == 8 && text[5] == ':')) && text[2] == ':' &&
                  std::all_of(text.begin(), text.end(), [](char c) { return c == ':' || (c >= '0' && c <= '9'); }) &&
                  std::count(text.begin(), text.end(), ':') == static_cast<long>(text.size() / 3);
  if (!ok) throw std::invalid_argument("\"" + std::string(text) + "\" is not a time of day hh:mm");
  const auto two = [&](std::size_t at) { return (text[at] - '0') * 10 + (text[at + 1] - '0'); };
  const int h = two(0), m = two(3), sec = text.size() == 8 ? two(6) : 0;
  if (m > 59 || sec > 59 || h > 24 || (h == 24 && (m != 0 || sec != 0 || !allow_24)))
    throw std::invalid_argument("\"" + std::string(text) + "\" is not a time of day (00:00 to 23:59" +
                                (allow_24 ? ", or 24:00 as an end)" : ")"));
  return h * 3600 + m * 60 + sec;
}

}  // namespace

Weekdays parse_weekdays(std::string_view text) {
  Weekdays days = 0;
  if (trim(text).empty()) throw std::invalid_argument("expects weekdays such as \"mon-fri\" or \"sat,sun\"");
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    const std::size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      days |= static_cast<Weekdays>(1u << weekday_of(item));
    } else {
      // A range may wrap around the week: "fri-mon".
      const int first = weekday_of(item.substr(0, dash)), last = weekday_of(item.substr(dash + 1));
      for (int d = first;; d = (d + 1) % 7) {
        days |= static_cast<Weekdays>(1u << d);
        if (d == last) break;
      }
    }
    pos = comma + 1;
  }
  return days;
}

TimeRange parse_time_range(std::string_view text) {
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos)
    throw std::invalid_argument("expects a range of times of day such as \"02:00-04:30\"");
  TimeRange r{time_of_day(text.substr(0, dash), false), time_of_day(text.substr(dash + 1), true)};
  if (r.start == r.end) throw std::invalid_argument("is empty: it starts where it ends");
  return r;
}

WindowSchedule::WindowSchedule(Weekdays weekdays, std::vector<TimeRange> times, TimeZone zone)
    : weekdays_(weekdays), times_(std::move(times)), zone_(std::move(zone)) {
  if (times_.empty()) times_.push_back(TimeRange{0, static_cast<std::int32_t>(kDay)});
}

bool WindowSchedule::covers_local(std::int64_t local) const {
  const std::int64_t day = floor_div(local, kDay);
  const std::int64_t tod = local - day * kDay;
  const int wd = weekday_from_days(day);
  const bool today = (weekdays_ >> wd) & 1;
  const bool yesterday = (weekdays_ >> ((wd + 6) % 7)) & 1;
  for (const TimeRange& r : times_) {
    if (r.start < r.end) {
      if (today && tod >= r.start && tod < r.end) return true;
    } else if ((today && tod >= r.start) || (yesterday && tod < r.end)) {  // crosses midnight
      return true;
    }
  }
  return false;
}

bool WindowSchedule::covers(TimePoint t) const {
  return covers_seconds(std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count());
}

// The wall clock moves linearly between two transitions of the zone, so
// within one such segment coverage can change only where the local time
// crosses a range's start or end or midnight; at a transition it can
// change too (a jump over or back into a range). Every candidate is
// checked by covers(), so a candidate that changes nothing costs nothing.
std::optional<TimePoint> WindowSchedule::next_change(TimePoint t) const {
  const std::int64_t now = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
  const bool was = covers_seconds(now);
  // A weekly pattern that did not change within eight days never does.
  const std::int64_t horizon = now + 8 * kDay;
  std::vector<std::int64_t> boundaries{0};
  for (const TimeRange& r : times_) {
    boundaries.push_back(r.start);
    boundaries.push_back(r.end % kDay);
  }
  std::int64_t cur = now;
  while (cur < horizon) {
    const std::optional<std::int64_t> transition = zone_.next_transition(cur);
    const std::int64_t segment_end = transition ? std::min(*transition, horizon) : horizon;
    const std::int32_t offset = zone_.offset_at(cur);
    std::vector<std::int64_t> candidates;
    for (std::int64_t day = floor_div(cur + offset, kDay); day * kDay - offset < segment_end + kDay; ++day)
      for (const std::int64_t b : boundaries) {
        const std::int64_t x = day * kDay + b - offset;
        if (x > cur && x < segment_end) candidates.push_back(x);
      }
    std::sort(candidates.begin(), candidates.end());
    for (const std::int64_t x : candidates)
      if (covers_seconds(x) != was) return TimePoint(std::chrono::seconds(x));
    if (!transition || *transition >= horizon) break;
    cur = *transition;
    if (covers_seconds(cur) != was) return TimePoint(std::chrono::seconds(cur));
  }
  return std::nullopt;
}

}  // namespace xmatters
