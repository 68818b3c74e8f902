#include "payload.h"

#include <jansson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "json_writer.h"
#include "resources.h"
#include "text.h"

namespace xmatters {
namespace {

// --- numbers and times -----------------------------------------------------------

std::string chars(double v, std::chars_format fmt, int precision) {
  std::array<char, 64> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, fmt, precision);
  return std::string(buf.data(), r.ptr);
}

bool round_trips(const std::string& text, double v) {
  double back = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), back);
  return r.ec == std::errc() && back == v;
}

// %g-like (95, 0.5, 1e+06) and locale-independent; a whole number that %g
// would round (1234567) is written out instead, since a human reading a byte
// count wants the count.
std::string compact_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Most thresholds and values are whole and small: %g writes them as
  // integers, and so does this, for a fraction of the cost.
  if (std::fabs(v) < 1e6 && v == std::trunc(v)) return std::to_string(static_cast<long>(v));
  std::string text = chars(v, std::chars_format::general, 6);
  if (!round_trips(text, v) && v == std::trunc(v) && std::fabs(v) < 1e15)
    text = chars(v, std::chars_format::fixed, 0);
  return text;
}


std::optional<double> meta_number(const Notification& n, std::string_view name) {
  const MetaItem* m = n.find_meta(name);
  if (m == nullptr) return std::nullopt;
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>)
          return std::nullopt;
        else
          return static_cast<double>(v);
      },
      m->value);
}

// A NaN CurrentValue (collectd's "no value") says nothing worth a sentence.
std::optional<double> current_value(const Notification& n) {
  auto v = meta_number(n, "CurrentValue");
  if (v && std::isnan(*v)) v.reset();
  return v;
}

std::int64_t whole_seconds(Clock::duration d) {
  return std::chrono::floor<std::chrono::seconds>(d).count();
}

// --- the macros --------------------------------------------------------------------

enum Macro : std::size_t {
  kOutageId,
  kEventId,
  kEventType,
  kSeverity,
  kName,
  kFqdn,
  kDescription,
  kServices,
  kItems,
  kReasons,
  kTimestamp,
  kStartTime,
  kDuration,
  kDetailsUrl,
  kHost,
  kPlugin,
  kPluginInstance,
  kType,
  kTypeInstance,
  kCurrentValue,
  kTarget,  // the only one whose value is not a string
  kMacroCount
};

constexpr std::array<std::string_view, kMacroCount> kMacroNames = {
    "outage_id",   "event_id",  "event_type", "severity",        "name",
    "fqdn",        "description", "services", "items",          "reasons",
    "timestamp",   "start_time", "duration",  "details_url",     "host",
    "plugin",      "plugin_instance", "type", "type_instance",   "current_value",
    "target",
};

// The most bytes each macro's value has, before JSON escaping, from
// collectd's field limits (names 128 bytes, message 256; data source names
// are names); kTarget and kDetailsUrl depend on the configuration.
// template_worst_case() relies on these.
constexpr std::size_t kNameMax = 128, kMessageMax = 256;
constexpr std::array<std::size_t, kMacroCount> kMaxRaw = {
    64, 64, 6, 8,                 // outage_id, event_id (at most 64: collectd-xmatters(5) PAYLOAD), event_type, severity
    kNameMax, kNameMax, kMessageMax,  // name, fqdn, description
    4 * kNameMax + 3,                // services: plugin-instance/type-instance
    kNameMax,                     // items: the DataSource meta, cut to a name's length
    kMessageMax,                  // reasons: the message, or a shorter sentence of ours
    20, 20, 20,                   // timestamp, start_time, duration
    0,                            // details_url: from DetailsURL
    kNameMax, kNameMax, kNameMax, kNameMax, kNameMax,  // host, plugin, plugin_instance, type, type_instance
    32,                           // current_value: a number
    0,                            // target: from Target
};
// A byte JSON-escaped takes at most 6 ("\u001f"); one of invalid UTF-8
// becomes U+FFFD, 3.
constexpr std::size_t kEscapedMax = 6;
// A meta string value is cut to this many bytes in the built-in payload,
// and meta items stop where the body would get near kMaxBody: the rest of
// the payload, and one more item, fit in what is left.
constexpr std::size_t kMetaStringMax = 1024;
constexpr std::size_t kMetaRoom = kMaxBody - 8 * 1024;

