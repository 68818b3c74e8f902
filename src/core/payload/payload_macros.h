// Inside the payload units (not for the rest of the plugin): the macros
// every payload reads, their values for one event computed in one place,
// and their expansion in a text.
//   payload_macros.cc   the values of one event, expansion, host and flood member lists
//   payload_template.cc Template checks and the worst-case sizes checked at start-up
//   payload.cc          the built-in body and PayloadBuilder
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "util/json_writer.h"
#include "outage/notification_text.h"  // kNameMax, kMessageMax
#include "outage/outage_tracker.h"
#include "payload/payload_limits.h"
#include "util/time_format.h"
#include "util/utf8.h"

namespace xmatters {
namespace payload_detail {

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

inline constexpr std::array<std::string_view, kMacroCount> kMacroNames = {
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
inline constexpr std::array<std::size_t, kMacroCount> kMaxRaw = {
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
inline constexpr std::size_t kEscapedMax = 6;
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
std::optional<Macro> match_macro(std::string_view s);

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

// $target: a string, an array, or null.
void write_targets(JsonWriter& w, const std::vector<std::string>& targets);

// text with each macro's value JSON-escaped (without quotes; $target as JSON).
std::string expand_template(std::string_view text, const MacroValues& v,
                            std::vector<Replacement>* replacements = nullptr);

// Whether text parses as JSON (U+0000 allowed), as a body must.
bool is_json(const std::string& text);

// Fills v, which must be fresh.
void compute_macros(const Transition& t, const std::string& event_id, const IntegrationConfig& integration,
                    MacroValues& v);

}  // namespace payload_detail
}  // namespace xmatters
