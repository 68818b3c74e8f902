// Outage tracking (CONTRACT §3) and routing: the table row by row, collectd's
// real notification shapes, randomized and concurrent sequences checked
// against invariants, persistence across restarts, and the Router.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config.h"
#include "outage_tracker.h"
#include "router.h"
#include "spool_format.h"
#include "testing.h"

using namespace xmatters;
namespace sf = xmatters::spool_format;
using std::chrono::nanoseconds;
using std::chrono::seconds;

namespace {

// An instant with a sub-second part, so that persistence must keep full precision.
const TimePoint T0 = TimePoint(std::chrono::duration_cast<Clock::duration>(seconds(1795866465) + nanoseconds(123456789)));

TimePoint at(long s) { return T0 + seconds(s); }
// Milliseconds, for threads that race: their reorderings stay far below the
// gap the tracker takes for a step back of the clock.
TimePoint at_ms(long ms) { return T0 + std::chrono::milliseconds(ms); }

Notification note(Severity sev, TimePoint t, const std::string& host = "h", const std::string& plugin = "cpu",
                  const std::string& type = "percent", const std::string& type_instance = "user") {
  Notification n;
  n.severity = sev;
  n.time = t;
  n.host = host;
  n.plugin = plugin;
  n.plugin_instance = plugin.empty() ? "" : "0";
  n.type = type;
  n.type_instance = type_instance;
  n.message = "test notification";
  return n;
}

// A copy of what the handler was given (the Transition itself refers to the
// tracker's state and lives only during the call).
struct Seen {
  EventType type;
  Severity notification_severity;
  TimePoint notification_time;
  OutageKey key;
  Outage outage;
};

// The test's handler: records every transition; refuses while refuse is
// set. Like the spool, it keeps each accepted event's change until the event
// is delivered (deliver()).
struct Recorder {
  std::mutex mutex;
  std::vector<Seen> seen;
  std::vector<std::string> changes;  // of the events not delivered yet, in order
  bool refuse = false;
  int calls = 0;

  // The lambda itself: a TransitionHandler only refers to it, so it must
  // live as long as the process() call it is passed to.
  auto handler() {
    return [this](const Transition& t) {
      std::lock_guard<std::mutex> lock(mutex);
      ++calls;
      if (refuse) return false;
      seen.push_back({t.type, t.notification.severity, t.notification.time, OutageKey::of(t.notification), t.outage});
      changes.emplace_back(t.change);
      return true;
    };
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return seen.size();
  }
  // The changes of the events not delivered yet, which are now taken as delivered.
  std::vector<std::string> take_changes() {
    std::lock_guard<std::mutex> lock(mutex);
    return std::exchange(changes, {});
  }
  // Delivers every event so far, in order: what the delivery thread does.
  void deliver(OutageTracker& t) {
    for (const auto& c : take_changes()) t.persist(c);
  }
};

// process(), then the delivery of its event, if any.
void process_delivered(OutageTracker& t, Recorder& rec, const Notification& n) {
  t.process(n, rec.handler());
  rec.deliver(t);
}

TrackerOptions opts(Severity min = Severity::Warning, long renotify = 0, bool send_clear = true) {
  TrackerOptions o;
  o.min_severity = min;
  o.renotify_interval = seconds(renotify);
  o.send_clear = send_clear;
  return o;
}

bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// A tracker in its own directory, with a log; send() delivers each event at
// once (hold() sends without delivering).
struct Fixture {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Recorder rec;
  std::string file = dir / "outages-test.json";
  std::string journal = file + ".journal";
  std::unique_ptr<OutageTracker> tracker;

  explicit Fixture(TrackerOptions o = opts()) { restart(o); }
  void restart(TrackerOptions o = opts(), const std::vector<std::string>& recovered = {}) {
    tracker.reset();
    tracker = std::make_unique<OutageTracker>(file, o, log, recovered);
  }
  void send(const Notification& n) { process_delivered(*tracker, rec, n); }
  // Sends n, and returns the change of its event (empty when none was sent)
  // without delivering it: the event is still in the spool.
  std::string hold(const Notification& n) {
    rec.deliver(*tracker);
    tracker->process(n, rec.handler());
    const auto held = rec.take_changes();
    return held.empty() ? std::string() : held.front();
  }
};

// --- the CONTRACT §3 table, row by row ----------------------------------------------

void test_failure_opens_outage() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  if (f.rec.size() != 1) return;
  const Seen& s = f.rec.seen[0];
  CU_ASSERT(s.type == EventType::Outage);
  CU_ASSERT(is_uuid(s.outage.id));
  CU_ASSERT(s.outage.severity == Severity::Failure);
  CU_ASSERT(s.outage.start == at(0));
  CU_ASSERT(s.outage.last_page == at(0));
}

void test_warning_opens_outage() {
  Fixture f;
  f.send(note(Severity::Warning, at(0)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  if (f.rec.size() != 1) return;
  CU_ASSERT(f.rec.seen[0].type == EventType::Outage);
  CU_ASSERT(f.rec.seen[0].outage.severity == Severity::Warning);
}

void test_each_outage_gets_new_id() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Okay, at(10)));
  f.send(note(Severity::Failure, at(20)));
  f.send(note(Severity::Failure, at(20), "other-host"));
  CU_ASSERT_EQUAL(f.rec.size(), 4u);
  if (f.rec.size() != 4) return;
  CU_ASSERT(f.rec.seen[0].outage.id == f.rec.seen[1].outage.id);
  CU_ASSERT(f.rec.seen[2].outage.id != f.rec.seen[0].outage.id);
  CU_ASSERT(f.rec.seen[3].outage.id != f.rec.seen[2].outage.id);
  CU_ASSERT(f.rec.seen[2].outage.start == at(20));
}

void test_same_severity_while_open_sends_nothing() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  for (int i = 1; i <= 20; ++i) f.send(note(Severity::Failure, at(i * 10)));  // collectd's Persist true
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
}

