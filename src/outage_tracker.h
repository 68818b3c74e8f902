// One integration's open outages (CONTRACT §3): decides, for each
// notification, whether it opens, escalates, re-pages or clears an outage.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "event.h"
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
};

// Builds and submits the event; returns whether the sink accepted it. A
// refused transition leaves the tracker's state as it was.
using TransitionHandler = std::function<bool(const Transition&)>;

struct TrackerOptions {
  Severity min_severity = Severity::Warning;
  std::chrono::seconds renotify_interval{0};
  bool send_clear = true;
};

// Persistence: a snapshot, state_file (JSON of every open outage, replaced
// atomically, for operators to read), and a journal beside it, state_file +
// ".journal": one binary record per change (framed like the spool's records,
// see spool_format.h), appended with a single write(2) and no fsync, so that
// a notification costs microseconds however many outages are open. The
// journal is folded into a new snapshot when it grows past max(1024, 2 x
// open outages) records. A change survives a crash of the process (kill -9)
// as soon as process() returns; it survives a power loss only once sync()
// has run after it (or a snapshot was written after it).
class OutageTracker {
 public:
  // Loads the open outages persisted beside state_file (a corrupt or
  // truncated snapshot, or damaged journal records, give a WARNING and are
  // skipped; so does a journal of JSON lines left by an earlier version),
  // then writes a fresh snapshot and starts an empty journal.
  OutageTracker(std::string state_file, TrackerOptions options, Logger& log);
  ~OutageTracker();
  OutageTracker(const OutageTracker&) = delete;
  OutageTracker& operator=(const OutageTracker&) = delete;

  // Thread-safe. Concurrent calls for one key behave as some serial order;
  // a notification older than the last one processed for its key is ignored.
  // An exception from the handler propagates, with the state as it was; a
  // failure to write the state file is logged (ERROR), not thrown.
  void process(const Notification& n, const TransitionHandler& handler);

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
