// The macro values of one event, computed once for the built-in body, the
// templates and DetailsURL (collectd-xmatters(5), PAYLOAD); a host or flood
// outage's members listed in services, items and reasons (OUTAGES).
#include <algorithm>
#include <chrono>
#include <cstdint>

#include "payload/payload_macros.h"
#include "util/text.h"

namespace xmatters {
namespace payload_detail {
namespace {

std::int64_t whole_seconds(Clock::duration d) {
  return std::chrono::floor<std::chrono::seconds>(d).count();
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

}  // namespace

std::optional<Macro> match_macro(std::string_view s) {
  std::optional<Macro> best;
  for (std::size_t m = 0; m < kMacroCount; ++m) {
    const auto name = kMacroNames[m];
    if (s.substr(0, name.size()) == name && (!best || name.size() > kMacroNames[*best].size()))
      best = static_cast<Macro>(m);
  }
  return best;
}

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
                            std::vector<Replacement>* replacements) {
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
    v.set_clean(kItems, notification_data_source(n));
    v.set_owned(kReasons, sanitize_utf8(notification_reasons(n)));
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

}  // namespace payload_detail
}  // namespace xmatters