void test_lower_severity_while_open_sends_nothing() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Warning, at(10)));
  f.send(note(Severity::Warning, at(20)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  // ...and a FAILURE after the WARNING is no escalation: critical was paged already.
  f.send(note(Severity::Failure, at(30)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
}

void test_failure_after_warning_escalates() {
  Fixture f;
  f.send(note(Severity::Warning, at(0)));
  f.send(note(Severity::Warning, at(10)));
  f.send(note(Severity::Failure, at(20)));
  f.send(note(Severity::Failure, at(30)));
  f.send(note(Severity::Warning, at(40)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  if (f.rec.size() != 2) return;
  const Seen& e = f.rec.seen[1];
  CU_ASSERT(e.type == EventType::Outage);
  CU_ASSERT(e.outage.id == f.rec.seen[0].outage.id);
  CU_ASSERT(e.outage.severity == Severity::Failure);
  CU_ASSERT(e.outage.start == at(0));
  CU_ASSERT(e.outage.last_page == at(20));
}

void test_renotify_after_interval() {
  Fixture f(opts(Severity::Warning, 60));
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Failure, at(30)));   // not elapsed
  f.send(note(Severity::Failure, at(59)));   // not elapsed
  f.send(note(Severity::Failure, at(60)));   // exactly elapsed: re-page
  f.send(note(Severity::Failure, at(100)));  // 40 s since the last page
  f.send(note(Severity::Warning, at(125)));  // any non-OKAY re-pages; severity stays critical
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  if (f.rec.size() != 3) return;
  for (const auto& s : f.rec.seen) {
    CU_ASSERT(s.type == EventType::Outage);
    CU_ASSERT(s.outage.id == f.rec.seen[0].outage.id);
    CU_ASSERT(s.outage.start == at(0));
    CU_ASSERT(s.outage.severity == Severity::Failure);
  }
  CU_ASSERT(f.rec.seen[1].outage.last_page == at(60));
  CU_ASSERT(f.rec.seen[2].outage.last_page == at(125));
  CU_ASSERT(f.rec.seen[2].notification_severity == Severity::Warning);
}

void test_renotify_not_elapsed_sends_nothing() {
  Fixture f(opts(Severity::Warning, 3600));
  f.send(note(Severity::Failure, at(0)));
  for (int i = 1; i < 360; ++i) f.send(note(Severity::Failure, at(i * 10)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  f.send(note(Severity::Failure, at(3600)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
}

void test_renotify_zero_never_repages() {
  Fixture f(opts(Severity::Warning, 0));
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Failure, at(86400 * 30)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
}

void test_okay_clears_open_outage() {
  Fixture f;
  f.send(note(Severity::Warning, at(0)));
  f.send(note(Severity::Failure, at(10)));
  f.send(note(Severity::Okay, at(70)));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  if (f.rec.size() != 3) return;
  const Seen& c = f.rec.seen[2];
  CU_ASSERT(c.type == EventType::Clear);
  CU_ASSERT(c.outage.id == f.rec.seen[0].outage.id);
  CU_ASSERT(c.outage.severity == Severity::Failure);  // the highest it reached
  CU_ASSERT(c.outage.start == at(0));
  CU_ASSERT(c.notification_time == at(70));
  CU_ASSERT(c.notification_severity == Severity::Okay);
  // Closed: a second OKAY sends nothing.
  f.send(note(Severity::Okay, at(80)));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
}

void test_okay_with_send_clear_false_closes_silently() {
  Fixture f(opts(Severity::Warning, 0, false));
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Okay, at(10)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  // The outage closed although nothing was sent: the next FAILURE is a new outage.
  f.send(note(Severity::Failure, at(20)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  if (f.rec.size() == 2) CU_ASSERT(f.rec.seen[1].outage.id != f.rec.seen[0].outage.id);
}

void test_okay_without_outage_sends_nothing() {
  Fixture f;
  // collectd's start-up OKAY for every thresholded value list.
  for (int i = 0; i < 50; ++i) f.send(note(Severity::Okay, at(0), "h" + std::to_string(i)));
  CU_ASSERT_EQUAL(f.rec.calls, 0);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(xmtest::read_file(f.journal), "");  // nothing changed, nothing written
}

void test_below_min_severity_sends_nothing() {
  Fixture f(opts(Severity::Failure));
  f.send(note(Severity::Warning, at(0)));
  f.send(note(Severity::Warning, at(10)));
  f.send(note(Severity::Okay, at(20)));
  CU_ASSERT_EQUAL(f.rec.calls, 0);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

void test_min_severity_failure_opens_on_failure() {
  Fixture f(opts(Severity::Failure));
  f.send(note(Severity::Warning, at(0)));
  f.send(note(Severity::Failure, at(10)));
  f.send(note(Severity::Warning, at(20)));  // lower while open: nothing, and no close
  f.send(note(Severity::Okay, at(30)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  if (f.rec.size() != 2) return;
  CU_ASSERT(f.rec.seen[0].type == EventType::Outage);
  CU_ASSERT(f.rec.seen[0].outage.severity == Severity::Failure);
  CU_ASSERT(f.rec.seen[0].outage.start == at(10));
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
}

void test_older_notification_ignored() {
  Fixture f;
  f.send(note(Severity::Failure, at(10)));
  f.send(note(Severity::Okay, at(5)));  // overtaken: must not clear
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.send(note(Severity::Okay, at(10)));  // equal time is not older
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

void test_missing_value_okay_with_older_value_time_clears() {
  // collectd stamps the missing-value FAILURE with the time it noticed the
  // gap, and the OKAY of the value's return with the value's own time, which
  // can be earlier (a late value).
  Fixture f;
  f.send(note(Severity::Okay, at(900)));
  Notification missing = note(Severity::Failure, at(1000));
  missing.message = "Host h, plugin cpu (instance 0) type percent (instance user): has not been updated for 12.000 seconds.";
  f.send(missing);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  Notification back = note(Severity::Okay, at(995));
  back.meta = {{"CurrentValue", 50.0}};
  f.send(back);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  if (f.rec.size() == 2) CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
  // A value older than the last one processed is still ignored.
  f.send(note(Severity::Failure, at(950)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
}

void test_clock_step_back_is_not_ignored() {
  Fixture f;
  f.send(note(Severity::Failure, at(100000)));
  // The clock went back an hour: the recovery must still clear the outage.
  f.send(note(Severity::Okay, at(100000 - 3600)));
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning, "step back of the clock"), 1u);
  // And the key is not silenced afterwards.
  f.send(note(Severity::Failure, at(100000 - 3500)));
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
}

void test_older_notification_ignored_without_outage() {
  Fixture f;
  f.send(note(Severity::Okay, at(10)));
  f.send(note(Severity::Failure, at(5)));  // older than the OKAY already processed
  CU_ASSERT_EQUAL(f.rec.calls, 0);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  // Other keys keep their own times.
  f.send(note(Severity::Failure, at(5), "h2"));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
}

void test_refused_outage_is_not_opened() {
  Fixture f;
  f.rec.refuse = true;
  f.send(note(Severity::Failure, at(0)));
  CU_ASSERT_EQUAL(f.rec.calls, 1);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(xmtest::read_file(f.journal), "");
  // A later FAILURE tries again (not a repeat: nothing was paged).
  f.rec.refuse = false;
  f.send(note(Severity::Failure, at(10)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  if (f.rec.size() == 1) CU_ASSERT(f.rec.seen[0].outage.start == at(10));
}

void test_refused_escalation_and_clear_keep_state() {
  Fixture f;
  f.send(note(Severity::Warning, at(0)));
  f.rec.refuse = true;
  f.send(note(Severity::Failure, at(10)));  // refused escalation: still paged as warning
  f.send(note(Severity::Okay, at(20)));     // refused clear: still open
  CU_ASSERT_EQUAL(f.rec.calls, 3);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.rec.refuse = false;
  f.send(note(Severity::Failure, at(30)));  // escalates now
  f.send(note(Severity::Okay, at(40)));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  if (f.rec.size() != 3) return;
  CU_ASSERT(f.rec.seen[1].outage.severity == Severity::Failure);
  CU_ASSERT(f.rec.seen[1].outage.id == f.rec.seen[0].outage.id);
  CU_ASSERT(f.rec.seen[2].type == EventType::Clear);
  CU_ASSERT(f.rec.seen[2].outage.id == f.rec.seen[0].outage.id);
}

void test_handler_exception_leaves_state() {
  Fixture f;
  bool threw = false;
  try {
    f.tracker->process(note(Severity::Failure, at(0)),
                       [](const Transition&) -> bool { throw std::runtime_error("spool full of bees"); });
  } catch (const std::runtime_error&) {
    threw = true;
  }
  CU_ASSERT(threw);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  f.send(note(Severity::Failure, at(0)));  // the lock was released and the time not taken
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
}

// --- collectd's notification shapes -------------------------------------------------

Notification threshold_failure(TimePoint t, const std::string& ds, double value) {
  Notification n = note(Severity::Failure, t, "h", "cpu", "percent", "user");
  char msg[512];
  std::snprintf(msg, sizeof msg,
                "Host h, plugin cpu (instance 0) type percent (instance user): Data source \"%s\" is currently "
                "%f. That is above the failure threshold of %f.",
                ds.c_str(), value, 90.0);
  n.message = msg;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  n.meta = {{"DataSource", std::string(ds)}, {"CurrentValue", value}, {"WarningMin", nan},
            {"WarningMax", 80.0},           {"FailureMin", nan},     {"FailureMax", 90.0}};
  return n;
}

void test_threshold_failure_with_meta() {
  Fixture f;
  f.send(threshold_failure(at(0), "value", 95.0));
  // Same value list, another data source: collectd's state is per value list.
  f.send(threshold_failure(at(10), "other", 97.0));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  Notification okay = note(Severity::Okay, at(20), "h", "cpu", "percent", "user");
  okay.message = "Host h, plugin cpu (instance 0) type percent (instance user): All data sources are within range again. "
                 "Current value of \"value\" is 12.000000.";
  okay.meta = {{"DataSource", std::string("value")}, {"CurrentValue", 12.0}};
  f.send(okay);
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  if (f.rec.size() != 2) return;
  CU_ASSERT(f.rec.seen[0].key == (OutageKey{"h", "cpu", "0", "percent", "user"}));
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
  CU_ASSERT(f.rec.seen[1].outage.id == f.rec.seen[0].outage.id);
}

void test_missing_value_failure_without_meta() {
  Fixture f;
  Notification n = note(Severity::Failure, at(0), "h", "load", "load", "");
  n.plugin_instance = "";
  n.message = "Host h, plugin load type load: has not been updated for 12.000 seconds.";
  f.send(n);
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  // Threshold FAILUREs for the same value list belong to the same outage.
  Notification again = n;
  again.time = at(10);
  again.message = "Host h, plugin load type load: Data source \"shortterm\" is currently 40.000000. That is above the "
                  "failure threshold of 20.000000.";
  again.meta = {{"DataSource", std::string("shortterm")}, {"CurrentValue", 40.0}};
  f.send(again);
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  Notification okay = n;
  okay.severity = Severity::Okay;
  okay.time = at(30);
  okay.message = "Host h, plugin load type load: All data sources are within range again.";
  f.send(okay);
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  if (f.rec.size() == 2) CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
}

void test_putnotif_without_type() {
  Fixture f;
  Notification n;
  n.severity = Severity::Failure;
  n.time = at(0);
  n.host = "h";
  n.plugin = "exec";
  n.message = "backup job failed";
  f.send(n);
  Notification other = n;  // another plugin, same host: another outage
  other.plugin = "script";
  f.send(other);
  n.time = at(5);
  f.send(n);
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  n.severity = Severity::Okay;
  n.time = at(10);
  f.send(n);
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  if (f.rec.size() == 3) CU_ASSERT(f.rec.seen[2].key == (OutageKey{"h", "exec", "", "", ""}));
}

// --- invariants over long sequences --------------------------------------------------------

// Checks one key's events in the order the handler saw them; returns whether
// an outage is open at the end.
struct KeyChecker {
  std::optional<Outage> open;
  TimePoint last_paged;  // as the checker saw it, not as the tracker reports it
  std::set<std::string>* all_ids;
  long renotify;
  std::string failure;

  void event(const Seen& s) {
    if (!failure.empty()) return;
    if (s.type == EventType::Clear) {
      if (!open) failure = "clear without an open outage";
      else if (s.outage.id != open->id) failure = "clear of another outage";
      else if (s.notification_severity != Severity::Okay) failure = "clear for a non-OKAY";
      open.reset();
      return;
    }
    if (s.notification_severity == Severity::Okay) {
      failure = "outage event for an OKAY";
      return;
    }
    if (s.outage.last_page != s.notification_time) failure = "last_page is not this page's time";
    if (s.outage.severity < s.notification_severity) failure = "outage severity below the notification's";
    if (!open) {
      if (!all_ids->insert(s.outage.id).second) failure = "outage id reused";
      if (s.outage.start != s.notification_time) failure = "start is not the opening time";
    } else if (s.outage.id != open->id) {
      failure = "second outage opened while one is open";
    } else if (s.outage.start != open->start) {
      failure = "start changed";
    } else if (s.outage.severity < open->severity) {
      failure = "severity went down";
    } else if (s.outage.severity == open->severity &&
               (renotify == 0 || s.notification_time - last_paged < seconds(renotify))) {
      failure = "repeat that is neither escalation nor renotify";
    }
    open = s.outage;
    last_paged = s.notification_time;
  }
};

void test_randomized_sequence() {
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  for (int round = 0; round < 4; ++round) {
    const Severity min = round % 2 ? Severity::Failure : Severity::Warning;
    const long renotify = round < 2 ? 0 : 120;
    const bool send_clear = round != 3;
    Fixture f(opts(min, renotify, send_clear));
    std::set<std::string> ids;
    std::map<std::string, KeyChecker> checkers;
    const std::vector<std::string> hosts{"a", "b", "c", "d", "e"};
    long now = 0;
    std::size_t expected_last_size = 0;
    for (int i = 0; i < 3000; ++i) {
      now += std::uniform_int_distribution<long>(0, 30)(rng);  // sometimes equal times
      const std::string host = hosts[rng() % hosts.size()];
      const Severity sev = static_cast<Severity>(rng() % 3);
      long t = now;
      if (rng() % 20 == 0) t -= 40;  // an overtaken notification
      f.rec.refuse = rng() % 10 == 0;
      const bool open_before = checkers[host].open.has_value();
      f.send(note(sev, at(t), host));
      const std::size_t size = f.rec.size();
      if (sev == Severity::Okay && !open_before) CU_ASSERT_EQUAL(size, expected_last_size);
      if (!open_before && sev != Severity::Okay && sev < min) CU_ASSERT_EQUAL(size, expected_last_size);
      auto& c = checkers[host];
      c.all_ids = &ids;
      c.renotify = renotify;
      for (std::size_t j = expected_last_size; j < size; ++j) c.event(f.rec.seen[j]);
      expected_last_size = size;
      if (!c.failure.empty()) {
        std::fprintf(stderr, "seed %u round %d step %d host %s: %s\n", seed, round, i, host.c_str(),
                     c.failure.c_str());
        CU_FAIL("invariant violated");
        return;
      }
      if (!send_clear && sev == Severity::Okay && open_before) {
        // A silent close shows only in the count; this notification is the
        // only one that could have changed it.
        std::size_t open_now = 0;
        for (const auto& [h, kc] : checkers) open_now += kc.open ? 1 : 0;
        if (f.tracker->open_outages() + 1 == open_now) c.open.reset();
      }
      std::size_t open_now = 0;
      for (const auto& [h, kc] : checkers) open_now += kc.open ? 1 : 0;
      if (f.tracker->open_outages() != open_now) {
        std::fprintf(stderr, "seed %u round %d step %d: open_outages %zu, expected %zu\n", seed, round, i,
                     f.tracker->open_outages(), open_now);
        CU_FAIL("open_outages disagrees with the events");
        return;
      }
    }
    CU_ASSERT(ids.size() > 10);  // the sequence did exercise opening and closing
  }
}

// A delivery thread for the concurrency tests: persists the events'
// changes in batches, shuffled (as delivery threads acknowledging different
// outages may), until it goes out of scope; with sync() after each batch
// when asked.
class Deliverer {
 public:
  Deliverer(Fixture& f, unsigned seed, bool sync)
      : thread_([this, &f, seed, sync] {
          std::mt19937 rng(seed);
          while (!done_) {
            auto batch = f.rec.take_changes();
            std::shuffle(batch.begin(), batch.end(), rng);
            for (const auto& c : batch) f.tracker->persist(c);
            if (sync) f.tracker->sync();
          }
        }) {}
  ~Deliverer() {
    done_ = true;
    thread_.join();
  }
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

void test_many_threads() {
  Fixture f(opts(Severity::Warning, 0, true));
  constexpr int kThreads = 8, kSteps = 1500;
  const std::vector<std::string> shared_hosts{"shared1", "shared2"};
  std::atomic<long> clock{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937 rng(static_cast<unsigned>(th) * 7919u + 1);
      const std::string own = "own" + std::to_string(th);
      for (int i = 0; i < kSteps; ++i) {
        const std::string& host = rng() % 2 ? own : shared_hosts[rng() % shared_hosts.size()];
        const Severity sev = static_cast<Severity>(rng() % 3);
        f.tracker->process(note(sev, at_ms(clock.fetch_add(1)), host), f.rec.handler());
      }
    });
  }
  // Racing the notifications, the silent closes' appends and the
  // compactions; with its periodic sync().
  {
    const Deliverer deliverer(f, 4242, true);
    for (auto& t : threads) t.join();
  }
  f.rec.deliver(*f.tracker);

  // The handler runs under the key's lock, so per key the recorded order is
  // the order of decisions: it must obey the table.
  std::set<std::string> ids;
  std::map<std::string, KeyChecker> checkers;
  for (const auto& s : f.rec.seen) {
    auto& c = checkers[s.key.host];
    c.all_ids = &ids;
    c.renotify = 0;
    c.event(s);
    if (!c.failure.empty()) {
      std::fprintf(stderr, "host %s: %s\n", s.key.host.c_str(), c.failure.c_str());
      CU_FAIL("invariant violated");
      return;
    }
  }
  std::size_t open_now = 0;
  for (const auto& [h, c] : checkers) open_now += c.open ? 1 : 0;
  CU_ASSERT_EQUAL(f.tracker->open_outages(), open_now);
  CU_ASSERT(ids.size() > 50);

  // The files end with the newest state, whatever order the threads ran in.
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), open_now);
  const std::size_t before = f.rec.size();
  for (const auto& [h, c] : checkers) f.send(note(Severity::Okay, at_ms(clock.load() + 1), h));
  CU_ASSERT_EQUAL(f.rec.size() - before, open_now);
  for (std::size_t i = before; i < f.rec.size(); ++i) {
    const Seen& s = f.rec.seen[i];
    CU_ASSERT(s.type == EventType::Clear);
    CU_ASSERT(checkers[s.key.host].open && checkers[s.key.host].open->id == s.outage.id);
  }
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Error) + f.log.count(LogLevel::Warning), 0u);
}

// --- persistence -------------------------------------------------------------------------------

void test_restart_keeps_open_outage() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Warning, at(0), "h2"));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  if (f.rec.size() != 2) return;
  const Outage first = f.rec.seen[0].outage;
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  f.send(note(Severity::Failure, at(300)));  // still failing after the restart: not paged again
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  f.send(note(Severity::Okay, at(600)));  // recovered: cleared
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  if (f.rec.size() == 3) {
    const Seen& c = f.rec.seen[2];
    CU_ASSERT(c.type == EventType::Clear);
    CU_ASSERT(c.outage.id == first.id);
    CU_ASSERT(c.outage.start == first.start);  // to the nanosecond: duration spans the restart
    CU_ASSERT(c.outage.severity == Severity::Failure);
  }
  // The escalation state survives too: h2 was paged as warning.
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.send(note(Severity::Failure, at(700), "h2"));
  CU_ASSERT_EQUAL(f.rec.size(), 4u);
  if (f.rec.size() == 4) {
    CU_ASSERT(f.rec.seen[3].outage.id == f.rec.seen[1].outage.id);
    CU_ASSERT(f.rec.seen[3].outage.severity == Severity::Failure);
  }
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

void test_restart_keeps_renotify_and_order() {
  Fixture f(opts(Severity::Warning, 100));
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Failure, at(150)));  // re-page at 150
  f.restart(opts(Severity::Warning, 100));
  f.send(note(Severity::Failure, at(200)));  // 50 s after the last page: nothing
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  f.send(note(Severity::Okay, at(190)));  // older than what was processed: ignored
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.send(note(Severity::Failure, at(250)));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
}

mode_t file_mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

void test_state_file_mode_and_no_temp_left() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  CU_ASSERT_EQUAL(file_mode(f.file), 0600u);
  CU_ASSERT_EQUAL(file_mode(f.journal), 0600u);
  CU_ASSERT(!xmtest::file_exists(f.file + ".tmp"));
  CU_ASSERT(!xmtest::file_exists(f.journal + ".old"));
  CU_ASSERT(xmtest::parse_json(xmtest::read_file(f.file)) != nullptr);
  f.tracker->sync();
  // Files an older run (or an administrator) left with a wider mode are narrowed.
  ::chmod(f.file.c_str(), 0644);
  ::chmod(f.journal.c_str(), 0644);
  f.restart();
  CU_ASSERT_EQUAL(file_mode(f.file), 0600u);
  CU_ASSERT_EQUAL(file_mode(f.journal), 0600u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
  // Closing the last outage is written too.
  f.send(note(Severity::Okay, at(10)));
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

void test_hostile_key_bytes_round_trip() {
  Fixture f;
  const std::string host = "h\xff\xfe\"\\\n\x01";
  f.send(note(Severity::Failure, at(0), host, "pl\xc3\xa9"));
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning), 0u);
  f.send(note(Severity::Failure, at(10), host, "pl\xc3\xa9"));
  f.send(note(Severity::Okay, at(20), host, "pl\xc3\xa9"));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  if (f.rec.size() == 2) CU_ASSERT(f.rec.seen[1].type == EventType::Clear && f.rec.seen[1].key.host == host);
}

void check_clean_start(const std::string& content) {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  const std::string file = dir / "outages-x.json";
  xmtest::write_file(file, content);
  OutageTracker t(file, opts(), log);
  CU_ASSERT_EQUAL(t.open_outages(), 0u);
  CU_ASSERT(log.contains(LogLevel::Warning, file));
  if (!log.contains(LogLevel::Warning, file)) std::fprintf(stderr, "%s", log.dump().c_str());
  Recorder rec;
  process_delivered(t, rec, note(Severity::Failure, at(0)));  // works, and replaces the bad file
  CU_ASSERT_EQUAL(rec.size(), 1u);
  OutageTracker again(file, opts(), log);
  CU_ASSERT_EQUAL(again.open_outages(), 1u);
}

void test_corrupt_state_file() {
  check_clean_start("this is not JSON {");
  check_clean_start("");
  check_clean_start("[1, 2, 3]");
  check_clean_start("{\"version\": 1, \"outages\": [{\"host\": \"h\"}]}");
  check_clean_start("{\"version\": 99, \"outages\": []}");
  check_clean_start(std::string("\0\0\0\0", 4));
}

void test_truncated_state_file() {
  Fixture f;
  f.send(note(Severity::Failure, at(0)));
  f.send(note(Severity::Failure, at(0), "h2"));
  f.restart();  // folds the journal into the snapshot
  const std::string full = xmtest::read_file(f.file);
  CU_ASSERT(full.size() > 20);
  check_clean_start(full.substr(0, full.size() / 2));
  check_clean_start(full.substr(0, full.size() - 3));
}

void test_missing_file_is_clean_start_without_warning() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  OutageTracker t(dir / "outages-new.json", opts(), log);
  CU_ASSERT_EQUAL(t.open_outages(), 0u);
  CU_ASSERT_EQUAL(log.entries().size(), 0u);
}

void test_unwritable_state_file_logs_error() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  const std::string file = dir / "missing-dir/outages-x.json";
  OutageTracker t(file, opts(), log);
  Recorder rec;
  process_delivered(t, rec, note(Severity::Failure, at(0)));
  // The page went out; the outage is open in memory; the failure is loud.
  CU_ASSERT_EQUAL(rec.size(), 1u);
  CU_ASSERT_EQUAL(t.open_outages(), 1u);
  CU_ASSERT(log.contains(LogLevel::Error, file));
}

// --- the journal ---------------------------------------------------------------------------

// Where each record of a journal starts and how long it is, read with the
// framing's own parser; the journal must hold nothing else.
std::vector<std::pair<std::size_t, std::size_t>> records_of(const std::string& text) {
  std::vector<std::pair<std::size_t, std::size_t>> found;
  const sf::Damage damage = sf::scan_records(
      text, sf::LogKind::OutageJournal,
      [&](const sf::Record&, std::size_t offset, std::size_t size) { found.emplace_back(offset, size); });
  CU_ASSERT_EQUAL(damage.places, 0u);
  return found;
}

std::size_t records_in(const std::string& text) { return records_of(text).size(); }

std::size_t record_count(const std::string& path) {
  return records_in(xmtest::file_exists(path) ? xmtest::read_file(path) : "");
}

// A journal record written by hand from the format's description in
// spool_format.h, for the keys note() makes (plugin "cpu", instance "0",
// type "percent", type instance "user"), and a version; severity 1 is
// WARNING, 2 FAILURE.
void add_note_key(sf::RecordBuilder& b, const std::string& host, std::uint64_t version) {
  for (const char* field : {host.c_str(), "cpu", "0", "percent", "user"}) b.field(field);
  b.i64(static_cast<std::int64_t>(version));
}

std::string journal_set(const std::string& host, const std::string& outage_id, std::uint8_t severity,
                        TimePoint time, std::uint64_t version = 1) {
  const std::int64_t ns = std::chrono::duration_cast<nanoseconds>(time.time_since_epoch()).count();
  sf::RecordBuilder b(sf::RecordType::OutageSet, 0);
  add_note_key(b, host, version);
  b.i64(ns);  // last_page
  b.i64(ns);  // last_time
  b.u8(severity);
  b.i64(ns);  // start
  b.field(outage_id);
  return std::move(b).finish();
}

std::string journal_close(const std::string& host, std::uint64_t version, std::string_view trailing = {}) {
  sf::RecordBuilder b(sf::RecordType::OutageClose, 0);
  add_note_key(b, host, version);
  b.bytes(trailing);
  return std::move(b).finish();
}

// Which of hosts have an open outage, with its id: clears them all (an OKAY
// at time t for each), so it ends what it inspects.
std::map<std::string, std::string> drain_open(OutageTracker& t, const std::vector<std::string>& hosts, TimePoint time) {
  Recorder rec;
  for (const auto& h : hosts) process_delivered(t, rec, note(Severity::Okay, time, h));
  std::map<std::string, std::string> open;
  for (const auto& s : rec.seen)
    if (s.type == EventType::Clear) open[s.key.host] = s.outage.id;
  return open;
}

void test_restart_from_journal_only() {
  Fixture f;
  f.send(note(Severity::Warning, at(0), "a"));
  f.send(note(Severity::Failure, at(0), "b"));
  f.send(note(Severity::Warning, at(0), "c"));
  f.send(note(Severity::Failure, at(10), "a"));  // escalation
  f.send(note(Severity::Okay, at(20), "b"));     // close
  CU_ASSERT_EQUAL(f.rec.size(), 5u);
  if (f.rec.size() != 5) return;
  // Nothing reached the snapshot: the state is the journal's alone.
  auto snapshot = xmtest::parse_json(xmtest::read_file(f.file));
  CU_ASSERT(snapshot != nullptr && json_array_size(json_object_get(snapshot.get(), "outages")) == 0);
  CU_ASSERT_EQUAL(record_count(f.journal), 5u);
  f.restart();  // like a kill -9: the tracker's destructor writes nothing
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  // a was escalated before the restart: a FAILURE is no news.
  f.send(note(Severity::Failure, at(30), "a"));
  CU_ASSERT_EQUAL(f.rec.size(), 5u);
  const auto open = drain_open(*f.tracker, {"a", "b", "c"}, at(40));
  CU_ASSERT_EQUAL(open.size(), 2u);
  CU_ASSERT(open.count("a") && open.at("a") == f.rec.seen[0].outage.id);
  CU_ASSERT(open.count("c") && open.at("c") == f.rec.seen[2].outage.id);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

void test_torn_journal_tail() {
  Fixture f;
  f.send(note(Severity::Failure, at(0), "a"));
  f.send(note(Severity::Warning, at(0), "b"));
  const std::size_t kept = xmtest::read_file(f.journal).size();
  f.send(note(Severity::Failure, at(5), "b"));  // the last record: b's escalation
  const std::string full = xmtest::read_file(f.journal);
  const std::string snapshot = xmtest::read_file(f.file);
  CU_ASSERT(full.size() > kept + 20);
  const std::string last_record = full.substr(kept);
  const std::string b_id = f.rec.size() == 3 ? f.rec.seen[1].outage.id : "";
  for (std::size_t cut = kept; cut <= full.size(); ++cut) {
    // The journal as a crash at every byte of the last write(2) leaves it;
    // then the same with a whole record after the torn one, as a tracker
    // that could not write its snapshot at start-up appends it.
    for (const bool appended_after : {false, true}) {
      xmtest::TempDir dir;
      xmtest::CapturingLogger log;
      const std::string file = dir / "outages-test.json";
      xmtest::write_file(file, snapshot);
      xmtest::write_file(file + ".journal", full.substr(0, cut) + (appended_after ? last_record : ""));
      const bool torn = cut != kept && cut != full.size();
      const bool lost = cut < full.size() && !appended_after;
      {
        OutageTracker t(file, opts(), log);
        CU_ASSERT_EQUAL(t.open_outages(), 2u);
        // Without its last record, b stays paged as warning: a FAILURE escalates it again.
        Recorder rec;
        process_delivered(t, rec, note(Severity::Failure, at(10), "b"));
        CU_ASSERT_EQUAL(rec.size(), lost ? 1u : 0u);
        if (rec.size() == 1) CU_ASSERT(rec.seen[0].outage.id == b_id);
        CU_ASSERT_EQUAL(log.count(LogLevel::Warning, file + ".journal"), torn ? 1u : 0u);
        // Only damage that reaches the end is called the expected crash damage.
        CU_ASSERT_EQUAL(log.count(LogLevel::Warning, "torn last record"), torn && !appended_after ? 1u : 0u);
        CU_ASSERT_EQUAL(log.count(LogLevel::Error), 0u);
      }
      OutageTracker again(file, opts(), log);  // the torn record is gone for good
      CU_ASSERT_EQUAL(again.open_outages(), 2u);
      CU_ASSERT_EQUAL(log.count(LogLevel::Warning), torn ? 1u : 0u);
    }
  }
}

void test_corrupt_journal_records_skipped() {
  Fixture f;
  f.send(note(Severity::Failure, at(0), "a"));
  f.send(note(Severity::Failure, at(0), "b"));
  f.send(note(Severity::Warning, at(0), "c"));
  f.send(note(Severity::Failure, at(10), "c"));  // escalation, after the damage below
  std::string text = xmtest::read_file(f.journal);
  const auto records = records_of(text);
  CU_ASSERT_EQUAL_FATAL(records.size(), 4u);
  // A flipped byte in the second record (b's opening)...
  const auto [b_offset, b_size] = records[1];
  text[b_offset + b_size / 2] = static_cast<char>(text[b_offset + b_size / 2] ^ 0x20);
  // ...records whose checksum is right but whose content is no change the
  // tracker writes (each would change a or b if it were applied)...
  text += journal_set("a", "d0000000-0000-4000-8000-000000000000", 3, at(20), 9);  // no such severity
  text += journal_set("b", "not an id!", 2, at(20), 9);
  text += journal_close("a", 9, "x");  // a byte too many
  // ...a spool record, whose type the journal does not accept...
  text += sf::encode_ack("ev-1");
  // ...and after all of it, a valid record, still applied.
  const std::string d_id = "d0000000-0000-4000-8000-000000000001";
  text += journal_set("d", d_id, 2, at(20));
  xmtest::write_file(f.journal, text);
  f.log.clear();
  f.restart();
  // a; b's record is lost; c escalated; d from the last record.
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 3u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning), 1u);
  CU_ASSERT(f.log.contains(LogLevel::Warning, f.journal));
  CU_ASSERT(f.log.contains(LogLevel::Warning, "5 damaged"));
  f.send(note(Severity::Failure, at(30), "c"));  // escalated already: nothing
  CU_ASSERT_EQUAL(f.rec.size(), 4u);
  const auto open = drain_open(*f.tracker, {"a", "b", "c", "d"}, at(40));
  CU_ASSERT_EQUAL(open.size(), 3u);
  CU_ASSERT(open.count("a") && f.rec.size() > 0 && open.at("a") == f.rec.seen[0].outage.id);
  CU_ASSERT(open.count("c") && f.rec.size() > 2 && open.at("c") == f.rec.seen[2].outage.id);
  CU_ASSERT(open.count("d") && open.at("d") == d_id);
}

// Each log of the shared framing takes only its own record types.
void test_journal_and_spool_records_not_mixed() {
  const std::string set = journal_set("a", "d0000000-0000-4000-8000-000000000000", 2, at(0));
  const std::string close = journal_close("a", 2);
  const std::string ack = sf::encode_ack("ev-1");
  sf::Record r{};
  CU_ASSERT_EQUAL(sf::parse_record(set, 0, &r, sf::LogKind::OutageJournal), set.size());
  CU_ASSERT(r.type == sf::RecordType::OutageSet);
  CU_ASSERT_EQUAL(sf::parse_record(close, 0, &r, sf::LogKind::OutageJournal), close.size());
  CU_ASSERT(r.type == sf::RecordType::OutageClose);
  CU_ASSERT_EQUAL(sf::parse_record(set, 0, &r, sf::LogKind::Spool), 0u);
  CU_ASSERT_EQUAL(sf::parse_record(close, 0, &r, sf::LogKind::Spool), 0u);
  CU_ASSERT_EQUAL(sf::parse_record(ack, 0, &r, sf::LogKind::OutageJournal), 0u);
  CU_ASSERT_EQUAL(sf::parse_record(ack, 0, &r, sf::LogKind::Spool), ack.size());
}

// Upgrading from a version whose journal was JSON lines: the lines are not
// read (their changes are lost, as the WARNING says), the snapshot is.
void test_journal_of_json_lines_from_earlier_version() {
  Fixture f;
  f.send(note(Severity::Failure, at(0), "a"));
  f.send(note(Severity::Warning, at(0), "b"));
  f.restart();  // a and b in the snapshot, the journal empty
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  // What the earlier version appended, as it wrote it: b's escalation in
  // .journal.old; b's close and c's opening in .journal.
  const std::string key = R"(,"plugin":"cpu","plugin_instance":"0","type":"percent","type_instance":"user")";
  const std::string ns = std::to_string(std::chrono::duration_cast<nanoseconds>(at(10).time_since_epoch()).count());
  auto set = [&](const std::string& host, const std::string& id, const char* severity) {
    return R"({"op":"set","host":")" + host + "\"" + key + R"(,"last_page_ns":)" + ns + R"(,"last_time_ns":)" + ns +
           R"(,"outage_id":")" + id + R"(","severity":")" + severity + R"(","start_ns":)" + ns + "}\n";
  };
  xmtest::write_file(f.journal + ".old", set("b", f.rec.seen[1].outage.id, "FAILURE"));
  xmtest::write_file(f.journal, R"({"op":"close","host":"b")" + key + "}\n" +
                                    set("c", "d0000000-0000-4000-8000-000000000000", "FAILURE"));
  f.log.clear();
  f.restart();
  // One WARNING per file, and the state of the snapshot.
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning), 2u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning, "JSON lines"), 2u);
  CU_ASSERT(f.log.contains(LogLevel::Warning, f.journal + " "));
  CU_ASSERT(f.log.contains(LogLevel::Warning, f.journal + ".old "));
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Error), 0u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  CU_ASSERT(!xmtest::file_exists(f.journal + ".old"));
  // From here on the journal is binary, and read without complaint.
  f.send(note(Severity::Failure, at(20), "b"));  // b was still a warning in the snapshot
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  CU_ASSERT_EQUAL(record_count(f.journal), 1u);
  f.log.clear();
  f.restart();
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
  const auto open = drain_open(*f.tracker, {"a", "b", "c"}, at(30));
  CU_ASSERT_EQUAL(open.size(), 2u);
  CU_ASSERT(open.count("a") && open.at("a") == f.rec.seen[0].outage.id);
  CU_ASSERT(open.count("b") && open.at("b") == f.rec.seen[1].outage.id);
}