// The one place where an event's macro values are computed; the built-in
// payload, the templates and DetailsURL all read them from here. Every text
// is valid UTF-8. The texts are views: of the notification's own fields when
// they are valid UTF-8 already (nearly always), else of copies kept here, so
// that an event costs no copy of them; a MacroValues therefore stays where
// it was made.
class MacroValues {
 public:
  MacroValues() = default;
  MacroValues(const MacroValues&) = delete;
  MacroValues& operator=(const MacroValues&) = delete;

  std::string_view operator[](Macro m) const { return text_[m]; }  // "" for kTarget

  // s itself, or a sanitized copy when it is not valid UTF-8.
  void set_clean(Macro m, std::string_view s) {
    if (valid_utf8(s)) {
      text_[m] = s;
    } else {
      set_owned(m, sanitize_utf8(std::string(s)));
    }
  }
  // A text made for this event; valid UTF-8.
  void set_owned(Macro m, std::string s) {
    owned_[m] = std::move(s);
    text_[m] = owned_[m];
  }
  void set_literal(Macro m, std::string_view s) { text_[m] = s; }  // s outlives this
  // A time made for this event, formatted without an allocation.
  void set_time(Macro m, TimePoint t) { text_[m] = format_rfc3339(t, false, times_[m]); }

  std::vector<std::string> targets;
  bool has_details_url = false;  // DetailsURL is set (its expansion may still be "")

 private:
  std::array<std::string_view, kMacroCount> text_;
  std::array<std::string, kMacroCount> owned_;
  std::array<Rfc3339Buffer, kMacroCount> times_;
};

// The longest macro name that s starts with (so "$type_instance" is not read
// as "$type" followed by "_instance"). Like Panopta's raw payload, the name
// need not end at a word boundary: "$hostname" is the host then "name".
std::optional<Macro> match_macro(std::string_view s) {
  std::optional<Macro> best;
  for (std::size_t m = 0; m < kMacroCount; ++m) {
    const auto name = kMacroNames[m];
    if (s.substr(0, name.size()) == name && (!best || name.size() > kMacroNames[*best].size()))
      best = static_cast<Macro>(m);
  }
  return best;
}

// Where a macro's value went in the expanded text, so that a position in the
// expansion can be traced back to the template.
struct Replacement {
  std::size_t in_begin, in_end, out_begin, out_end;
};

// Replaces each "$macro" of text with what value(macro, out) appends; a
// value() that returns false leaves the macro as written, and so does an
// unknown "$word".
template <typename Value>
std::string expand(std::string_view text, const Value& value,
                   std::vector<Replacement>* replacements = nullptr) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) break;
    out.append(text, i, dollar - i);
    const auto macro = match_macro(text.substr(dollar + 1));
    if (!macro) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const std::size_t end = dollar + 1 + kMacroNames[*macro].size();
    const std::size_t out_begin = out.size();
    if (value(*macro, out)) {
      if (replacements) replacements->push_back({dollar, end, out_begin, out.size()});
    } else {
      out.append(text, dollar, end - dollar);
    }
    i = end;
  }
  if (i < text.size()) out.append(text, i, std::string_view::npos);
  return out;
}

std::string details_url(const std::string& url_template, const MacroValues& v) {
  return expand(url_template, [&](Macro m, std::string& out) {
    if (m == kDetailsUrl) return false;
    if (m == kTarget) {
      std::string joined;
      for (const auto& t : v.targets) joined += (joined.empty() ? "" : ",") + t;
      append_percent_encoded(out, joined);
    } else {
      append_percent_encoded(out, v[m]);
    }
    return true;
  });
}

