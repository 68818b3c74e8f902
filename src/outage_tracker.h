// One integration's open outages (CONTRACT §3): decides, for each
// notification, whether it opens, escalates, re-pages or clears an outage.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
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

struct Outage {
  std::string id;                      // outage_id: a random UUID
  Severity severity = Severity::Okay;  // the highest severity paged
  TimePoint start;                     // time of the opening notification
  TimePoint last_page;                 // time of the last outage event
};

// What the tracker decided; handed to the TransitionHandler under the key's
// lock, so that events of one outage reach the sink in order.
struct Transition {
  EventType type;
  const Notification& notification;
  const Outage& outage;  // as it is after this transition
  // The outage change this transition makes, as one framed journal record
  // (OUTAGE_SET with the key's state after it, or OUTAGE_CLOSE for a clear;
  // see spool_format.h) carrying the key's new version. The handler keeps
  // it with the event (it may move it out); OutageTracker::persist() gets it
  // back when the event leaves the spool.
  std::string change = {};
};

// Builds and submits the event; returns whether the sink accepted it. A
// refused transition leaves the tracker's state as it was. Called only
// during process(), so a reference: no allocation per notification.
using TransitionHandler = FunctionRef<bool(Transition&)>;

struct TrackerOptions {
  Severity min_severity = Severity::Warning;
  std::chrono::seconds renotify_interval{0};
  bool send_clear = true;
};

// Persistence: a snapshot, state_file (JSON of every open outage, and of the
// keys closed since the last start, replaced atomically, for operators to
// read), and a journal beside it, state_file + ".journal": one binary record
// per change (framed like the spool's records, see spool_format.h), appended
// with a single write(2) and no fsync. The journal is folded into a new
// snapshot when it grows past max(1024, 2 x keys in the snapshot) records.
//
// A change that sends an event is not journaled by process(): its record
// rides in the event's spool record (Transition::change), so that
// collectd's thread pays one write(2) per event, and a crash cannot keep the
// event while losing the change (or the reverse), which would page the same
// failure twice under two outage_ids. A delivery thread hands the record to
// persist() just before the event leaves the spool; a restart gets the
// records of events still pending back through the constructor's recovered.
// Each change carries the key's version, one more than the last, so that
// whichever order they arrive in (from the journal, the snapshot, the spool,
// or delivery threads acknowledging different outages of a key out of
// order) the newest wins. A change without an event (a close when
// SendClear is false) has nothing to ride in and is journaled at once.
//
// A journaled change survives a crash of the process (kill -9) as soon as it
// is written; it survives a power loss only once sync() has run after it (or
// a snapshot was written after it).
class OutageTracker {
 public:
  // Loads the outages persisted beside state_file, then the changes in
  // recovered: the Transition::change of every event of this integration
  // still in the spool, in any order (all of them: a key it does not name is
  // taken to have no older change left to guard against). For each key the
  // highest version wins. A corrupt or truncated snapshot, damaged journal
  // records or malformed recovered changes give a WARNING and are skipped;
  // so does a journal of JSON lines left by an earlier version. Then writes
  // a fresh snapshot of the result and starts an empty journal.
  OutageTracker(std::string state_file, TrackerOptions options, Logger& log,
                const std::vector<std::string>& recovered = {});
  ~OutageTracker();
  OutageTracker(const OutageTracker&) = delete;
  OutageTracker& operator=(const OutageTracker&) = delete;

  // Thread-safe. Concurrent calls for one key behave as some serial order;
  // a notification older than the last one processed for its key is ignored.
  // An exception from the handler propagates, with the state as it was (so
  // does std::length_error for a key too large for a journal record); a
  // failure to write the state file is logged (ERROR), not thrown.
  void process(const Notification& n, TransitionHandler handler);

  // Journals change (a Transition::change) unless a change of its key as new
  // was persisted already. Thread-safe; meant for the delivery thread, just
  // before the event carrying change leaves the spool (delivered or
  // dead-lettered), and never blocks on process()'s handler. A malformed
  // change, or a failure to write, is logged (ERROR, throttled), not thrown.
  void persist(std::string_view change);

  std::size_t open_outages() const;

  // Makes every change processed so far survive a power loss (fdatasync of
  // the journal). Thread-safe and cheap when nothing changed; meant to be
  // called periodically (e.g. every second by the delivery thread), never
  // from the notification path. A failure is logged (ERROR), not thrown.
  void sync();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xmatters