void test_corrupt_snapshot_keeps_journal() {
  Fixture f;
  f.send(note(Severity::Failure, at(0), "a"));
  xmtest::write_file(f.file, "{\"version\": 1, \"outa");
  f.restart();
  CU_ASSERT(f.log.contains(LogLevel::Warning, f.file + " cannot be used"));
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.restart();  // and the snapshot is good again
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning), 1u);
}

// The files as a crash during compaction leaves them: .journal.old beside a
// new .journal, with the snapshot either still the old one or already the
// new one.
void test_crash_during_compaction() {
  Fixture f;
  f.send(note(Severity::Failure, at(0), "h1"));
  f.send(note(Severity::Warning, at(0), "h2"));
  f.send(note(Severity::Failure, at(0), "h3"));
  f.restart();
  const std::string old_snapshot = xmtest::read_file(f.file);
  f.send(note(Severity::Okay, at(10), "h1"));
  f.send(note(Severity::Failure, at(10), "h2"));  // escalation
  f.send(note(Severity::Failure, at(10), "h4"));
  const std::string old_journal = xmtest::read_file(f.journal);
  f.restart();
  const std::string new_snapshot = xmtest::read_file(f.file);
  f.send(note(Severity::Okay, at(20), "h4"));
  f.send(note(Severity::Failure, at(20), "h5"));
  f.send(note(Severity::Okay, at(20), "h3"));
  f.send(note(Severity::Failure, at(20), "h3"));  // a new outage for h3
  const std::string new_journal = xmtest::read_file(f.journal);
  CU_ASSERT_EQUAL(records_in(old_journal), 3u);
  CU_ASSERT_EQUAL(records_in(new_journal), 4u);
  CU_ASSERT_EQUAL(f.rec.size(), 10u);
  if (f.rec.size() != 10) return;
  const std::map<std::string, std::string> expected{
      {"h2", f.rec.seen[1].outage.id}, {"h3", f.rec.seen[9].outage.id}, {"h5", f.rec.seen[7].outage.id}};

  for (const std::string* snapshot : {&old_snapshot, &new_snapshot}) {
    xmtest::TempDir dir;
    xmtest::CapturingLogger log;
    const std::string file = dir / "outages-test.json";
    xmtest::write_file(file, *snapshot);
    xmtest::write_file(file + ".journal.old", old_journal);
    xmtest::write_file(file + ".journal", new_journal);
    {
      OutageTracker t(file, opts(), log);
      CU_ASSERT_EQUAL(t.open_outages(), 3u);
      CU_ASSERT(!xmtest::file_exists(file + ".journal.old"));  // folded into the new snapshot
      CU_ASSERT_EQUAL(record_count(file + ".journal"), 0u);
    }
    OutageTracker t(file, opts(), log);
    Recorder rec;
    process_delivered(t, rec, note(Severity::Failure, at(30), "h2"));  // escalated already: nothing
    CU_ASSERT_EQUAL(rec.size(), 0u);
    CU_ASSERT(drain_open(t, {"h1", "h2", "h3", "h4", "h5"}, at(40)) == expected);
    CU_ASSERT_EQUAL(log.count(LogLevel::Warning) + log.count(LogLevel::Error), 0u);
  }
}