// $target: a string, an array, or null.
void write_targets(JsonWriter& w, const std::vector<std::string>& targets) {
  if (targets.empty()) {
    w.null();
  } else if (targets.size() == 1) {
    w.string(targets.front());
  } else {
    w.begin_array();
    for (const auto& t : targets) w.string(t);
    w.end_array();
  }
}

std::string expand_template(std::string_view text, const MacroValues& v,
                            std::vector<Replacement>* replacements = nullptr) {
  return expand(
      text,
      [&](Macro m, std::string& out) {
        // Escaped without the quotes: "$description" in a template becomes
        // a valid JSON string. A value ends at its first NUL, as collectd's
        // C strings do: a template may put a macro in a key, where jansson
        // refuses "\u0000".
        if (m == kTarget) {
          JsonWriter w;
          write_targets(w, v.targets);
          out += w.text();
        } else {
          const std::string_view s = v[m];
          append_json_escaped(out, s.substr(0, s.find('\0')));
        }
        return true;
      },
      replacements);
}

// "plugin-instance/type-instance", each part only when it is there.
std::string services(std::string_view plugin, std::string_view plugin_instance, std::string_view type,
                     std::string_view type_instance) {
  std::string out;
  out.reserve(plugin.size() + plugin_instance.size() + type.size() + type_instance.size() + 3);
  auto part = [&out](std::string_view name, std::string_view instance) {
    out += name;
    if (!name.empty() && !instance.empty()) out += '-';
    out += instance;
  };
  part(plugin, plugin_instance);
  if (!type.empty()) {
    out += '/';
    part(type, type_instance);
  }
  return out;
}

bool is_missing_value_message(const std::string& message, double* seconds) {
  static constexpr std::string_view kMissing = "has not been updated for ";
  const auto at = message.find(kMissing);
  if (at == std::string::npos) return false;
  const char* first = message.data() + at + kMissing.size();
  const auto r = std::from_chars(first, message.data() + message.size(), *seconds);
  return r.ec == std::errc() && std::isfinite(*seconds);
}

// The pieces, in one allocation: reasons() runs on collectd's thread.
std::string join(std::initializer_list<std::string_view> pieces) {
  std::size_t size = 0;
  for (const auto piece : pieces) size += piece.size();
  std::string out;
  out.reserve(size);
  for (const auto piece : pieces) out += piece;
  return out;
}

// One short sentence: which threshold the value crossed, "no data for N s"
// for collectd's missing-value FAILURE, or else collectd's own message.
std::string reasons(const Notification& n) {
  const auto value = current_value(n);
  if (n.severity == Severity::Okay) {
    if (value) return join({"value ", compact_number(*value), " is back within thresholds"});
    return n.message;
  }
  // In Percentage mode CurrentValue is the raw value while the thresholds
  // are percentages: comparing them would state something false.
  const bool percentage = n.message.find("%). That is") != std::string::npos;
  if (value && !percentage) {
    const bool failure = n.severity == Severity::Failure;
    const std::string_view level = failure ? "failure" : "warning";
    const auto min = meta_number(n, failure ? "FailureMin" : "WarningMin");
    const auto max = meta_number(n, failure ? "FailureMax" : "WarningMax");
    const bool has_min = min && !std::isnan(*min), has_max = max && !std::isnan(*max);
    const std::string v = compact_number(*value);
    if (has_max && *value > *max)
      return join({"value ", v, " is above the ", level, " threshold ", compact_number(*max)});
    if (has_min && *value < *min)
      return join({"value ", v, " is below the ", level, " threshold ", compact_number(*min)});
    // Neither bound crossed: either an inverted threshold (Invert true),
    // whose bad region is the inside, or a Hysteresis holding the state.
    // The meta cannot tell them apart; collectd's message can.
    const auto says = [&](const char* words) { return n.message.find(words) != std::string::npos; };
    if (has_min && has_max && says("That is within the"))
      return join({"value ", v, " is within the ", level, " range ", compact_number(*min), " to ",
                   compact_number(*max)});
    if (has_max && !has_min && says("That is below the"))
      return join({"value ", v, *value < *max ? " is below the " : " is at the ", level, " threshold ",
                   compact_number(*max)});
    if (has_min && !has_max && says("That is above the"))
      return join({"value ", v, *value > *min ? " is above the " : " is at the ", level, " threshold ",
                   compact_number(*min)});
  }
  double seconds = 0;
  if (!value && is_missing_value_message(n.message, &seconds))
    return join({"no data for ", std::to_string(std::max(0LL, std::llround(seconds))), " s"});
  return n.message;
}

