// An outage as the tracker keeps it and the spool records it: its key,
// state and ids (collectd-xmatters(5), OUTAGES and PAYLOAD), and its OUTAGE_SET / OUTAGE_CLOSE
// records (doc/storage.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outage/notification.h"

namespace xmatters {

// The identity of a value list: collectd's threshold state is kept per value
// list, not per data source.
struct OutageKey {
  std::string host, plugin, plugin_instance, type, type_instance;
  static OutageKey of(const Notification& n);
  // collectd's identifier, "host/plugin-instance/type-instance", for log lines.
  std::string identifier() const;
  bool operator==(const OutageKey& o) const;
};

struct OutageKeyHash {
  std::size_t operator()(const OutageKey& k) const {
    std::size_t h = 0;
    for (const std::string* s : {&k.host, &k.plugin, &k.plugin_instance, &k.type, &k.type_instance})
      h = h * 1000003u ^ std::hash<std::string>{}(*s);
    return h;
  }
};

// What one outage is (GroupBy, collectd-xmatters(5) OUTAGES); part of its id and its record.
// A flood outage holds an integration's outages folded beyond FloodLimit.
enum class OutageKind : std::uint8_t { ValueList = 1, Host = 2, Flood = 3 };

// A value list of a host outage; for a flood outage, the first value list
// of one of the outages folded into it.
struct Member {
  OutageKey key;
  bool failing = true;  // false once its OKAY came: it stays listed for the clear
  std::optional<TimePoint> last_time;  // of its last notification, for the age check
  std::string items, reasons;          // of its last notification, as the payload lists them
};

struct Outage {
  std::string id;                      // outage_id: outage_id_of() its key and start
  Severity severity = Severity::Okay;  // the highest severity paged
  TimePoint start;                     // time of the opening notification
  TimePoint last_page;                 // time of the last outage event
  std::uint32_t sequence = 0;          // place of its last event in the outage: 1 for the first page
  OutageKind kind = OutageKind::ValueList;
  // A host outage's value lists: every one it had, in the order they
  // joined (at most kMaxMembers). A flood outage's: the first
  // kFloodListed outages folded into it. Empty for a value list's outage.
  std::vector<Member> members;
  // Held by the integration's flood outage: it sends no event of its own.
  bool folded = false;
  // A flood outage's: how many outages it had, on how many hosts.
  std::uint32_t outages = 0, hosts = 0;
  // Silences and maintenance windows (collectd-xmatters(5) MAINTENANCE):
  // held, a page was held back and is owed when nothing covers it any more;
  // paged, an outage event of it was sent, so its clear is always sent.
  bool held = false;
  bool paged = true;
};

// A flood outage keeps (and its payload lists) the first this many of its
// outages; the others are counted.
inline constexpr std::size_t kFloodListed = 10;

// A host outage keeps at most this many value lists (the record carries
// them all); a value list beyond it is not tracked, with a WARNING.
inline constexpr std::size_t kMaxMembers = 1000;

// The outage_id of integration's outage of key that started at start
// (collectd-xmatters(5) PAYLOAD): a name-based UUID of all three, so that two aggregators fed
// the same notifications agree on it. Every field is length-prefixed, so no
// two keys give the same name.
std::string outage_id_of(std::string_view integration, OutageKind kind, const OutageKey& key, TimePoint start);

// An event's event_id: its outage's id and its place in it, "<outage_id>-3".
std::string event_id_of(const std::string& outage_id, std::uint32_t sequence);

// One change as a framed record, ready for one write(2): OUTAGE_SET with the
// key's full state after the change, or OUTAGE_CLOSE when outage is null.
// last_time: a value list's last notification time (TimePoint{}: none).
// closed_start: for an OUTAGE_CLOSE, the start of the outage that closed,
// remembered with last_time (the close's time) so that stale input cannot
// reopen it, across a restart too (collectd-xmatters(5) OUTAGES); nullopt:
// nothing remembered. closed_members: a host outage's value lists, each
// remembered with its last time (only their keys and last times are
// written).
// Sized exactly: one allocation. Throws std::length_error (a key of
// megabytes) or std::bad_alloc.
std::string encode_change(const std::string& integration, const OutageKey& key, const Outage* outage,
                          TimePoint last_time, std::optional<TimePoint> closed_start = std::nullopt,
                          const std::vector<Member>* closed_members = nullptr);

// One decoded record.
struct Change {
  std::string_view integration;  // into the record's bytes
  OutageKey key;
  std::optional<Outage> set;  // nullopt: closed
  TimePoint last_time;
  // A close that remembers its outage: its start (last_time is then the
  // close's time); nullopt for any other record.
  std::optional<TimePoint> closed_start;
  // With closed_start, a host outage's value lists, each with its last
  // time (key and last_time only).
  std::vector<Member> closed_members;
};

// False when bytes are not exactly one framed change record, or it says what
// the tracker never writes (an invalid outage_id, a severity other than
// WARNING or FAILURE, a host outage without members...).
bool decode_change(std::string_view bytes, Change* out);

}  // namespace xmatters