void test_journal_stays_bounded() {
  Fixture f;
  constexpr std::size_t kMinRecords = 1024;
  // Opening many outages: the bound grows with them (2 x open).
  constexpr int kOpen = 1500;
  std::size_t most = 0;
  for (int i = 0; i < kOpen; ++i) {
    f.send(note(Severity::Failure, at(0), "open" + std::to_string(i)));
    if (i % 50 == 0) {
      const std::size_t records = record_count(f.journal);
      most = std::max(most, records);
      CU_ASSERT(records <= std::max(kMinRecords, 2 * f.tracker->open_outages()) + 1);
    }
  }
  // Flapping keys: many changes, few open outages.
  for (int i = 0; i < 4000; ++i) {
    f.send(note(i % 2 ? Severity::Okay : Severity::Failure, at(i + 1), "flap" + std::to_string(i % 7)));
    if (i % 50 == 0) {
      const std::size_t records = record_count(f.journal);
      most = std::max(most, records);
      CU_ASSERT(records <= std::max(kMinRecords, 2 * f.tracker->open_outages()) + 1);
    }
  }
  for (int k = 0; k < 7; ++k) f.send(note(Severity::Okay, at(5000), "flap" + std::to_string(k)));
  CU_ASSERT(most > 500);  // it did grow before it was folded
  CU_ASSERT(!xmtest::file_exists(f.journal + ".old"));
  auto snapshot = xmtest::parse_json(xmtest::read_file(f.file));
  CU_ASSERT(snapshot != nullptr && json_array_size(json_object_get(snapshot.get(), "outages")) >= kOpen);
  const std::size_t open = f.tracker->open_outages();
  CU_ASSERT_EQUAL(open, static_cast<std::size_t>(kOpen));
  const std::size_t paged = f.rec.size();
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), open);
  f.send(note(Severity::Failure, at(10000), "open7"));
  f.send(note(Severity::Failure, at(10000), "flap3"));  // closed: opens again
  CU_ASSERT_EQUAL(f.rec.size(), paged + 1);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