// A data source name is a collectd name; only a plugin's own meta could
// make it longer, and the template bound counts on it.
std::string_view data_source(const Notification& n) {
  if (const MetaItem* ds = n.find_meta("DataSource"))
    if (const auto* s = std::get_if<std::string>(&ds->value)) return std::string_view(*s).substr(0, kMaxRaw[kItems]);
  return {};
}

// Members' texts (the failing ones, or all) joined with ", ", at most
// kMembersListed of them and kJoinedMax bytes, then " and N more" (the
// others, and `more` kept by count only); valid UTF-8. An empty text (a
// member without a data source) is skipped; when every member's is, the
// field is empty.
template <typename Text>
std::string join_members(const Outage& outage, bool all, std::size_t more, Text text) {
  std::string out;
  std::size_t listed = 0;
  bool full = false;
  for (const Member& m : outage.members) {
    if (!all && !m.failing) continue;
    const std::string piece = text(m);
    if (piece.empty()) continue;
    const std::string clean = full ? std::string() : sanitize_utf8(piece);
    full = full || listed == kMembersListed || out.size() + 2 + clean.size() > kJoinedMax;
    if (full) {
      ++more;
      continue;
    }
    if (listed++ > 0) out += ", ";
    out += clean;
  }
  if (listed == 0) return out;
  if (more > 0) out += " and " + std::to_string(more) + " more";
  return out;
}

static_assert(kFloodListed <= kMembersListed, "a flood outage's payload lists every member it keeps");

std::string flood_name(const Outage& flood) {
  return "flood: " + std::to_string(flood.outages) + (flood.outages == 1 ? " outage on " : " outages on ") +
         std::to_string(flood.hosts) + (flood.hosts == 1 ? " host" : " hosts");
}

