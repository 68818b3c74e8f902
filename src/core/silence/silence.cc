#include "silence/silence.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "store/spool_format.h"
#include "silence/time_zone.h"  // days_from_civil
#include "util/uuid.h"

namespace xmatters {

namespace {

struct FieldName {
  const char* name;
  Matcher::Field field;
};
constexpr FieldName kFields[] = {{"host", Matcher::Field::Host},
                                 {"plugin", Matcher::Field::Plugin},
                                 {"plugin_instance", Matcher::Field::PluginInstance},
                                 {"type", Matcher::Field::Type},
                                 {"type_instance", Matcher::Field::TypeInstance}};

const std::string& field_of(const OutageKey& key, Matcher::Field f) {
  switch (f) {
    case Matcher::Field::Host: return key.host;
    case Matcher::Field::Plugin: return key.plugin;
    case Matcher::Field::PluginInstance: return key.plugin_instance;
    case Matcher::Field::Type: return key.type;
    case Matcher::Field::TypeInstance: return key.type_instance;
  }
  return key.host;
}

bool digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int number(std::string_view s) {
  int v = 0;
  for (const char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

// --- Matcher ---------------------------------------------------------------------

Matcher Matcher::parse(std::string_view text) {
  const std::string shown = "matcher \"" + std::string(text) + "\"";
  const std::size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw std::invalid_argument(shown + ": expects field=value or field=~regex");
  const std::string_view name = text.substr(0, eq);
  Matcher m;
  const auto* f = std::find_if(std::begin(kFields), std::end(kFields), [&](const FieldName& x) { return name == x.name; });
  if (f == std::end(kFields)) {
    const bool negated = name.back() == '!';
    throw std::invalid_argument(shown + (negated ? ": only = and =~ are supported"
                                                 : ": the field must be one of host, plugin, plugin_instance, type, "
                                                   "type_instance"));
  }
  m.field_ = f->field;
  const bool regex = eq + 1 < text.size() && text[eq + 1] == '~';
  m.value_ = std::string(text.substr(eq + (regex ? 2 : 1)));
  if (regex) {
    try {
      m.regex_.emplace("^(" + m.value_ + ")$");
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(shown + ": not a valid POSIX extended regular expression: " + e.what());
    }
  }
  return m;
}

Matcher Matcher::of(Field field, bool regex, std::string value) {
  Matcher m;
  m.field_ = field;
  m.value_ = std::move(value);
  if (regex) m.regex_.emplace("^(" + m.value_ + ")$");
  return m;
}

bool Matcher::matches(const OutageKey& key) const {
  const std::string& v = field_of(key, field_);
  return regex_ ? regex_->matches(v) : v == value_;
}

std::string Matcher::text() const {
  const auto* f = std::find_if(std::begin(kFields), std::end(kFields), [&](const FieldName& x) { return x.field == field_; });
  return std::string(f->name) + (regex_ ? "=~" : "=") + value_;
}

// --- durations and times ------------------------------------------------------------

std::chrono::seconds parse_duration(std::string_view text) {
  const auto bad = [&] {
    return std::invalid_argument("duration \"" + std::string(text) + "\": expects a length such as 90m, 2h, 3d or 1h30m");
  };
  if (text.empty()) throw bad();
  long long total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j == i || j == text.size() || j - i > 6) throw bad();
    const long long n = std::stoll(std::string(text.substr(i, j - i)));
    switch (text[j]) {
      case 's': total += n; break;
      case 'm': total += n * 60; break;
      case 'h': total += n * 3600; break;
      case 'd': total += n * 86400; break;
      case 'w': total += n * 7 * 86400; break;
      default: throw bad();
    }
    i = j + 1;
  }
  if (total <= 0) throw std::invalid_argument("duration \"" + std::string(text) + "\": must be more than 0");
  return std::chrono::seconds(total);
}

TimePoint parse_rfc3339(std::string_view text) {
  const auto bad = [&] {
    return std::invalid_argument("time \"" + std::string(text) +
                                 "\": expects RFC 3339 such as 2026-12-05T02:00:00Z or 2026-12-05T03:00:00+01:00");
  };
  // YYYY-MM-DDTHH:MM:SS
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      text[13] != ':' || text[16] != ':')
    throw bad();
  const std::string_view parts[] = {text.substr(0, 4),  text.substr(5, 2),  text.substr(8, 2),
                                    text.substr(11, 2), text.substr(14, 2), text.substr(17, 2)};
  for (const auto& p : parts)
    if (!digits(p)) throw bad();
  const int year = number(parts[0]), month = number(parts[1]), day = number(parts[2]);
  const int hour = number(parts[3]), minute = number(parts[4]), second = number(parts[5]);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) throw bad();
  const unsigned next_month = month == 12 ? 1 : static_cast<unsigned>(month + 1);
  const std::int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  if (days >= days_from_civil(month == 12 ? year + 1 : year, next_month, 1)) throw bad();
  std::string_view rest = text.substr(19);
  std::chrono::nanoseconds fraction{0};
  if (!rest.empty() && rest[0] == '.') {
    std::size_t n = 1;
    long long ns = 0;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') {
      if (n <= 9) ns = ns * 10 + (rest[n] - '0');
      ++n;
    }
    if (n == 1) throw bad();
    for (std::size_t k = n; k <= 9; ++k) ns *= 10;
    fraction = std::chrono::nanoseconds(ns);
    rest.remove_prefix(n);
  }
  std::int64_t offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && digits(rest.substr(1, 2)) &&
             digits(rest.substr(4, 2)) && number(rest.substr(1, 2)) < 24 && number(rest.substr(4, 2)) < 60) {
    offset = (number(rest.substr(1, 2)) * 3600 + number(rest.substr(4, 2)) * 60) * (rest[0] == '-' ? -1 : 1);
  } else {
    throw bad();
  }
  const std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + std::min(second, 59) - offset;
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(seconds) + fraction));
}