void test_journal_recovers_after_write_failure() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  const std::string subdir = dir / "later";
  const std::string file = subdir + "/outages-x.json";
  Recorder rec;
  {
    OutageTracker t(file, opts(), log);
    process_delivered(t, rec, note(Severity::Failure, at(0), "a"));
    CU_ASSERT(log.contains(LogLevel::Error, file + ".journal"));
    CU_ASSERT_EQUAL(t.open_outages(), 1u);
    // The directory comes back: the next change reopens the journal and
    // brings the one it missed to disk as well.
    CU_ASSERT_EQUAL(::mkdir(subdir.c_str(), 0700), 0);
    process_delivered(t, rec, note(Severity::Failure, at(1), "b"));
    t.sync();
  }
  OutageTracker again(file, opts(), log);
  CU_ASSERT_EQUAL(again.open_outages(), 2u);
  CU_ASSERT_EQUAL(rec.size(), 2u);
}

// Silent closes, journaled on the notifying threads, racing the delivery
// thread's persist() of events' changes, in whatever order it gets them.
void test_many_threads_silent_closes() {
  Fixture f(opts(Severity::Warning, 0, false));
  constexpr int kThreads = 4, kSteps = 1500;
  const std::vector<std::string> hosts{"s1", "s2", "s3"};
  std::atomic<long> clock{0};
  {
    const Deliverer deliverer(f, 99, false);
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th)
      threads.emplace_back([&, th] {
        std::mt19937 rng(static_cast<unsigned>(th) + 17u);
        for (int i = 0; i < kSteps; ++i)
          f.tracker->process(
              note(static_cast<Severity>(rng() % 3), at_ms(clock.fetch_add(1)), hosts[rng() % hosts.size()]),
              f.rec.handler());
      });
    for (auto& t : threads) t.join();
  }
  f.rec.deliver(*f.tracker);
  const std::size_t open = f.tracker->open_outages();
  // The outage a host ends with, if open, is the one of its last event.
  std::map<std::string, std::string> last_id;
  for (const auto& s : f.rec.seen) last_id[s.key.host] = s.outage.id;
  f.restart();  // SendClear true from here, to see what is open
  CU_ASSERT_EQUAL(f.tracker->open_outages(), open);
  const auto drained = drain_open(*f.tracker, hosts, at_ms(clock.load() + 1));
  CU_ASSERT_EQUAL(drained.size(), open);
  for (const auto& [host, id] : drained) CU_ASSERT(last_id[host] == id);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Error) + f.log.count(LogLevel::Warning), 0u);
}