// Fills v, which must be fresh.
void compute_macros(const Transition& t, const std::string& event_id, const IntegrationConfig& integration,
                    MacroValues& v) {
  const Notification& n = t.notification;
  v.set_clean(kOutageId, t.outage.id);
  v.set_clean(kEventId, event_id);
  v.set_literal(kEventType, event_type_name(t.type));
  const Severity highest = t.outage.severity == Severity::Okay ? n.severity : t.outage.severity;
  v.set_literal(kSeverity, highest == Severity::Failure ? "critical" : "warning");
  v.set_clean(kHost, n.host);
  if (t.outage.kind == OutageKind::Flood) {
    // Many hosts: name, fqdn and description say how many.
    v.set_owned(kName, flood_name(t.outage));
    v.set_literal(kFqdn, v[kName]);
    v.set_literal(kDescription, v[kName]);
  } else {
    v.set_literal(kName, v[kHost]);
    v.set_literal(kFqdn, v[kHost]);
    v.set_clean(kDescription, n.message);
  }
  v.set_clean(kPlugin, n.plugin);
  v.set_clean(kPluginInstance, n.plugin_instance);
  v.set_clean(kType, n.type);
  v.set_clean(kTypeInstance, n.type_instance);
  v.set_owned(kServices, services(v[kPlugin], v[kPluginInstance], v[kType], v[kTypeInstance]));
  if (t.outage.kind == OutageKind::Host) {
    // On an outage event its failing members, on the clear every member it had.
    const bool all = t.type == EventType::Clear;
    v.set_owned(kServices, join_members(t.outage, all, 0, [](const Member& m) {
      return services(m.key.plugin, m.key.plugin_instance, m.key.type, m.key.type_instance);
    }));
    v.set_owned(kItems, join_members(t.outage, all, 0, [](const Member& m) { return m.items; }));
    v.set_owned(kReasons, join_members(t.outage, all, 0, [](const Member& m) { return m.reasons; }));
  } else if (t.outage.kind == OutageKind::Flood) {
    // The first outages it had, each by its value list's identifier (its
    // members span hosts), the others counted.
    const std::size_t more = t.outage.outages > t.outage.members.size() ? t.outage.outages - t.outage.members.size() : 0;
    v.set_owned(kServices, join_members(t.outage, true, more, [](const Member& m) { return m.key.identifier(); }));
    v.set_owned(kItems, join_members(t.outage, true, more, [](const Member& m) { return m.items; }));
    v.set_owned(kReasons, join_members(t.outage, true, more, [](const Member& m) { return m.reasons; }));
  } else {
    v.set_clean(kItems, data_source(n));
    v.set_owned(kReasons, sanitize_utf8(reasons(n)));
  }
  v.set_time(kTimestamp, n.time);
  v.set_time(kStartTime, t.outage.start);
  v.set_owned(kDuration, std::to_string(std::max<std::int64_t>(0, whole_seconds(n.time - t.outage.start))));
  if (const auto cv = current_value(n)) v.set_owned(kCurrentValue, compact_number(*cv));
  v.targets.reserve(integration.targets.size());
  for (const auto& target : integration.targets) v.targets.push_back(sanitize_utf8(target));
  if (integration.details_url) {
    v.set_owned(kDetailsUrl, sanitize_utf8(details_url(*integration.details_url, v)));
    v.has_details_url = true;
  }
}

// --- the built-in payload -------------------------------------------------------

// s, or a sanitized copy of it kept in storage.
std::string_view clean(std::string_view s, std::string& storage) {
  if (valid_utf8(s)) return s;
  storage = sanitize_utf8(std::string(s));
  return storage;
}

// s cut to at most max bytes, at a character boundary (s is valid UTF-8).
std::string_view cut_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  while (max > 0 && (static_cast<unsigned char>(s[max]) & 0xC0) == 0x80) --max;
  return s.substr(0, max);
}

void write_meta_value(JsonWriter& w, const MetaValue& value) {
  std::visit(
      [&w](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          std::string storage;
          w.string(cut_utf8(clean(v, storage), kMetaStringMax));
        } else if constexpr (std::is_same_v<T, bool>) {
          w.boolean(v);
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          // Beyond int64 the nearest double is the best most JSON readers take.
          if (v > static_cast<std::uint64_t>(INT64_MAX))
            w.number(static_cast<double>(v));
          else
            w.number(v);
        } else {
          w.number(v);
        }
      },
      value);
}

// A meta item's name as a JSON key: collectd's names are C strings, and
// jansson-based readers refuse a NUL in a key.
std::string_view meta_key(const MetaItem& item, std::string& storage) {
  return clean(std::string_view(item.name).substr(0, item.name.find('\0')), storage);
}

