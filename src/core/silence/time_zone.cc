#include "silence/time_zone.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <system_error>

namespace xmatters {

// --- civil dates (days since the epoch, proleptic Gregorian) -----------------

std::int64_t days_from_civil(int year, unsigned month, unsigned day) {
  const std::int64_t y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;                                           // [0, 399]
  const std::int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;  // [0, 365]
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                   // [0, 146096]
  return era * 146097 + doe - 719468;
}

void civil_from_days(std::int64_t days, int* year, unsigned* month, unsigned* day) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  *year = static_cast<int>(yoe + era * 400 + (*month <= 2 ? 1 : 0));
}

int weekday_from_days(std::int64_t days) { return static_cast<int>(days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6); }

namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

int year_of(std::int64_t local_seconds) {
  int y;
  unsigned m, d;
  civil_from_days(floor_div(local_seconds, 86400), &y, &m, &d);
  return y;
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// --- the TZif file -----------------------------------------------------------------

class Bytes {
 public:
  explicit Bytes(std::string_view b) : b_(b) {}
  std::string_view take(std::size_t n) {
    if (n > b_.size() - pos_) throw std::invalid_argument("is not a valid TZif file (truncated)");
    const std::string_view out = b_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint32_t u32() { return static_cast<std::uint32_t>(be(4)); }
  std::int64_t i64() { return static_cast<std::int64_t>(be(8)); }
  std::int32_t i32() { return static_cast<std::int32_t>(static_cast<std::uint32_t>(be(4))); }
  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::string_view rest() const { return b_.substr(pos_); }

 private:
  std::uint64_t be(std::size_t n) {
    std::uint64_t v = 0;
    for (const char c : take(n)) v = v << 8 | static_cast<unsigned char>(c);
    return v;
  }
  std::string_view b_;
  std::size_t pos_ = 0;
};

struct Counts {
  std::uint32_t isut, isstd, leap, time, type, chars;
};

Counts header(Bytes& in, char* version) {
  if (in.take(4) != "TZif") throw std::invalid_argument("is not a TZif file");
  *version = in.take(1)[0];
  in.take(15);
  Counts c{in.u32(), in.u32(), in.u32(), in.u32(), in.u32(), in.u32()};
  if (c.type == 0 || c.type > 256 || c.time > 100000 || (c.isut != 0 && c.isut != c.type) ||
      (c.isstd != 0 && c.isstd != c.type))
    throw std::invalid_argument("is not a valid TZif file (bad counts)");
  return c;
}

// Reads "[+-]hh[:mm[:ss]]" as seconds; false when there is none.
bool parse_hms(std::string_view& s, int max_hours, std::int32_t* out) {
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  const auto number = [&](int max, int* v) {
    std::size_t i = 0;
    *v = 0;
    while (i < s.size() && i < 3 && s[i] >= '0' && s[i] <= '9') *v = *v * 10 + (s[i++] - '0');
    s.remove_prefix(i);
    return i > 0 && *v <= max;
  };
  int h, m = 0, sec = 0;
  if (!number(max_hours, &h)) return false;
  if (!s.empty() && s[0] == ':') {
    s.remove_prefix(1);
    if (!number(59, &m)) return false;
    if (!s.empty() && s[0] == ':') {
      s.remove_prefix(1);
      if (!number(59, &sec)) return false;
    }
  }
  *out = sign * (h * 3600 + m * 60 + sec);
  return true;
}

bool parse_abbreviation(std::string_view& s) {
  std::size_t n = 0;
  if (!s.empty() && s[0] == '<') {
    n = s.find('>');
    if (n == std::string_view::npos) return false;
    s.remove_prefix(n + 1);
    return true;
  }
  while (n < s.size() && ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))) ++n;
  s.remove_prefix(n);
  return n >= 3;
}

std::string read_zone_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw std::invalid_argument(path + ": " + std::system_category().message(errno));
  if (!S_ISREG(st.st_mode)) throw std::invalid_argument(path + ": not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(path + ": " + std::system_category().message(errno));
  std::string bytes;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > (1u << 20)) throw std::invalid_argument(path + ": is not a TZif file (too large)");
  }
  return bytes;
}

constexpr const char* kZoneDir = "/usr/share/zoneinfo/";

}  // namespace

// --- the footer's POSIX TZ string ----------------------------------------------------------