// --- changes that ride in the spool's events --------------------------------------------

// The kill -9 between the event's write(2) and the journal's that this
// design removes: the change is in the spool record alone.
void test_change_in_spooled_event_survives_crash() {
  Fixture f;
  const std::string change = f.hold(note(Severity::Failure, at(0)));
  CU_ASSERT_FATAL(!change.empty());
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 1u);
  const std::string id = f.rec.seen[0].outage.id;
  CU_ASSERT_EQUAL(record_count(f.journal), 0u);  // one write(2) on collectd's thread: the event's
  f.tracker.reset();                              // killed before the event was delivered

  // Without the spool's changes: the journal never had it.
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  f.tracker.reset();
  // With them: the same outage, not a second page under another id.
  f.restart(opts(), {change});
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.send(note(Severity::Failure, at(10)));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  f.send(note(Severity::Okay, at(20)));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
  CU_ASSERT(f.rec.seen[1].outage.id == id);
  CU_ASSERT(f.rec.seen[1].outage.start == at(0));
  // The restored state was snapshotted at start-up: the event's late delivery
  // (a copy of what is there) changes nothing.
  f.tracker->persist(change);
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

// The change as it travels: one framed journal record, with the key's version.
void test_change_encoding() {
  Fixture f;
  const std::string open = f.hold(note(Severity::Warning, at(0)));
  const std::string escalate = f.hold(note(Severity::Failure, at(10)));
  const std::string clear = f.hold(note(Severity::Okay, at(20)));
  std::uint64_t version = 0;
  for (const auto* c : {&open, &escalate, &clear}) {
    sf::Record r{};
    CU_ASSERT_EQUAL_FATAL(sf::parse_record(*c, 0, &r, sf::LogKind::OutageJournal), c->size());
    CU_ASSERT(r.type == (c == &clear ? sf::RecordType::OutageClose : sf::RecordType::OutageSet));
    sf::PayloadReader p(r.payload);
    std::string_view field;
    for (int i = 0; i < 5; ++i) CU_ASSERT(p.field(&field));
    CU_ASSERT_EQUAL(field, "user");
    std::int64_t v = 0;
    CU_ASSERT(p.i64(&v));
    CU_ASSERT_EQUAL(static_cast<std::uint64_t>(v), ++version);  // counts the key's changes from 1
  }
  // What a hand-made record says is what the tracker encodes.
  CU_ASSERT_EQUAL(clear, journal_close("h", 3));
}

