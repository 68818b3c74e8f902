// One integration's open outages (collectd-xmatters(5) OUTAGES): decides, for each
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

#include "outage/event.h"
#include "outage/flood_budget.h"
#include "util/function_ref.h"
#include "util/log.h"
#include "outage/notification.h"
#include "outage/outage.h"

namespace xmatters {

// What the tracker decided; handed to the TransitionHandler under the key's
// lock, so that events of one outage reach the sink in order, and so that,
// per key, the spool's order of changes is the order they were decided in.
struct Transition {
  EventType type;
  const Notification& notification;
  const Outage& outage;  // as it is after this transition
  std::uint32_t sequence = 0;  // this event's place in its outage (event_id_of)
  // The outage change this transition makes: one framed record (OUTAGE_SET
  // with the key's state after it, or OUTAGE_CLOSE for a clear; see
  // doc/storage.md), or two for an outage folded into the flood outage. The
  // handler spools it with the event (it may move it out), so that one
  // write(2) makes both durable.
  std::string change = {};
  // Not sent before this (Event::not_before): a flood outage's re-page.
  std::chrono::steady_clock::time_point not_before = {};
};

// Builds and submits the event; returns whether the sink accepted it. A
// refused transition leaves the tracker's state as it was. Called only
// during process(), so a reference: no allocation per notification.
using TransitionHandler = FunctionRef<bool(Transition&)>;

// Records a change that sends no event (a close with SendClear false, a
// member joining or leaving): one framed record, or two written together,
// for the spool (Spool::append_change). Must not throw.
using ChangeWriter = std::function<void(const std::string& record)>;

struct TrackerOptions {
  OutageKind group_by = OutageKind::ValueList;
  Severity min_severity = Severity::Warning;
  std::chrono::seconds renotify_interval{0};
  bool send_clear = true;
  // FloodLimit: outage events a minute beyond which new outages are folded
  // into the flood outage; 0: never.
  unsigned flood_limit = 0;
  // Its budget, shared with the lane that paces the requests
  // (flood_budget.h: a new outage folds unless its page would leave now).
  // Null: the tracker keeps one of its own, in which each outage event
  // counts as a request made as it is decided (a sink without a lane), and
  // recovers its minute from the spool's FLOOD_SENT records.
  std::shared_ptr<FloodBudget> flood_budget = nullptr;
  // The clock of that minute (steady_clock::now when null); tests set it.
  std::function<std::chrono::steady_clock::time_point()> steady_now = nullptr;
  // What covers a value list's key now, a silence or a maintenance window
  // (Coverage::covering), or nullopt; null: nothing ever does. Called on
  // collectd's threads under the key's lock.
  std::function<std::optional<std::string>(const OutageKey&)> covering = nullptr;
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

  // Outage events held back by a silence or maintenance window since start.
  std::uint64_t silenced() const;

  // Pages every outage held back by a silence or window that nothing
  // covers any more (collectd-xmatters(5) MAINTENANCE): an outage event
  // with its real start, at now. Called when a silence or window ends.
  // Thread-safe; returns how many were paged.
  std::size_t release(TimePoint now, TransitionHandler handler);

  // Calls visit with every open outage: value-list, host, folded and the
  // integration's flood outage (whose key is OutageKey{}), each key's
  // committed state, read under its lock (not held during the call).
  // Thread-safe; for the operator's views (collectd-xmatters(1) outages).
  void for_each_open(FunctionRef<void(const OutageKey&, const Outage&)> visit) const;

  // Calls write with one framed OUTAGE_SET record per open outage, each
  // key's committed state, read under its lock (not held during the call).
  // Thread-safe; for the spool's compaction, which streams them to disk.
  void snapshot(FunctionRef<void(std::string_view)> write) const;
  // The same, appended to out: the whole table in one string, for tests.
  void snapshot(std::string& out) const {
    snapshot([&out](std::string_view record) { out.append(record); });
  }

 private:
  // The decision and the parts it routes a notification through (the
  // table, the ordering memory, the flood outage).
  struct Decider;
  std::unique_ptr<Decider> decider_;
};

}  // namespace xmatters