std::optional<TimeZone::Rule> TimeZone::parse_rule(std::string_view s) {
  Rule r;
  std::int32_t west;
  if (!parse_abbreviation(s) || !parse_hms(s, 24, &west)) return std::nullopt;
  r.std_offset = -west;
  if (s.empty()) return r;
  if (!parse_abbreviation(s)) return std::nullopt;
  r.has_dst = true;
  r.dst_offset = r.std_offset + 3600;
  if (!s.empty() && s[0] != ',') {
    if (!parse_hms(s, 24, &west)) return std::nullopt;
    r.dst_offset = -west;
  }
  if (s.empty()) s = ",M3.2.0,M11.1.0";  // POSIX's default rule
  const auto date = [&](Rule::Date* d) {
    if (s.empty() || s[0] != ',') return false;
    s.remove_prefix(1);
    const auto num = [&](int* v) {
      std::size_t i = 0;
      *v = 0;
      while (i < s.size() && i < 3 && s[i] >= '0' && s[i] <= '9') *v = *v * 10 + (s[i++] - '0');
      s.remove_prefix(i);
      return i > 0;
    };
    if (!s.empty() && s[0] == 'J') {
      s.remove_prefix(1);
      d->kind = 'J';
      if (!num(&d->a) || d->a < 1 || d->a > 365) return false;
    } else if (!s.empty() && s[0] == 'M') {
      s.remove_prefix(1);
      d->kind = 'M';
      if (!num(&d->a) || d->a < 1 || d->a > 12 || s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
      if (!num(&d->b) || d->b < 1 || d->b > 5 || s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
      if (!num(&d->c) || d->c > 6) return false;
    } else {
      d->kind = 'D';
      if (!num(&d->a) || d->a > 365) return false;
    }
    d->time = 7200;
    if (!s.empty() && s[0] == '/') {
      s.remove_prefix(1);
      if (!parse_hms(s, 167, &d->time)) return false;
    }
    return true;
  };
  if (!date(&r.start) || !date(&r.end) || !s.empty()) return std::nullopt;
  return r;
}

std::int64_t TimeZone::rule_instant(const Rule::Date& d, int year, std::int32_t offset) const {
  std::int64_t day = days_from_civil(year, 1, 1);
  if (d.kind == 'J') {
    day += d.a - 1 + (is_leap(year) && d.a >= 60 ? 1 : 0);
  } else if (d.kind == 'D') {
    day += d.a;
  } else {
    const auto month = static_cast<unsigned>(d.a);
    const std::int64_t first = days_from_civil(year, month, 1);
    const std::int64_t next = month == 12 ? days_from_civil(year + 1, 1, 1) : days_from_civil(year, month + 1, 1);
    day = first + (d.c - weekday_from_days(first) + 7) % 7 + (d.b - 1) * 7;
    while (day >= next) day -= 7;  // week 5: the last such weekday of the month
  }
  return day * 86400 + d.time - offset;
}

std::int32_t TimeZone::rule_offset(std::int64_t t) const {
  const Rule& r = *rule_;
  if (!r.has_dst) return r.std_offset;
  const int year = year_of(t + r.std_offset);
  const std::int64_t start = rule_instant(r.start, year, r.std_offset);
  const std::int64_t end = rule_instant(r.end, year, r.dst_offset);
  const bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  return dst ? r.dst_offset : r.std_offset;
}

std::optional<std::int64_t> TimeZone::rule_next(std::int64_t t) const {
  const Rule& r = *rule_;
  if (!r.has_dst) return std::nullopt;
  const int year = year_of(t + r.std_offset);
  std::optional<std::int64_t> best;
  for (int y = year - 1; y <= year + 1; ++y)
    for (const std::int64_t c : {rule_instant(r.start, y, r.std_offset), rule_instant(r.end, y, r.dst_offset)})
      if (c > t && (!best || c < *best)) best = c;
  return best;
}

// --- TimeZone ----------------------------------------------------------------------------------

TimeZone TimeZone::from_tzif(std::string_view bytes, std::string name) {
  Bytes in(bytes);
  char version;
  Counts c = header(in, &version);
  bool wide = false;
  if (version >= '2') {
    // The version 1 block (32-bit times) is skipped for the 64-bit one.
    in.take(std::size_t{c.time} * 5 + std::size_t{c.type} * 6 + c.chars + std::size_t{c.leap} * 8 + c.isstd + c.isut);
    c = header(in, &version);
    wide = true;
  }
  TimeZone z;
  z.name_ = std::move(name);
  z.transitions_.reserve(c.time);
  for (std::uint32_t i = 0; i < c.time; ++i) {
    z.transitions_.push_back(wide ? in.i64() : in.i32());
    if (i > 0 && z.transitions_[i] <= z.transitions_[i - 1])
      throw std::invalid_argument("is not a valid TZif file (transitions out of order)");
  }
  std::vector<std::uint8_t> index(c.time);
  for (auto& i : index) i = in.u8();
  std::vector<std::int32_t> type_offsets(c.type);
  for (auto& o : type_offsets) {
    o = in.i32();
    in.take(2);  // isdst, abbreviation index
    if (o < -25 * 3600 || o > 26 * 3600) throw std::invalid_argument("is not a valid TZif file (bad offset)");
  }
  for (const auto i : index) {
    if (i >= c.type) throw std::invalid_argument("is not a valid TZif file (bad type index)");
    z.offsets_.push_back(type_offsets[i]);
  }
  z.initial_offset_ = type_offsets[0];
  // Leap-second records, standard/wall and UT/local indicators: not needed.
  in.take(c.chars + std::size_t{c.leap} * (wide ? 12 : 8) + c.isstd + c.isut);
  if (wide) {
    const std::string_view footer = in.rest();
    const std::size_t end = footer.find('\n', 1);
    if (footer.empty() || footer[0] != '\n' || end == std::string_view::npos)
      throw std::invalid_argument("is not a valid TZif file (no footer)");
    const std::string_view text = footer.substr(1, end - 1);
    if (!text.empty()) {
      z.rule_ = parse_rule(text);
      if (!z.rule_) throw std::invalid_argument("is not a valid TZif file (footer \"" + std::string(text) + "\")");
    }
  }
  return z;
}

TimeZone TimeZone::fixed(std::int32_t utc_offset, std::string name) {
  TimeZone z;
  z.name_ = std::move(name);
  z.initial_offset_ = utc_offset;
  return z;
}

TimeZone TimeZone::load(const std::string& name) {
  if (!name.empty()) {
    // A name of the database, not a path to anywhere else.
    const bool plain = name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-/") ==
                           std::string::npos &&
                       name[0] != '/' && name.find("..") == std::string::npos;
    if (!plain) throw std::invalid_argument("is not an IANA time zone name such as \"Europe/Berlin\"");
    const std::string path = kZoneDir + name;
    try {
      return from_tzif(read_zone_file(path), name);
    } catch (const std::invalid_argument& e) {
      const std::string why = e.what();
      throw std::invalid_argument("is not a time zone of the system's tzdata (" +
                                  (why.rfind(path, 0) == 0 ? why : path + ": " + why) + ")");
    }
  }
  // The system's: what localtime(3) would use.
  if (const char* tz = std::getenv("TZ"); tz != nullptr && *tz != '\0') {
    std::string value = tz[0] == ':' ? tz + 1 : tz;
    if (!value.empty() && value[0] == '/') return from_tzif(read_zone_file(value), value);
    try {
      return load(value);
    } catch (const std::invalid_argument&) {
      if (auto rule = parse_rule(value)) {
        TimeZone z;
        z.name_ = value;
        z.initial_offset_ = rule->std_offset;
        z.rule_ = rule;
        return z;
      }
      throw std::invalid_argument("TZ=\"" + value + "\" is neither a zone of the system's tzdata nor a POSIX TZ string");
    }
  }
  std::string shown = "localtime";
  char target[PATH_MAX];
  const ssize_t n = ::readlink("/etc/localtime", target, sizeof target - 1);
  if (n > 0) {
    const std::string link(target, static_cast<std::size_t>(n));
    const std::size_t at = link.find("zoneinfo/");
    if (at != std::string::npos) shown = link.substr(at + 9);
  }
  std::string bytes;
  try {
    bytes = read_zone_file("/etc/localtime");
  } catch (const std::invalid_argument&) {
    return fixed(0, "UTC");  // as glibc does without /etc/localtime
  }
  return from_tzif(bytes, shown);
}

std::int32_t TimeZone::offset_at(std::int64_t t) const {
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  if (it == transitions_.end() && rule_) return rule_offset(t);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<std::size_t>(it - transitions_.begin()) - 1];
}

std::optional<std::int64_t> TimeZone::next_transition(std::int64_t t) const {
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  if (it != transitions_.end()) return *it;
  if (rule_) return rule_next(t);
  return std::nullopt;
}

}  // namespace xmatters
