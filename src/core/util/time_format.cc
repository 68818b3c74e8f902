#include "util/time_format.h"

#include <chrono>
#include <cstdint>

namespace xmatters {

std::string format_rfc3339(TimePoint t, bool with_fraction) {
  Rfc3339Buffer buf;
  return std::string(format_rfc3339(t, with_fraction, buf));
}

std::string_view format_rfc3339(TimePoint t, bool with_fraction, Rfc3339Buffer& buf) {
  using namespace std::chrono;
  // floor, not duration_cast: 0.5 s before the epoch is 23:59:59.5.
  const auto secs = floor<seconds>(t.time_since_epoch());
  const std::int64_t days = floor<std::chrono::duration<std::int64_t, std::ratio<86400>>>(secs).count();
  const std::int64_t second_of_day = secs.count() - days * 86400;
  // The proleptic Gregorian date of a day count (Howard Hinnant's
  // civil_from_days): arithmetic only, where gmtime_r would take the time
  // zone lock, three times per event on collectd's thread.
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;                                  // [0, 146096]
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);           // [0, 365]
  const std::int64_t mp = (5 * doy + 2) / 153;                                // [0, 11], from March
  const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  // A TimePoint (int64 nanoseconds) spans 1677 to 2262: four digits, as
  // RFC 3339 wants.
  char* p = buf.data();
  auto digits = [&p](std::int64_t value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) p[i] = static_cast<char>('0' + value % 10);
    p += width;
  };
  digits(year, 4);
  *p++ = '-';
  digits(month, 2);
  *p++ = '-';
  digits(day, 2);
  *p++ = 'T';
  digits(second_of_day / 3600, 2);
  *p++ = ':';
  digits(second_of_day / 60 % 60, 2);
  *p++ = ':';
  digits(second_of_day % 60, 2);
  if (with_fraction) {
    *p++ = '.';
    digits(floor<microseconds>(t.time_since_epoch() - secs).count(), 6);
  }
  *p++ = 'Z';
  return std::string_view(buf.data(), static_cast<std::size_t>(p - buf.data()));
}

}  // namespace xmatters