void test_stale_changes_lose_to_newer_ones() {
  Fixture f;
  const std::string warning = f.hold(note(Severity::Warning, at(0)));  // version 1
  const std::string failure = f.hold(note(Severity::Failure, at(10)));  // version 2: escalation
  // Delivered out of order: the older change comes last and is ignored.
  f.tracker->persist(failure);
  f.tracker->persist(warning);
  CU_ASSERT_EQUAL(record_count(f.journal), 1u);
  f.restart();
  // The snapshot says which version each open outage is at.
  auto snapshot = xmtest::parse_json(xmtest::read_file(f.file));
  const json_t* outage = snapshot ? json_array_get(json_object_get(snapshot.get(), "outages"), 0) : nullptr;
  CU_ASSERT(outage != nullptr && json_integer_value(json_object_get(outage, "version")) == 2);
  f.send(note(Severity::Failure, at(20)));  // escalated already: nothing
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  // A stale change of an event still in the spool does not override the
  // newer state persisted (in the snapshot now).
  f.restart(opts(), {warning});
  f.send(note(Severity::Failure, at(30)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

void test_recovered_close_beats_older_set() {
  Fixture f;
  const std::string set = f.hold(note(Severity::Failure, at(0)));  // version 1
  const std::string close = f.hold(note(Severity::Okay, at(10)));  // version 2
  f.tracker->persist(set);
  // Killed with the clear still in the spool.
  f.restart(opts(), {close});
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  // The key keeps its version although closed: a new outage's changes are
  // newer than any of an older one still in the spool, in whatever order
  // the spool hands them over.
  const std::string reopen = f.hold(note(Severity::Failure, at(20)));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
  f.restart(opts(), {reopen, close});
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.send(note(Severity::Okay, at(30)));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 4u);
  CU_ASSERT(f.rec.seen[3].type == EventType::Clear && f.rec.seen[3].outage.id == f.rec.seen[2].outage.id);
  // Both events of an outage still in the spool, handed over in any order.
  Fixture g;
  const std::string g_set = g.hold(note(Severity::Failure, at(0)));
  const std::string g_close = g.hold(note(Severity::Okay, at(10)));
  g.restart(opts(), {g_close, g_set});
  CU_ASSERT_EQUAL(g.tracker->open_outages(), 0u);
  g.restart(opts(), {g_set, g_close});
  CU_ASSERT_EQUAL(g.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

std::size_t snapshot_entries(const std::string& file, const char* list) {
  auto snapshot = xmtest::parse_json(xmtest::read_file(file));
  return snapshot ? json_array_size(json_object_get(snapshot.get(), list)) : 0;
}

void test_close_without_event_journaled_at_once() {
  const TrackerOptions silent = opts(Severity::Warning, 0, false);
  {
    Fixture f(silent);
    f.send(note(Severity::Failure, at(0)));
    CU_ASSERT_EQUAL(record_count(f.journal), 1u);
    CU_ASSERT(f.hold(note(Severity::Okay, at(10))).empty());  // SendClear false: no event
    CU_ASSERT_EQUAL(record_count(f.journal), 2u);             // nothing to ride in: written now
    f.restart(silent);
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
    f.send(note(Severity::Failure, at(20)));  // a new outage
    CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
    CU_ASSERT(f.rec.seen[1].outage.id != f.rec.seen[0].outage.id);
    CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
  }
  // The opening's event is stuck in the spool (xMatters is down) when the
  // outage closes silently: its change, older, must not reopen the outage,
  // at the next start nor at any later one while the event is still there,
  // although the snapshot lists open outages only.
  Fixture f(silent);
  const std::string set = f.hold(note(Severity::Failure, at(0)));
  f.hold(note(Severity::Okay, at(10)));
  CU_ASSERT_EQUAL(record_count(f.journal), 1u);  // the close alone
  for (int start = 0; start < 2; ++start) {
    f.restart(silent, {set});
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
    CU_ASSERT_EQUAL(record_count(f.journal), 0u);  // all of it in the snapshot now
    CU_ASSERT_EQUAL(snapshot_entries(f.file, "closed"), 1u);
  }
  f.tracker->persist(set);  // finally delivered: too old to change anything
  CU_ASSERT_EQUAL(record_count(f.journal), 0u);
  // Once no event of the key is left in the spool, its tombstone goes.
  f.restart(silent);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(snapshot_entries(f.file, "closed"), 0u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

void test_persist_of_unknown_key_and_malformed_changes() {
  // A change of a key this tracker has not seen (its event is from an
  // earlier run) is persisted all the same.
  std::string change;
  {
    Fixture other;
    change = other.hold(note(Severity::Failure, at(0), "elsewhere"));
  }
  Fixture f;
  f.tracker->persist(change);
  CU_ASSERT_EQUAL(record_count(f.journal), 1u);
  // Malformed: logged once (throttled), ignored.
  f.tracker->persist("");
  f.tracker->persist("not a record");
  f.tracker->persist(change + "x");
  f.tracker->persist(sf::encode_ack("ev-1"));
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Error, "malformed"), 1u);
  CU_ASSERT_EQUAL(record_count(f.journal), 1u);
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  // Malformed changes from the spool: a WARNING, and the rest is used.
  f.tracker.reset();
  xmtest::write_file(f.file, "");
  f.log.clear();
  f.restart(opts(), {"garbage", change});
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  CU_ASSERT(f.log.contains(LogLevel::Warning, "1 malformed"));
}

// --- the Router ------------------------------------------------------------------------------

struct RecordingSink : EventSink {
  std::mutex mutex;
  std::vector<Event> events;
  bool refuse = false;
  std::string throw_for;  // integration whose submit throws

  bool submit(Event event) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (event.integration == throw_for) throw std::runtime_error("spool write failed: disk full");
    if (refuse) return false;
    events.push_back(std::move(event));
    return true;
  }
  std::vector<Event> for_integration(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<Event> out;
    for (const auto& e : events)
      if (e.integration == name) out.push_back(e);
    return out;
  }
};

IntegrationConfig integration(const std::string& name, const char* host_filter) {
  IntegrationConfig i;
  i.name = name;
  i.outage_url = "https://example.xmatters.com/api/integration/1/functions/x/triggers?apiKey=secret";
  i.clear_url = i.outage_url;
  if (host_filter != nullptr) i.host_filter.emplace(host_filter);
  return i;
}

void test_router_routes_by_host_filter() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  config.integrations.push_back(integration("dba", "^db[0-9]+$"));
  config.integrations.push_back(integration("web", "^web"));
  config.integrations.push_back(integration("all", nullptr));
  Router router(config, dir.path(), sink, log);

  router.dispatch(note(Severity::Failure, at(0), "db1"));
  router.dispatch(note(Severity::Failure, at(0), "web7"));
  router.dispatch(note(Severity::Failure, at(0), "db1x"));
  CU_ASSERT_EQUAL(sink.for_integration("dba").size(), 1u);
  CU_ASSERT_EQUAL(sink.for_integration("web").size(), 1u);
  CU_ASSERT_EQUAL(sink.for_integration("all").size(), 3u);
  CU_ASSERT_EQUAL(router.open_outages(0), 1u);
  CU_ASSERT_EQUAL(router.open_outages(1), 1u);
  CU_ASSERT_EQUAL(router.open_outages(2), 3u);
  CU_ASSERT(xmtest::file_exists(dir / "outages-dba.json"));
  CU_ASSERT(xmtest::file_exists(dir / "outages-web.json"));

  // Each integration has its own outage for the same value list.
  router.dispatch(note(Severity::Okay, at(60), "db1"));
  const auto dba = sink.for_integration("dba"), all = sink.for_integration("all");
  CU_ASSERT_EQUAL(dba.size(), 2u);
  CU_ASSERT_EQUAL(all.size(), 4u);
  if (dba.size() == 2 && all.size() == 4) {
    const Event& e = dba[0];
    CU_ASSERT(is_uuid(e.event_id) && is_uuid(e.outage_id));
    CU_ASSERT(e.type == EventType::Outage);
    CU_ASSERT(dba[1].type == EventType::Clear);
    CU_ASSERT(dba[1].outage_id == e.outage_id);
    CU_ASSERT(dba[1].event_id != e.event_id);
    CU_ASSERT(all[0].outage_id != e.outage_id);
    CU_ASSERT(all[3].type == EventType::Clear && all[3].outage_id == all[0].outage_id);
    auto body = xmtest::parse_json(e.body);
    CU_ASSERT(body != nullptr);
    if (body) {
      CU_ASSERT(xmtest::json_string_member(body.get(), "outage_id") == e.outage_id);
      CU_ASSERT(xmtest::json_string_member(body.get(), "event_id") == e.event_id);
      CU_ASSERT(xmtest::json_string_member(body.get(), "event_type") == "outage");
    }
  }
  CU_ASSERT_EQUAL(router.open_outages(0), 0u);
  CU_ASSERT_EQUAL(log.count(LogLevel::Error), 0u);
}

void test_router_sink_exception_isolated() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  config.integrations.push_back(integration("first", nullptr));
  config.integrations.push_back(integration("second", nullptr));
  Router router(config, dir.path(), sink, log);

  sink.throw_for = "first";
  router.dispatch(note(Severity::Failure, at(0)));
  CU_ASSERT_EQUAL(sink.for_integration("second").size(), 1u);
  CU_ASSERT_EQUAL(router.open_outages(0), 0u);  // not queued, so not open
  CU_ASSERT_EQUAL(router.open_outages(1), 1u);
  CU_ASSERT(log.contains(LogLevel::Error, "first"));
  CU_ASSERT(log.contains(LogLevel::Error, "disk full"));
  CU_ASSERT(!log.contains(LogLevel::Error, "second"));
  CU_ASSERT(!log.contains(LogLevel::Error, "secret"));

  // Once the spool works again, the next FAILURE pages "first".
  sink.throw_for.clear();
  router.dispatch(note(Severity::Failure, at(10)));
  CU_ASSERT_EQUAL(sink.for_integration("first").size(), 1u);
  CU_ASSERT_EQUAL(sink.for_integration("second").size(), 1u);
  CU_ASSERT_EQUAL(router.open_outages(0), 1u);
}

void test_router_refused_event_not_opened() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  config.integrations.push_back(integration("ops", nullptr));
  Router router(config, dir.path(), sink, log);
  sink.refuse = true;
  router.dispatch(note(Severity::Failure, at(0)));
  CU_ASSERT_EQUAL(router.open_outages(0), 0u);
  sink.refuse = false;
  router.dispatch(note(Severity::Failure, at(10)));
  CU_ASSERT_EQUAL(router.open_outages(0), 1u);
  CU_ASSERT_EQUAL(sink.for_integration("ops").size(), 1u);
}