std::string builtin_payload(const Transition& t, const MacroValues& v) {
  const Notification& n = t.notification;
  JsonWriter w(2048);  // a threshold event's payload is about 1 KiB
  w.begin_object();
  // the man page's order (PAYLOAD).
  for (const Macro m : {kOutageId, kEventId, kEventType, kSeverity, kName, kFqdn, kDescription,
                        kServices, kItems, kReasons, kTimestamp, kStartTime, kDuration})
    w.plain_key(kMacroNames[m]).string(v[m]);
  if (!v.targets.empty()) write_targets(w.plain_key("target"), v.targets);
  if (v.has_details_url) w.plain_key("details_url").string(v[kDetailsUrl]);

  w.plain_key("collectd").begin_object();
  w.plain_key("host").string(v[kHost]);
  w.plain_key("plugin").string(v[kPlugin]);
  w.plain_key("plugin_instance").string(v[kPluginInstance]);
  w.plain_key("type").string(v[kType]);
  w.plain_key("type_instance").string(v[kTypeInstance]);
  w.plain_key("severity").string(severity_name(n.severity));
  Rfc3339Buffer time;
  w.plain_key("time").string(format_rfc3339(n.time, true, time));
  w.plain_key("meta").begin_object();
  // The first of a name wins, as in find_meta. A set keeps this linear:
  // nothing bounds how many items a plugin attaches. Items that would take
  // the body past kMaxBody are left out and counted.
  std::unordered_set<std::string_view> seen;
  std::deque<std::string> sanitized;  // names that were not UTF-8; a deque keeps them in place
  std::size_t omitted = 0;
  for (std::size_t i = 0; i < n.meta.size(); ++i) {
    if (w.text().size() > kMetaRoom) {
      omitted = n.meta.size() - i;
      break;
    }
    std::string copy;
    std::string_view name = meta_key(n.meta[i], copy);
    if (!copy.empty()) name = sanitized.emplace_back(std::move(copy));
    if (seen.insert(name).second) write_meta_value(w.key(name), n.meta[i].value);
  }
  w.end_object();
  if (omitted > 0) w.plain_key("meta_omitted").number(static_cast<std::uint64_t>(omitted));
  w.end_object().end_object();
  return w.take();
}

// U+0000 is valid JSON ("\u0000"), though jansson refuses it by default.
constexpr std::size_t kDecodeFlags = JSON_ALLOW_NUL;

bool is_json(const std::string& text) {
  json_error_t error;
  return Json(json_loadb(text.data(), text.size(), kDecodeFlags, &error)) != nullptr;
}

// Sample values for check_template: the awkward characters a real event can
// carry, and (second) the emptiest event, so that a template is valid for
// every event and not just for a typical one. Between them they span each
// macro's kinds of value: text (awkward, even $current_value, which may be
// "-1.5" or "nan"); $duration's digits, the longest (int64 nanoseconds) and
// "0"; $target as an array and as null.
void awkward_sample(MacroValues& v) {
  static constexpr std::string_view awkward =
      "a \"quoted\" back\\slash, tab\t, newline\n, \x01, caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 </";
  for (std::size_t m = 0; m < kMacroCount; ++m) v.set_literal(static_cast<Macro>(m), awkward);
  v.set_literal(kDuration, "9223372036");
  v.targets = {"ops \"oncall\"", "dba\\team"};
}

void empty_sample(MacroValues& v) { v.set_literal(kDuration, "0"); }

// jansson's line and column, counted in the template rather than in the
// expansion: error.position is the number of bytes jansson had read.
std::string position_in_template(std::string_view text, const std::vector<Replacement>& replacements,
                                 std::size_t position) {
  std::ptrdiff_t shift = 0;
  std::size_t at = std::string_view::npos;
  for (const auto& r : replacements) {
    if (position <= r.out_begin) break;
    if (position <= r.out_end) {  // inside a macro's value: blame the macro
      at = r.in_end;
      break;
    }
    shift = static_cast<std::ptrdiff_t>(r.in_end) - static_cast<std::ptrdiff_t>(r.out_end);
  }
  if (at == std::string_view::npos)
    at = static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, static_cast<std::ptrdiff_t>(position) + shift));
  at = std::min(at, text.size());
  int line = 1, column = 0;
  for (std::size_t i = 0; i < at; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 0;
    } else if ((c & 0xC0) != 0x80) {  // as jansson: characters, not bytes
      ++column;
    }
  }
  return "(line " + std::to_string(line) + ", column " + std::to_string(column) + ")";
}

}  // namespace

// --- public ------------------------------------------------------------------------


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

