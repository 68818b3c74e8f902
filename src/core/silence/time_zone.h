// A time zone of the system's tzdata, read once from its TZif file (RFC
// 8536) so that wall-clock time can be computed on any thread without
// touching the process's TZ (collectd is multi-threaded, and localtime_r
// reads the one global zone). The rules are tzdata's: its transitions, and
// past the last one the POSIX TZ string of the file's footer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xmatters {

class TimeZone {
 public:
  // The zone of that IANA name ("Europe/Berlin") from /usr/share/zoneinfo;
  // "" the system's: TZ when it names a zone, else /etc/localtime, else UTC.
  // Throws std::invalid_argument saying why (no such zone, not a TZif file).
  static TimeZone load(const std::string& name);
  // From a TZif file's bytes; throws std::invalid_argument when they are not one.
  static TimeZone from_tzif(std::string_view bytes, std::string name);
  // A fixed offset (seconds east of UTC), for tests.
  static TimeZone fixed(std::int32_t utc_offset, std::string name);

  const std::string& name() const { return name_; }
  // Seconds east of UTC at t (seconds since the epoch).
  std::int32_t offset_at(std::int64_t t) const;
  // The first instant after t at which the offset may change; nullopt: never.
  std::optional<std::int64_t> next_transition(std::int64_t t) const;

 private:
  // The POSIX TZ string of the footer: standard offset, and an optional
  // daylight-saving offset with the rules of its start and end.
  struct Rule {
    std::int32_t std_offset = 0, dst_offset = 0;
    bool has_dst = false;
    struct Date {
      char kind = 'M';  // 'J' (Julian day 1-365, no Feb 29), 'D' (day 0-365), 'M' (month.week.weekday)
      int a = 0, b = 0, c = 0;
      std::int32_t time = 7200;  // seconds after local midnight (may be negative or past 24 h)
    } start, end;
  };
  static std::optional<Rule> parse_rule(std::string_view text);
  // The UTC instants the rule's daylight saving starts and ends in year.
  std::int64_t rule_instant(const Rule::Date& d, int year, std::int32_t offset) const;
  std::int32_t rule_offset(std::int64_t t) const;
  std::optional<std::int64_t> rule_next(std::int64_t t) const;

  std::string name_;
  std::vector<std::int64_t> transitions_;   // ascending
  std::vector<std::int32_t> offsets_;       // offset from transitions_[i] on
  std::int32_t initial_offset_ = 0;         // before the first transition
  std::optional<Rule> rule_;                // after the last transition
};

// Days since 1970-01-01 of a civil date, and back (proleptic Gregorian).
std::int64_t days_from_civil(int year, unsigned month, unsigned day);
void civil_from_days(std::int64_t days, int* year, unsigned* month, unsigned* day);
// 0 = Sunday.
int weekday_from_days(std::int64_t days);

}  // namespace xmatters