std::string format_utc_seconds(TimePoint t) {
  const std::int64_t s = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
  const std::int64_t days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
  const std::int64_t tod = s - days * 86400;
  int y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", y, m, d, static_cast<int>(tod / 3600),
                static_cast<int>(tod / 60 % 60), static_cast<int>(tod % 60));
  return buf;
}

// --- Silence -----------------------------------------------------------------------------

Silence::State Silence::state(TimePoint now) const {
  if (now >= end) return State::Expired;
  return now >= start ? State::Active : State::Pending;
}

bool Silence::matches(std::string_view integration_name, const OutageKey& key) const {
  if (!integration.empty() && integration != integration_name) return false;
  return std::all_of(matchers.begin(), matchers.end(), [&](const Matcher& m) { return m.matches(key); });
}

const char* silence_state_name(Silence::State s) {
  switch (s) {
    case Silence::State::Pending: return "pending";
    case Silence::State::Active: return "active";
    case Silence::State::Expired: return "expired";
  }
  return "?";
}

// --- the SILENCE record ---------------------------------------------------------------

namespace {

namespace sf = spool_format;

// Tags of a SILENCE record (doc/storage.md); never reuse or renumber one.
enum SilenceTag : std::uint32_t {
  kId = 1,
  kMatcher = 2,  // repeated, in order: a message of the tags below
  kIntegration = 3,
  kStart = 4,
  kEnd = 5,
  kAuthor = 6,
  kComment = 7,
};
enum MatcherTag : std::uint32_t {
  kField = 1,  // u8: 1 host, 2 plugin, 3 plugin_instance, 4 type, 5 type_instance
  kRegex = 2,  // u8: 1 =~ (absent: 0, =)
  kValue = 3,
};

std::int64_t ns_of(TimePoint t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }
TimePoint at_ns(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

std::string encode_silence(const Silence& s) {
  return sf::encode_tagged(sf::RecordType::Silence, [&](auto& w) {
    w.bytes(kId, s.id);
    for (const Matcher& m : s.matchers)
      w.message(kMatcher, [&](auto& mw) {
        mw.u8(kField, static_cast<std::uint8_t>(static_cast<int>(m.field()) + 1));
        if (m.is_regex()) mw.u8(kRegex, 1);
        mw.bytes(kValue, m.value());
      });
    if (!s.integration.empty()) w.bytes(kIntegration, s.integration);
    w.i64(kStart, ns_of(s.start));
    w.i64(kEnd, ns_of(s.end));
    w.bytes(kAuthor, s.author);
    w.bytes(kComment, s.comment);
  });
}

bool decode_silence(std::string_view record, Silence* out) {
  sf::Record rec{};
  if (sf::parse_record(record, 0, &rec) == 0 || rec.type != sf::RecordType::Silence) return false;
  Silence s;
  std::int64_t start = 0, end = 0;
  bool good = true, has_start = false, has_end = false;
  sf::FieldReader r(rec.payload);
  std::uint32_t tag = 0;
  std::string_view v;
  while (good && r.next(&tag, &v)) {
    switch (tag) {
      case kId: s.id = v; break;
      case kIntegration: s.integration = v; break;
      case kStart: good = has_start = sf::field_i64(v, &start); break;
      case kEnd: good = has_end = sf::field_i64(v, &end); break;
      case kAuthor: s.author = v; break;
      case kComment: s.comment = v; break;
      case kMatcher: {
        std::uint8_t field = 0, regex = 0;
        std::string_view value;
        sf::FieldReader m(v);
        std::uint32_t mtag = 0;
        std::string_view mv;
        while (good && m.next(&mtag, &mv)) {
          if (mtag == kField) good = sf::field_u8(mv, &field);
          else if (mtag == kRegex) good = sf::field_u8(mv, &regex);
          else if (mtag == kValue) value = mv;
        }
        if (!good || !m.ok() || field < 1 || field > std::size(kFields)) return false;
        try {
          s.matchers.push_back(Matcher::of(static_cast<Matcher::Field>(field - 1), regex != 0, std::string(value)));
        } catch (const std::invalid_argument&) {
          return false;
        }
        break;
      }
      default: break;  // a newer plugin's
    }
  }
  if (!good || !r.ok() || s.id.empty() || s.matchers.empty() || !has_start || !has_end) return false;
  s.start = at_ns(start);
  s.end = at_ns(end);
  *out = std::move(s);
  return true;
}

Silence make_silence(const SilenceRequest& r, TimePoint now) {
  if (r.matchers.empty())
    throw std::invalid_argument("at least one matcher is required, such as host=web1 or host=~web[0-9]+");
  Silence s;
  for (const auto& text : r.matchers) s.matchers.push_back(Matcher::parse(text));
  if (r.comment.find_first_not_of(" \t\r\n") == std::string::npos)
    throw std::invalid_argument("--comment is required: say why the silence is there");
  if (r.duration.has_value() == r.end.has_value()) throw std::invalid_argument("give one of --duration and --end");
  s.start = r.start.value_or(now);
  s.end = r.end ? *r.end : s.start + *r.duration;
  if (s.end <= s.start) throw std::invalid_argument("the end " + format_utc_seconds(s.end) + " is not after the start " +
                                                    format_utc_seconds(s.start));
  if (s.end <= now) throw std::invalid_argument("the end " + format_utc_seconds(s.end) + " is already past");
  if (s.end - s.start > kMaxSilence) throw std::invalid_argument("a silence lasts at most 31 days");
  s.id = random_uuid();
  s.integration = r.integration;
  s.author = r.author;
  s.comment = r.comment;
  return s;
}

}  // namespace xmatters