std::string check_template(const std::string& text) {
  const std::pair<void (*)(MacroValues&), const char*> samples[] = {
      {awkward_sample, "not valid JSON once expanded"},
      {empty_sample, "not valid JSON once expanded with empty values"},
  };
  for (const auto& [fill, what] : samples) {
    MacroValues values;
    fill(values);
    std::vector<Replacement> replacements;
    const std::string expanded = expand_template(text, values, &replacements);
    json_error_t error;
    if (Json(json_loadb(expanded.data(), expanded.size(), kDecodeFlags, &error))) continue;
    return std::string(what) + ": " + error.text + " " +
           position_in_template(text, replacements, static_cast<std::size_t>(error.position));
  }
  return "";
}

namespace {
// kMaxRaw, but a host outage lists up to kMembersListed members in
// services, items and reasons, joined with ", ", then " and N more".
std::size_t max_raw(Macro m, const IntegrationConfig& integration) {
  const bool host = integration.group_by == GroupBy::Host, flood = integration.flood_limit > 0;
  if (flood && (m == kName || m == kFqdn || m == kDescription))
    return std::max(kMaxRaw[m], sizeof("flood: 4294967295 outages on 4294967295 hosts") - 1);
  if ((!host && !flood) || (m != kServices && m != kItems && m != kReasons)) return kMaxRaw[m];
  // A flood outage lists value lists by identifier: host/plugin-instance/type-instance.
  const std::size_t one = m == kServices && flood ? kMaxRaw[kServices] + kNameMax + 1 : kMaxRaw[m];
  constexpr std::size_t kMore = sizeof(" and 18446744073709551615 more") - 1;
  return std::min(kMembersListed * one + (kMembersListed - 1) * 2, kJoinedMax) + kMore;
}
}  // namespace

std::size_t details_url_worst_case(const IntegrationConfig& integration) {
  if (!integration.details_url) return 0;
  std::size_t joined = 0;  // $target: the targets joined with ","
  for (const auto& t : integration.targets) joined += (joined == 0 ? 0 : 1) + t.size();
  // Percent-encoded values need no JSON escape: 3 bytes a byte, 9 for a
  // byte of invalid UTF-8 (U+FFFD's three). The URL's own text may need one.
  std::size_t values = 0;
  const std::string rest = expand(*integration.details_url, [&](Macro m, std::string&) {
    if (m == kDetailsUrl) return false;
    values += 9 * (m == kTarget ? joined : max_raw(m, integration));
    return true;
  });
  return kEscapedMax * rest.size() + values;
}

std::size_t template_worst_case(const std::string& text, const IntegrationConfig& integration) {
  MacroValues targets;
  for (const auto& t : integration.targets) targets.targets.push_back(sanitize_utf8(t));
  const std::size_t details = details_url_worst_case(integration);
  // The template's own text, plus the most each of its macros can add.
  std::size_t values = 0;
  const std::string rest = expand(text, [&](Macro m, std::string&) {
    if (m == kTarget) {
      JsonWriter w;
      write_targets(w, targets.targets);
      values += w.text().size();
    } else {
      values += m == kDetailsUrl ? details : kEscapedMax * max_raw(m, integration);
    }
    return true;
  });
  return rest.size() + values;
}

std::string notification_items(const Notification& n) { return std::string(data_source(n)); }

std::string notification_reasons(const Notification& n) { return reasons(n); }

PayloadBuilder::PayloadBuilder(const IntegrationConfig& integration) : integration_(integration) {}

std::string PayloadBuilder::build(const Transition& t, const std::string& event_id) const {
  MacroValues values;
  compute_macros(t, event_id, integration_, values);
  const auto& tmpl =
      t.type == EventType::Clear ? integration_.clear_template : integration_.outage_template;
  if (tmpl) {
    std::string body = expand_template(*tmpl, values);
    // check_template accepted it at configuration time, so this holds; the
    // built-in payload is the answer if it ever does not.
    if (is_json(body)) return body;
  }
  return builtin_payload(t, values);
}

}  // namespace xmatters
