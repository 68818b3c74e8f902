// The built-in body (collectd-xmatters(5), PAYLOAD) and PayloadBuilder,
// which gives an event its template's expansion or the built-in body.
#include "payload/payload.h"

#include <cstdint>
#include <deque>
#include <type_traits>
#include <unordered_set>
#include <variant>

#include "payload/payload_macros.h"

namespace xmatters {
namespace {

using namespace payload_detail;

// A meta string value is cut to this many bytes in the built-in payload,
// and meta items stop where the body would get near kMaxBody: the rest of
// the payload, and one more item, fit in what is left.
constexpr std::size_t kMetaStringMax = 1024;
constexpr std::size_t kMetaRoom = kMaxBody - 8 * 1024;

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

}  // namespace

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
