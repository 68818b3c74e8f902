// Silences (collectd-xmatters(1) SILENCES, collectd-xmatters(5) MAINTENANCE):
// amtool's matchers, and a silence's validated model: who, why, what and
// when. Plain values; the table of silences and the spool records are
// elsewhere.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"  // Regex
#include "outage/notification.h"
#include "outage/outage.h"  // OutageKey

namespace xmatters {

// "field=value" or "field=~regex" (a POSIX ERE anchored at both ends, as
// amtool's); field one of host, plugin, plugin_instance, type, type_instance.
class Matcher {
 public:
  enum class Field { Host, Plugin, PluginInstance, Type, TypeInstance };

  // Throws std::invalid_argument with a message that names the matcher.
  static Matcher parse(std::string_view text);
  // From its parts (a spool record's). Throws std::invalid_argument for a
  // regex that does not compile.
  static Matcher of(Field field, bool regex, std::string value);

  bool matches(const OutageKey& key) const;
  // As parsed: "host=~web[0-9]+".
  std::string text() const;
  Field field() const { return field_; }
  bool is_regex() const { return regex_.has_value(); }
  const std::string& value() const { return value_; }

 private:
  Field field_ = Field::Host;
  std::string value_;
  std::optional<Regex> regex_;  // of "^(" value ")$"
};

// A length such as "90m", "2h", "3d", "1h30m" (units s, m, h, d, w).
// Throws std::invalid_argument.
std::chrono::seconds parse_duration(std::string_view text);

// RFC 3339: "2026-12-05T02:00:00Z", "2026-12-05T03:00:00+01:00", with or
// without fractions of a second. Throws std::invalid_argument.
TimePoint parse_rfc3339(std::string_view text);
// UTC, whole seconds: "2026-12-05T02:00:00Z".
std::string format_utc_seconds(TimePoint t);

inline constexpr std::chrono::hours kMaxSilence{31 * 24};
// An ended silence is listed (silence list --expired) and kept in the
// spool this long, then forgotten.
inline constexpr std::chrono::hours kSilenceKept{5 * 24};

struct Silence {
  enum class State { Pending, Active, Expired };

  std::string id;  // random UUID
  std::vector<Matcher> matchers;  // all must match; at least one
  std::string integration;        // "": every integration
  TimePoint start, end;
  std::string author, comment;

  State state(TimePoint now) const;
  bool active(TimePoint now) const { return state(now) == State::Active; }
  bool forgotten(TimePoint now) const { return now >= end + kSilenceKept; }
  // Whether it holds back integration's outages of key (all matchers match).
  bool matches(std::string_view integration_name, const OutageKey& key) const;
};

const char* silence_state_name(Silence::State s);

// What `silence add` asks for; make_silence checks it.
struct SilenceRequest {
  std::vector<std::string> matchers;
  std::optional<TimePoint> start;            // default now
  std::optional<std::chrono::seconds> duration;
  std::optional<TimePoint> end;              // exactly one of duration and end
  std::string author, comment, integration;
};

// A silence as one framed SILENCE record of the spool (doc/storage.md,
// record 10): its whole state, so the last record of an id wins (expiring
// one writes it again with its new end). Throws std::length_error past the
// spool's record size.
std::string encode_silence(const Silence& s);
// From one framed record; false when it is not a SILENCE record or does
// not decode (a matcher that no longer parses included).
bool decode_silence(std::string_view record, Silence* out);

// A new silence with a fresh random id. Throws std::invalid_argument with
// one line saying what is wrong (no matcher, no comment, an end not after
// its start or already past, longer than 31 days, a bad matcher).
Silence make_silence(const SilenceRequest& request, TimePoint now);

}  // namespace xmatters