void test_router_options_from_integration() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  IntegrationConfig i = integration("crit", nullptr);
  i.min_severity = Severity::Failure;
  i.send_clear = false;
  i.renotify_interval = seconds(30);
  config.integrations.push_back(std::move(i));
  Router router(config, dir.path(), sink, log);
  router.dispatch(note(Severity::Warning, at(0)));   // below MinSeverity
  router.dispatch(note(Severity::Failure, at(10)));  // opens
  router.dispatch(note(Severity::Failure, at(40)));  // renotify
  router.dispatch(note(Severity::Okay, at(50)));     // closes silently
  const auto events = sink.for_integration("crit");
  CU_ASSERT_EQUAL(events.size(), 2u);
  if (events.size() == 2) CU_ASSERT(events[0].outage_id == events[1].outage_id);
  CU_ASSERT_EQUAL(router.open_outages(0), 0u);
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(
      argc, argv,
      {{"table",
        {{"failure_opens_outage", test_failure_opens_outage},
         {"warning_opens_outage", test_warning_opens_outage},
         {"each_outage_gets_new_id", test_each_outage_gets_new_id},
         {"same_severity_while_open_sends_nothing", test_same_severity_while_open_sends_nothing},
         {"lower_severity_while_open_sends_nothing", test_lower_severity_while_open_sends_nothing},
         {"failure_after_warning_escalates", test_failure_after_warning_escalates},
         {"renotify_after_interval", test_renotify_after_interval},
         {"renotify_not_elapsed_sends_nothing", test_renotify_not_elapsed_sends_nothing},
         {"renotify_zero_never_repages", test_renotify_zero_never_repages},
         {"okay_clears_open_outage", test_okay_clears_open_outage},
         {"okay_with_send_clear_false_closes_silently", test_okay_with_send_clear_false_closes_silently},
         {"okay_without_outage_sends_nothing", test_okay_without_outage_sends_nothing},
         {"below_min_severity_sends_nothing", test_below_min_severity_sends_nothing},
         {"min_severity_failure_opens_on_failure", test_min_severity_failure_opens_on_failure},
         {"older_notification_ignored", test_older_notification_ignored},
         {"older_notification_ignored_without_outage", test_older_notification_ignored_without_outage},
         {"missing_value_okay_with_older_value_time_clears", test_missing_value_okay_with_older_value_time_clears},
         {"clock_step_back_is_not_ignored", test_clock_step_back_is_not_ignored},
         {"refused_outage_is_not_opened", test_refused_outage_is_not_opened},
         {"refused_escalation_and_clear_keep_state", test_refused_escalation_and_clear_keep_state},
         {"handler_exception_leaves_state", test_handler_exception_leaves_state}}},
       {"collectd_shapes",
        {{"threshold_failure_with_meta", test_threshold_failure_with_meta},
         {"missing_value_failure_without_meta", test_missing_value_failure_without_meta},
         {"putnotif_without_type", test_putnotif_without_type}}},
       {"sequences",
        {{"randomized_sequence", test_randomized_sequence}, {"many_threads", test_many_threads},
         {"many_threads_silent_closes", test_many_threads_silent_closes}}},
       {"persistence",
        {{"restart_keeps_open_outage", test_restart_keeps_open_outage},
         {"restart_keeps_renotify_and_order", test_restart_keeps_renotify_and_order},
         {"state_file_mode_and_no_temp_left", test_state_file_mode_and_no_temp_left},
         {"hostile_key_bytes_round_trip", test_hostile_key_bytes_round_trip},
         {"corrupt_state_file", test_corrupt_state_file},
         {"truncated_state_file", test_truncated_state_file},
         {"missing_file_is_clean_start_without_warning", test_missing_file_is_clean_start_without_warning},
         {"unwritable_state_file_logs_error", test_unwritable_state_file_logs_error}}},
       {"journal",
        {{"restart_from_journal_only", test_restart_from_journal_only},
         {"torn_journal_tail", test_torn_journal_tail},
         {"corrupt_journal_records_skipped", test_corrupt_journal_records_skipped},
         {"journal_and_spool_records_not_mixed", test_journal_and_spool_records_not_mixed},
         {"journal_of_json_lines_from_earlier_version", test_journal_of_json_lines_from_earlier_version},
         {"corrupt_snapshot_keeps_journal", test_corrupt_snapshot_keeps_journal},
         {"crash_during_compaction", test_crash_during_compaction},
         {"journal_stays_bounded", test_journal_stays_bounded},
         {"journal_recovers_after_write_failure", test_journal_recovers_after_write_failure}}},
       {"spooled_changes",
        {{"change_in_spooled_event_survives_crash", test_change_in_spooled_event_survives_crash},
         {"change_encoding", test_change_encoding},
         {"stale_changes_lose_to_newer_ones", test_stale_changes_lose_to_newer_ones},
         {"recovered_close_beats_older_set", test_recovered_close_beats_older_set},
         {"close_without_event_journaled_at_once", test_close_without_event_journaled_at_once},
         {"persist_of_unknown_key_and_malformed_changes", test_persist_of_unknown_key_and_malformed_changes}}},
       {"router",
        {{"routes_by_host_filter", test_router_routes_by_host_filter},
         {"sink_exception_isolated", test_router_sink_exception_isolated},
         {"refused_event_not_opened", test_router_refused_event_not_opened},
         {"options_from_integration", test_router_options_from_integration}}}});
}
