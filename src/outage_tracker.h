// One integration's open outages (CONTRACT §3): decides, for each
// notification, whether it opens, escalates, re-pages or clears an outage.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "event.h"
#include "function_ref.h"
#include "log.h"
#include "notification.h"

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

// What one outage is (GroupBy, CONTRACT §3); part of its id and its record.
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
};

// A flood outage keeps (and its payload lists) the first this many of its
// outages; the others are counted.
inline constexpr std::size_t kFloodListed = 10;

// A host outage keeps at most this many value lists (the record carries
// them all); a value list beyond it is not tracked, with a WARNING.
inline constexpr std::size_t kMaxMembers = 1000;

// The outage_id of integration's outage of key that started at start
// (CONTRACT §4): a name-based UUID of all three, so that two aggregators fed
// the same notifications agree on it. Every field is length-prefixed, so no
// two keys give the same name.
std::string outage_id_of(std::string_view integration, OutageKind kind, const OutageKey& key, TimePoint start);

// An event's event_id: its outage's id and its place in it, "<outage_id>-3".
std::string event_id_of(const std::string& outage_id, std::uint32_t sequence);

// What the tracker decided; handed to the TransitionHandler under the key's
// lock, so that events of one outage reach the sink in order, and so that,
// per key, the spool's order of changes is the order they were decided in.
struct Transition {
  EventType type;
  const Notification& notification;
  const Outage& outage;  // as it is after this transition
  std::uint32_t sequence = 0;  // this event's place in its outage (event_id_of)
  // The outage change this transition makes, one framed record (OUTAGE_SET
  // with the key's state after it, or OUTAGE_CLOSE for a clear; see
  // doc/storage.md). The handler spools it with the event (it may move it
  // out), so that one write(2) makes both durable.
  std::string change = {};
};

// Builds and submits the event; returns whether the sink accepted it. A
// refused transition leaves the tracker's state as it was. Called only
// during process(), so a reference: no allocation per notification.
using TransitionHandler = FunctionRef<bool(Transition&)>;

// Records a change that sends no event (a close with SendClear false): one
// framed record for the spool (Spool::append_change). Must not throw.
using ChangeWriter = std::function<void(const std::string& record)>;

struct TrackerOptions {
  OutageKind group_by = OutageKind::ValueList;
  Severity min_severity = Severity::Warning;
  std::chrono::seconds renotify_interval{0};
  bool send_clear = true;
  // FloodLimit: outage events a minute beyond which new outages are folded
  // into the flood outage; 0: never.
  unsigned flood_limit = 0;
  // The clock of that minute (steady_clock::now when null); tests set it.
  std::function<std::chrono::steady_clock::time_point()> steady_now = nullptr;
};

// The table of one integration's open outages. It lives in memory; the
// spool is its log: every change is a record there (in its event's record,
// or one of its own written through the ChangeWriter), and compaction
// writes the table itself (snapshot()). A key without an open outage is not
// kept at all.
class OutageTracker {
 public:
  // recovered: the spool's outage changes (Spool::take_recovered_changes,
  // every integration's, in log order); those of this integration are
  // applied in order, the last one of a key winning. Malformed ones are
  // skipped with one WARNING.
  OutageTracker(std::string integration, TrackerOptions options, Logger& log,
                const std::vector<std::string>& recovered = {}, ChangeWriter write_change = nullptr);
  ~OutageTracker();
  OutageTracker(const OutageTracker&) = delete;
  OutageTracker& operator=(const OutageTracker&) = delete;

  // Thread-safe. Concurrent calls for one key behave as some serial order;
  // a notification older than the last one processed for its open outage
  // is ignored. An exception from the handler propagates, with the state
  // as it was (so does std::length_error for a key too large for a record).
  // Costs no I/O but the handler's, or one ChangeWriter call.
  void process(const Notification& n, TransitionHandler handler);

  // Open outages, folded ones and the flood outage included.
  std::size_t open_outages() const;

  // Outages folded into a flood outage since start.
  std::uint64_t folded() const;

  // Appends to out one framed OUTAGE_SET record per open outage, each
  // key's committed state, read under its lock. Thread-safe; for the
  // spool's compaction.
  void snapshot(std::string& out) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xmatters
