// Outage tracking (collectd-xmatters(5) OUTAGES) and routing: the table row by row, collectd's
// real notification shapes, randomized and concurrent sequences checked
// against invariants, persistence in a real spool across restarts,
// compaction and crashes, and the Router.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
#include <tuple>
#include <utility>
#include <vector>

#include "config/config.h"
#include "delivery/flood_minute.h"
#include "delivery/lane.h"
#include "outage/outage_memory.h"
#include "outage/outage_tracker.h"
#include "outage/router.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "testing.h"

using namespace xmatters;
namespace sf = xmatters::spool_format;
namespace fs = std::filesystem;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

namespace {
// Appends as the store does (src/core/store/store.cc): a clear may use the reserve, an
// outage event must leave it its need.
void append(xmatters::Spool& spool, const xmatters::Event& event) {
  spool.append(event, event.type == xmatters::EventType::Clear ? xmatters::Spool::Room::Reserve
                                                                : xmatters::Spool::Room::Free);
}

}  // namespace

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
  std::uint32_t sequence;
  std::chrono::steady_clock::time_point not_before = {};  // a re-page that waits
};

// The test's handler, as the delivery is in the plugin: records every
// transition and spools its event, change included, in a real Spool;
// refuses while refuse is set. deliver() acknowledges what was spooled.
struct Recorder {
  std::mutex mutex;
  std::vector<Seen> seen;
  std::vector<std::string> undelivered;  // event_ids, in order
  std::vector<std::string> ids;          // per seen: its event_id
  // The tracker's steady clock: a re-page whose not_before is still to come
  // waits in the lane, and a newer one takes its place.
  std::function<Steady::time_point()> now;
  Spool* spool = nullptr;
  bool refuse = false;
  int calls = 0;

  // The lambda itself: a TransitionHandler only refers to it, so it must
  // live as long as the process() call it is passed to.
  auto handler() {
    return [this](Transition& t) {
      std::lock_guard<std::mutex> lock(mutex);
      ++calls;
      if (refuse) return false;
      Event e;
      e.event_id = "ev-" + std::to_string(calls);
      e.integration = "test";
      e.outage_id = t.outage.id;
      e.type = t.type;
      e.created = t.notification.time;
      e.body = "{}";
      e.change = std::move(t.change);
      Seen s{t.type, t.notification.severity, t.notification.time, OutageKey::of(t.notification), t.outage,
             t.sequence, t.not_before};
      if (spool) append(*spool, e);
      // As the lane does: a re-page takes the place of one still waiting.
      for (std::size_t i = seen.size(); t.type == EventType::Outage && i-- > 0;) {
        if (seen[i].outage.id != t.outage.id) continue;
        if (seen[i].type != EventType::Outage || seen[i].not_before <= (now ? now() : Steady::now())) break;
        if (spool) spool->acknowledge(ids[i]);
        std::replace(undelivered.begin(), undelivered.end(), ids[i], e.event_id);
        ids[i] = e.event_id;
        seen[i] = s;
        return true;
      }
      seen.push_back(s);
      ids.push_back(e.event_id);
      undelivered.push_back(e.event_id);
      return true;
    };
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex);
    return seen.size();
  }
  std::vector<std::string> take_undelivered() {
    std::lock_guard<std::mutex> lock(mutex);
    return std::exchange(undelivered, {});
  }
  // Delivers every event so far: what a delivery thread does.
  void deliver() {
    for (const auto& id : take_undelivered())
      if (spool) spool->acknowledge(id);
  }
};

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

SpoolOptions spool_options() {
  SpoolOptions o;
  o.compaction_interval = std::chrono::milliseconds(0);
  o.reserve_bytes = 4096;
  return o;
}

// Bytes of the spool's segments in dir.
std::uint64_t segment_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::uint64_t seq = 0;
    if (sf::classify_name(entry.path().filename().string(), &seq) == sf::NameKind::Segment)
      total += fs::file_size(entry.path());
  }
  return total;
}

// A tracker whose log is a real spool in its own directory, wired as in
// the plugin; send() delivers each event at once (hold() does not).
struct Fixture {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Recorder rec;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<OutageTracker> tracker;

  explicit Fixture(TrackerOptions o = opts()) { restart(o); }
  // Like a kill -9 as far as the tracker goes: it writes nothing on the way out.
  void restart(TrackerOptions o = opts()) {
    tracker.reset();
    rec.spool = nullptr;
    spool.reset();
    spool = std::make_unique<Spool>(dir.path(), log, nullptr, spool_options());
    tracker = std::make_unique<OutageTracker>("test", o, log, spool->take_recovered_changes(),
                                              [this](const std::string& r) { spool->append_change(r); });
    spool->set_snapshot_source([this](auto write) { tracker->snapshot(write); });
    rec.spool = spool.get();
    rec.now = o.steady_now;
    rec.undelivered.clear();  // recovered events are the spool's business
    for (const auto& e : spool->take_recovered()) rec.undelivered.push_back(e.event_id);
  }
  void send(const Notification& n) {
    tracker->process(n, rec.handler());
    rec.deliver();
  }
  // Sends n without delivering its event: it stays in the spool.
  void hold(const Notification& n) { tracker->process(n, rec.handler()); }
  std::uint64_t spooled_bytes() { return segment_bytes(dir.path()); }
  std::string snapshot() {
    std::string out;
    tracker->snapshot(out);
    return out;
  }
};

// --- listing, for the operator's views ----------------------------------------------------------

// Every open outage is listed once with its committed state: a value
// list's, the flood outage (key OutageKey{}) and the outages folded into
// it; a closed one is not.
void test_for_each_open_lists_every_open_outage() {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  TrackerOptions o = opts();
  o.flood_limit = 3;  // two paged on their own, the last page kept for the flood outage
  o.steady_now = [&now] { return now; };
  Fixture f(o);
  for (int i = 0; i < 5; ++i) f.send(note(Severity::Failure, at(i), "h" + std::to_string(i)));
  f.send(note(Severity::Okay, at(10), "h0"));
  std::map<std::string, Outage> listed;  // by host; the flood outage's is ""
  f.tracker->for_each_open([&](const OutageKey& key, const Outage& outage) {
    CU_ASSERT(listed.count(key.host) == 0);
    listed[key.host] = outage;
  });
  CU_ASSERT_EQUAL(listed.size(), 5u);  // h1..h4 and the flood outage
  CU_ASSERT(listed.count("h0") == 0);
  XM_REQUIRE(listed.count("") == 1 && listed.count("h1") == 1 && listed.count("h4") == 1);
  CU_ASSERT(listed[""].kind == OutageKind::Flood);
  CU_ASSERT(!listed["h1"].folded);
  CU_ASSERT(listed["h2"].folded && listed["h4"].folded);
  CU_ASSERT(listed["h1"].severity == Severity::Failure);
  CU_ASSERT_EQUAL(listed.size(), f.tracker->open_outages());
}

// --- the OUTAGES table of collectd-xmatters(5), row by row-------------------------------------------

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
  // Their times are remembered: a FAILURE stamped before its key's OKAY (a
  // write thread that lagged) opens nothing, a later one pages.
  f.send(note(Severity::Failure, at(-5), "h0"));
  CU_ASSERT_EQUAL(f.rec.calls, 0);
  f.send(note(Severity::Failure, at(1), "h0"));
  CU_ASSERT_EQUAL(f.rec.calls, 1);
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

void test_refused_outage_is_not_opened() {
  Fixture f;
  f.rec.refuse = true;
  f.send(note(Severity::Failure, at(0)));
  CU_ASSERT_EQUAL(f.rec.calls, 1);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT(f.snapshot().empty());
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
  std::optional<TimePoint> closed_start;  // of the key's last closed outage
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
      if (open) closed_start = open->start;
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
      // A notification stamped no later than the closed outage's start
      // (another member of a host, a lagging thread) opens one nanosecond
      // after it, so that the ids differ (collectd-xmatters(5) OUTAGES).
      const TimePoint opening = closed_start && s.notification_time <= *closed_start
                                    ? *closed_start + std::chrono::nanoseconds(1)
                                    : s.notification_time;
      if (s.outage.start != opening) failure = "start is not the opening time";
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
// A notification older than a closed outage's last one is stale: it opens
// nothing, for it would reopen the closed outage under its id (issue 21,
// bugs 1 and 2: a write thread that lagged).
void test_stale_after_close_ignored() {
  Fixture f;
  f.send(note(Severity::Failure, at(100)));
  f.send(note(Severity::Okay, at(105)));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  f.send(note(Severity::Warning, at(100)));  // stamped before the OKAY
  f.send(note(Severity::Failure, at(70)));   // long before it, inside the window
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  // A newer one opens a new outage, with an id of its own.
  f.send(note(Severity::Failure, at(106)));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  if (f.rec.size() == 3) CU_ASSERT(f.rec.seen[2].outage.id != f.rec.seen[0].outage.id);
}

// Equal timestamps: FAILURE, OKAY and FAILURE all stamped t are two
// outages, and they must not share an outage_id: the second starts just
// after the first (a nanosecond; its start_time reads the same).
void test_reopen_at_same_time_new_id() {
  Fixture f;
  f.send(note(Severity::Failure, at(100)));
  f.send(note(Severity::Okay, at(100)));
  f.send(note(Severity::Failure, at(100)));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);
  if (f.rec.size() != 3) return;
  CU_ASSERT(f.rec.seen[2].type == EventType::Outage);
  CU_ASSERT(f.rec.seen[2].outage.id != f.rec.seen[0].outage.id);
  CU_ASSERT(f.rec.seen[2].outage.start > at(100));
  CU_ASSERT(f.rec.seen[2].outage.start - at(100) < std::chrono::seconds(1));
}

// The same across a restart (and a compaction): a closed value list is
// remembered in its close record, so a stale notification right after the
// restart opens nothing, and one at the closed outage's start opens an
// outage with an id of its own (issue 21, the ordering memory).
void test_closed_remembered_across_restart() {
  for (const bool compacted : {false, true}) {
    Fixture f;
    f.send(note(Severity::Failure, at(100)));
    f.send(note(Severity::Okay, at(105)));
    if (compacted) f.spool->maintain();
    f.restart();
    f.send(note(Severity::Warning, at(100)));  // a write thread that lagged, or an aggregator's replay
    CU_ASSERT_EQUAL(f.rec.size(), 2u);
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
    f.restart();
    f.send(note(Severity::Failure, at(105)));  // not older than the OKAY: a new outage
    CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
    CU_ASSERT(f.rec.seen[2].outage.id != f.rec.seen[0].outage.id);
    CU_ASSERT_EQUAL(f.log.count(xmatters::LogLevel::Warning), 0u);
  }
  // At the same time as the closed outage's start, after a restart: its own id.
  Fixture f;
  f.send(note(Severity::Failure, at(100)));
  f.send(note(Severity::Okay, at(100)));
  f.restart();
  f.send(note(Severity::Failure, at(100)));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
  CU_ASSERT(f.rec.seen[2].outage.id != f.rec.seen[0].outage.id);
}

// A compaction writes again only the 1000 value lists closed last, so that
// a storm of recoveries does not make every compaction of its minute
// rewrite them all: 1500 close within the window; without a compaction a
// restart remembers all of them (their records are in the log), after one
// the 1000 closed last, and a stale notification for one closed before
// them is processed as before the memory existed (collectd-xmatters(5)
// OUTAGES).
void test_closed_kept_by_compaction_bounded() {
  constexpr int kKeys = 1500;
  const auto host = [](int i) { return "h" + std::to_string(i); };
  for (const bool compacted : {false, true}) {
    Fixture f;
    for (int i = 0; i < kKeys; ++i) {
      f.send(note(Severity::Failure, at(100) + std::chrono::milliseconds(i), host(i)));
      f.send(note(Severity::Okay, at(110) + std::chrono::milliseconds(i), host(i)));
    }
    std::size_t closes = 0;
    sf::scan_records(f.snapshot(), [&](const sf::Record& rec, std::uint64_t, std::string_view bytes) {
      Change c;
      CU_ASSERT(rec.type == sf::RecordType::OutageClose && decode_change(bytes, &c) && c.closed_start);
      ++closes;
    });
    CU_ASSERT_EQUAL(closes, 1000u);
    if (compacted) f.spool->maintain();
    f.restart();
    const std::size_t before = f.rec.size();
    f.send(note(Severity::Warning, at(105), host(kKeys - 1)));  // closed last: remembered
    f.send(note(Severity::Warning, at(105), host(kKeys - 1000)));
    CU_ASSERT_EQUAL(f.rec.size(), before);
    f.send(note(Severity::Warning, at(105), host(0)));  // closed first: remembered only by the log
    CU_ASSERT_EQUAL(f.rec.size(), before + (compacted ? 1u : 0u));
    if (compacted) {
      CU_ASSERT(f.rec.seen.back().outage.id != f.rec.seen[0].outage.id);  // a start of its own
    }
  }
}

// --- the ordering memory (ClosedOutages) and its bounds ---------------------------------
//
// Each key is remembered once; keys are forgotten in the order of their last
// remember, beyond kClosedKeys or kClockStep older than the one remembered.

OutageKey memory_key(std::size_t i) { return OutageKey{"m" + std::to_string(i), "cpu", "0", "percent", "user"}; }

// kClosedKeys keys are all kept, however often each is remembered; one more
// and exactly the least recently remembered goes.
void test_memory_bound_forgets_least_recent() {
  ClosedOutages memory;
  for (std::size_t i = 0; i < kClosedKeys; ++i) memory.remember_okay(memory_key(i), at(10));
  memory.remember_okay(memory_key(5), at(11));
  memory.remember(memory_key(6), {at(11), at(8)});
  CU_ASSERT_EQUAL(memory.size(), kClosedKeys);
  CU_ASSERT(memory.find(memory_key(0)).has_value());
  memory.remember_okay(memory_key(kClosedKeys), at(11));
  memory.remember_okay(memory_key(kClosedKeys + 1), at(11));
  CU_ASSERT_EQUAL(memory.size(), kClosedKeys);
  CU_ASSERT(!memory.find(memory_key(0)).has_value() && !memory.find(memory_key(1)).has_value());
  CU_ASSERT(memory.find(memory_key(2)).has_value() && memory.find(memory_key(5)).has_value() && memory.find(memory_key(6)).has_value());
  const auto last = memory.last_closed(4);
  CU_ASSERT_EQUAL_FATAL(last.size(), 4u);
  const std::size_t order[] = {5, 6, kClosedKeys, kClosedKeys + 1};
  for (std::size_t i = 0; i < 4; ++i) CU_ASSERT(last[i].first == memory_key(order[i]));
}

// Kept while not more than kClockStep older than the one remembered; each
// remember forgets the ones older than that, oldest first.
void test_memory_clock_step_forgets_older() {
  ClosedOutages memory;
  memory.remember(memory_key(0), {at(100), at(90)});
  memory.remember_okay(memory_key(1), at(130));
  memory.remember_okay(memory_key(2), at(100) + kClockStep);  // exactly kClockStep later: 0 is kept
  CU_ASSERT_EQUAL(memory.size(), 3u);
  CU_ASSERT(memory.stale(memory_key(0), at(99)));
  memory.remember_okay(memory_key(3), at(100) + kClockStep + nanoseconds(1));
  CU_ASSERT_EQUAL(memory.size(), 3u);
  CU_ASSERT(!memory.find(memory_key(0)).has_value() && !memory.stale(memory_key(0), at(99)));
  CU_ASSERT(memory.start_after(memory_key(0), at(90)) == at(90));  // as if never closed
  memory.remember_okay(memory_key(4), at(300));  // the clock jumped: all the others go
  CU_ASSERT_EQUAL(memory.size(), 1u);
  CU_ASSERT(memory.find(memory_key(4)).has_value());
}

// A key remembered again moves to the back: it is forgotten last, beyond
// the bound as by the clock (its earlier remember leaves nothing behind).
void test_memory_remembered_again_is_forgotten_last() {
  for (const bool same_time : {true, false}) {
    ClosedOutages memory;
    memory.remember(memory_key(0), {at(10), at(5)});
    for (std::size_t i = 1; i < kClosedKeys; ++i) memory.remember_okay(memory_key(i), at(10));
    memory.remember(memory_key(0), {same_time ? at(10) : at(11), at(5)});  // closed again
    memory.remember_okay(memory_key(kClosedKeys), at(11));
    CU_ASSERT_EQUAL(memory.size(), kClosedKeys);
    CU_ASSERT(memory.find(memory_key(0)).has_value() && !memory.find(memory_key(1)).has_value());
    // 2 .. kClosedKeys - 1 go; 0 is the front now.
    for (std::size_t i = kClosedKeys + 1; i < 2 * kClosedKeys - 1; ++i) memory.remember_okay(memory_key(i), at(11));
    CU_ASSERT(memory.find(memory_key(0)).has_value() && !memory.find(memory_key(kClosedKeys - 1)).has_value());
    CU_ASSERT_EQUAL(memory.size(), kClosedKeys);
    memory.remember_okay(memory_key(2 * kClosedKeys), at(11));
    CU_ASSERT(!memory.find(memory_key(0)).has_value());
    CU_ASSERT_EQUAL(memory.size(), kClosedKeys);
  }
  // By the clock: 0 remembered again after 1 outlives it.
  ClosedOutages memory;
  memory.remember_okay(memory_key(0), at(10));
  memory.remember_okay(memory_key(1), at(20));
  memory.remember(memory_key(0), {at(30), at(25)});
  memory.remember_okay(memory_key(2), at(81));
  CU_ASSERT(!memory.find(memory_key(1)).has_value() && memory.find(memory_key(0)).has_value());
  memory.remember_okay(memory_key(2), at(91));
  CU_ASSERT(!memory.find(memory_key(0)).has_value() && memory.size() == 1u);
}

// A key remembered twice at the same time (closed, reopened and closed
// again within one timestamp) is one entry: forgotten once, and what is
// left is whole (run under ASan by the asan stage).
void test_memory_same_time_twice_forgotten_once() {
  ClosedOutages memory;
  memory.remember(memory_key(0), {at(10), at(10)});
  memory.remember(memory_key(0), {at(10), at(10) + nanoseconds(1)});
  CU_ASSERT_EQUAL(memory.size(), 1u);
  CU_ASSERT(memory.start_after(memory_key(0), at(10)) == at(10) + nanoseconds(2));
  memory.remember_okay(memory_key(1), at(71));
  CU_ASSERT_EQUAL(memory.size(), 1u);
  CU_ASSERT(!memory.find(memory_key(0)).has_value());
  const auto last = memory.last_closed(10);
  CU_ASSERT_EQUAL_FATAL(last.size(), 1u);
  CU_ASSERT(last[0].first == memory_key(1));
  memory.remember_okay(memory_key(0), at(72));  // remembered anew after being forgotten
  CU_ASSERT_EQUAL(memory.size(), 2u);
  CU_ASSERT_EQUAL(memory.last_closed(10).size(), 2u);
}

// repack (after a storm, on compaction): the same entries in the same order,
// each with what it held; remembering and forgetting go on from there.
void test_memory_repack_keeps_entries_and_order() {
  ClosedOutages memory;
  const std::size_t n = kClosedKept + 500;
  for (std::size_t i = 0; i < n; ++i) memory.remember(memory_key(i), {at(10), at(1)});
  memory.remember_okay(memory_key(7), at(11));  // moves to the back, start kept
  const auto before = memory.last_closed(n);
  memory.repack();
  const auto after = memory.last_closed(n);
  CU_ASSERT_EQUAL_FATAL(after.size(), n);
  for (std::size_t i = 0; i < n; ++i)
    CU_ASSERT(after[i].first == before[i].first && after[i].second.last == before[i].second.last &&
              after[i].second.start == before[i].second.start);
  CU_ASSERT(after.back().first == memory_key(7) && after.back().second.start == at(1));
  // Filled to the bound: the least recently remembered go first, as before.
  for (std::size_t i = n; i < kClosedKeys + 2; ++i) memory.remember_okay(memory_key(i), at(12));
  CU_ASSERT_EQUAL(memory.size(), kClosedKeys);
  CU_ASSERT(!memory.find(memory_key(0)).has_value() && !memory.find(memory_key(1)).has_value());
  CU_ASSERT(memory.find(memory_key(2)).has_value() && memory.find(memory_key(7)).has_value());
}

// last_closed: the at_most remembered last, oldest first, each key once
// with what it holds now; an OKAY older than what a key holds changes
// nothing (not its place either), a newer one keeps a closed start; a host
// outage's members are remembered before its key.
void test_memory_last_closed_order_each_key_once() {
  ClosedOutages memory;
  memory.remember(memory_key(0), {at(10), at(1)});
  memory.remember(memory_key(1), {at(11), at(2)});
  memory.remember(memory_key(2), {at(12), at(3)});
  memory.remember(memory_key(0), {at(13), at(4)});
  memory.remember_okay(memory_key(1), at(5));  // older: ignored
  memory.remember_okay(memory_key(3), at(14));
  memory.remember_okay(memory_key(2), at(15));  // newer: moves, start kept
  const auto all = memory.last_closed(100);
  CU_ASSERT_EQUAL_FATAL(all.size(), 4u);
  const std::size_t order[] = {1, 0, 3, 2};
  for (std::size_t i = 0; i < 4; ++i) CU_ASSERT(all[i].first == memory_key(order[i]));
  CU_ASSERT(all[0].second.last == at(11) && all[0].second.start == at(2));
  CU_ASSERT(all[1].second.last == at(13) && all[1].second.start == at(4));
  CU_ASSERT(all[2].second.last == at(14) && all[2].second.start == TimePoint{});
  CU_ASSERT(all[3].second.last == at(15) && all[3].second.start == at(3));
  const auto two = memory.last_closed(2);
  CU_ASSERT_EQUAL_FATAL(two.size(), 2u);
  CU_ASSERT(two[0].first == memory_key(3) && two[1].first == memory_key(2));
  CU_ASSERT(memory.last_closed(0).empty());

  Member failing{memory_key(11), true, at(20), "", ""}, no_time{memory_key(12), true, std::nullopt, "", ""};
  memory.remember(memory_key(10), {at(21), at(16)}, {failing, no_time});
  const auto host = memory.last_closed(2);
  CU_ASSERT_EQUAL_FATAL(host.size(), 2u);
  CU_ASSERT(host[0].first == memory_key(11) && host[0].second.last == at(20) && host[0].second.start == TimePoint{});
  CU_ASSERT(host[1].first == memory_key(10) && host[1].second.last == at(21));
  CU_ASSERT(!memory.find(memory_key(12)).has_value());  // a member without a time is not remembered
}

// --- every interleaving, against a model of the promise -----------------------------------
//
// Two value lists A and B of one host, every sequence of four notifications
// (FAILURE, OKAY or WARNING of A or B, each at 0, 1 or 2 s after the first:
// equal, later and earlier times), grouped by value list and by host, run
// straight, with a restart after every step (the tracker recovered from its
// log), and with a compaction and a restart after every step (recovered
// from its table alone). The model is collectd-xmatters(5) OUTAGES: a
// notification older than the last one taken into account for its value
// list is ignored (open or within the 60 s after its close); the others
// open, escalate, join, leave or clear as the man page says. Each step must
// send exactly the events the model says, one page per outage (and one
// escalation), its clear last, a new outage under an outage_id never seen,
// no event_id twice. The log is in memory: a restart is the tracker made
// again from it, as the spool's recovery hands it over.
namespace interleaving {

struct Step {
  int vl;  // 0: A, 1: B
  Severity severity;
  int t;  // seconds after the first
};

class NullLogger : public xmatters::Logger {
 public:
  void log(xmatters::LogLevel, const std::string&) override {}
};

// What the model expects of one step: nothing, a page (of severity), a clear.
struct Expected {
  std::optional<EventType> type;
  Severity severity = Severity::Warning;
  bool new_outage = false;
};

// The promise for one grouping. Per value list: the time of the last
// notification taken into account (its reference); per outage (a value
// list's own, or the host's): open, its severity, its members.
class Model {
 public:
  explicit Model(OutageKind group_by) : host_(group_by == OutageKind::Host) {}
  Expected step(const Step& s) {
    std::optional<TimePoint>& ref = ref_[s.vl];
    const TimePoint t = at(100 + s.t);
    if (ref && t < *ref) return {};  // stale: ignored
    const bool problem = s.severity != Severity::Okay;
    Outage& o = host_ ? outage_[0] : outage_[s.vl];
    if (!o.open) {
      if (!problem) {  // nothing open: its time is remembered, an older FAILURE is stale
        ref = t;
        return {};
      }
      o = Outage{true, s.severity, {}};
      o.failing[s.vl] = true;
      o.member[s.vl] = true;
      ref = t;
      record(s.vl);
      return {EventType::Outage, s.severity, true};
    }
    if (host_ && !o.member[s.vl] && !problem) {  // not one of its value lists: remembered
      ref = t;
      return {};
    }
    ref = t;
    o.member[s.vl] = true;
    const bool was_failing = o.failing[s.vl];
    o.failing[s.vl] = problem;
    if (!problem) {
      if (!host_ || (!o.failing[0] && !o.failing[1])) {
        record(s.vl);
        o.open = false;
        o.member[0] = o.member[1] = false;
        return {EventType::Clear, o.severity, false};
      }
      record(s.vl);  // a member left; others still fail
      return {};
    }
    if (s.severity > o.severity) {
      o.severity = s.severity;
      record(s.vl);
      return {EventType::Outage, s.severity, false};  // escalation
    }
    if (host_ && !was_failing) record(s.vl);  // a member joined
    return {};
  }
  // A restart: each value list's reference is the one its outage's last
  // record holds (a notification that changes nothing but the time writes
  // nothing, doc/storage.md).
  void restart() {
    ref_[0] = recorded_[0];
    ref_[1] = recorded_[1];
  }
  // A compaction: the table holds each open outage's times as they are in
  // memory, and the ordering memory every other key's (closes and OKAYs).
  void compact() {
    for (int i = 0; i < 2; ++i) recorded_[i] = ref_[i];
  }
  // Outages the model has open at the end.
  std::size_t open() const { return outage_[0].open + (host_ ? 0 : outage_[1].open); }

 private:
  struct Outage {
    bool open = false;
    Severity severity = Severity::Warning;
    bool failing[2] = {false, false};
    bool member[2] = {false, false};
  };
  // A change of vl's outage is recorded: a host's record holds every member's time.
  void record(int vl) {
    for (int i = 0; i < 2; ++i)
      if (i == vl || (host_ && outage_[0].member[i])) recorded_[i] = ref_[i];
  }
  bool host_;
  std::optional<TimePoint> ref_[2], recorded_[2];
  Outage outage_[2];
};

const char* name(Severity s) { return s == Severity::Okay ? "OKAY" : s == Severity::Warning ? "WARNING" : "FAILURE"; }

std::string describe(const std::vector<Step>& steps, OutageKind group_by, int restarts) {
  std::string d = group_by == OutageKind::Host ? "GroupBy host" : "GroupBy value list";
  d += restarts == 0 ? "" : restarts == 1 ? ", restarts" : ", compactions and restarts";
  d += ":";
  for (const Step& s : steps) d += std::string(" ") + (s.vl ? "B " : "A ") + name(s.severity) + "@" + std::to_string(s.t);
  return d;
}

// Runs steps and returns what differs from the model ("" if nothing).
// restarts: 0 none, 1 after every step, 2 a compaction and a restart after every step.
std::string run(const std::vector<Step>& steps, OutageKind group_by, int restarts) {
  NullLogger logger;
  TrackerOptions o = opts();
  o.group_by = group_by;
  std::vector<std::string> log;
  const ChangeWriter writer = [&log](const std::string& r) { log.push_back(r); };
  auto tracker = std::make_unique<OutageTracker>("test", o, logger, log, writer);
  Model model(group_by);
  std::set<std::string> event_ids, outage_ids;
  std::map<std::string, std::pair<std::uint32_t, bool>> outages;  // id: last sequence, cleared
  std::map<std::string, std::string> current;  // the open outage of a key (its host or value list)
  const auto fail = [&](std::size_t i, const std::string& what) {
    return describe(steps, group_by, restarts) + ": step " + std::to_string(i + 1) + ": " + what;
  };
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    Notification n = note(s.severity, at(100 + s.t), "h", s.vl ? "df" : "cpu");
    std::vector<std::tuple<EventType, std::string, std::uint32_t, Severity, std::string>> got;
    auto handler = [&](Transition& t) {
      got.emplace_back(t.type, t.outage.id, t.sequence, t.outage.severity,
                       group_by == OutageKind::Host ? t.notification.host : OutageKey::of(t.notification).identifier());
      log.push_back(std::move(t.change));
      return true;
    };
    tracker->process(n, handler);
    const Expected want = model.step(s);
    if (got.size() != (want.type ? 1u : 0u))
      return fail(i, std::to_string(got.size()) + " event(s) sent, the model expects " + (want.type ? "1" : "none"));
    if (want.type) {
      const auto& [type, id, sequence, severity, key] = got[0];
      if (type != *want.type) return fail(i, "a page and a clear confused");
      if (severity != want.severity) return fail(i, "severity differs from the model's");
      if (!event_ids.insert(event_id_of(id, sequence)).second) return fail(i, "event_id " + event_id_of(id, sequence) + " sent twice");
      if (want.new_outage) {
        if (!outage_ids.insert(id).second) return fail(i, "a new outage reuses the outage_id " + id);
        if (sequence != 1) return fail(i, "a new outage's page is not -1");
        current[key] = id;
        outages[id] = {1, false};
      } else {
        if (current[key] != id) return fail(i, "an event of another outage than the key's open one");
        if (sequence != outages[id].first + 1) return fail(i, "sequence " + std::to_string(sequence) + " is not the next");
        outages[id].first = sequence;
        if (type == EventType::Clear) {
          outages[id].second = true;
          current.erase(key);
        }
      }
    }
    if (restarts > 0 && i + 1 < steps.size()) {
      if (restarts == 2) {
        std::vector<std::string> table;
        tracker->snapshot([&table](std::string_view r) { table.emplace_back(r); });
        log = std::move(table);
        model.compact();
      }
      tracker.reset();
      tracker = std::make_unique<OutageTracker>("test", o, logger, log, writer);
      model.restart();
    }
  }
  if (tracker->open_outages() != model.open())
    return fail(steps.size() - 1, std::to_string(tracker->open_outages()) + " outage(s) open at the end, the model has " +
                                      std::to_string(model.open()));
  return "";
}

}  // namespace interleaving

void test_every_interleaving() {
  using interleaving::Step;
  const Severity severities[] = {Severity::Failure, Severity::Okay, Severity::Warning};
  std::vector<Step> alphabet;
  for (int vl = 0; vl < 2; ++vl)
    for (const Severity sev : severities)
      for (int t = 0; t < 3; ++t) alphabet.push_back({vl, sev, t});
  std::size_t runs = 0, failures = 0;
  std::vector<Step> steps(4);
  for (const Step& first : alphabet) {
    if (first.t != 0) continue;  // the first at 0: the others at, before or after it
    steps[0] = first;
    for (const Step& b : alphabet)
      for (const Step& c : alphabet)
        for (const Step& d : alphabet) {
          steps[1] = b;
          steps[2] = c;
          steps[3] = d;
          for (const OutageKind group_by : {OutageKind::ValueList, OutageKind::Host})
            for (int restarts = 0; restarts < 3; ++restarts) {
              ++runs;
              const std::string diff = interleaving::run(steps, group_by, restarts);
              if (diff.empty()) continue;
              if (++failures <= 5 || (group_by == OutageKind::ValueList && failures < 100))
                std::fprintf(stderr, "\n  %s", diff.c_str());
            }
        }
  }
  std::fprintf(stderr, "\n  (%zu runs, %zu differ from the model) ", runs, failures);
  CU_ASSERT_EQUAL(failures, 0u);
}

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
// A delivery thread for the concurrency tests: acknowledges the events in
// batches, shuffled (as delivery threads acknowledging different outages
// may), and runs the spool's maintenance (compaction, sync) after each,
// until it goes out of scope.
class Deliverer {
 public:
  Deliverer(Fixture& f, unsigned seed)
      : thread_([this, &f, seed] {
          std::mt19937 rng(seed);
          while (!done_) {
            auto batch = f.rec.take_undelivered();
            std::shuffle(batch.begin(), batch.end(), rng);
            for (const auto& id : batch) f.spool->acknowledge(id);
            f.spool->maintain();
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
    const Deliverer deliverer(f, 4242);
    for (auto& t : threads) t.join();
  }
  f.rec.deliver();

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

  // The spool ends with the newest state, whatever order the threads ran in.
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

std::map<std::string, std::string> drain_open(Fixture& f, const std::vector<std::string>& hosts, TimePoint time) {
  const std::size_t before = f.rec.size();
  for (const auto& h : hosts) f.send(note(Severity::Okay, time, h));
  std::map<std::string, std::string> open;
  for (std::size_t i = before; i < f.rec.seen.size(); ++i)
    if (f.rec.seen[i].type == EventType::Clear) open[f.rec.seen[i].key.host] = f.rec.seen[i].outage.id;
  return open;
}

// Silent closes, each a record of its own written on the notifying
// threads, racing events' records, their acknowledgements and compactions.
void test_many_threads_silent_closes() {
  Fixture f(opts(Severity::Warning, 0, false));
  constexpr int kThreads = 4, kSteps = 1500;
  const std::vector<std::string> hosts{"s1", "s2", "s3"};
  std::atomic<long> clock{0};
  {
    const Deliverer deliverer(f, 99);
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
  f.rec.deliver();
  const std::size_t open = f.tracker->open_outages();
  // The outage a host ends with, if open, is the one of its last event.
  std::map<std::string, std::string> last_id;
  for (const auto& s : f.rec.seen) last_id[s.key.host] = s.outage.id;
  f.restart();  // SendClear true from here, to see what is open
  CU_ASSERT_EQUAL(f.tracker->open_outages(), open);
  const auto drained = drain_open(f, hosts, at_ms(clock.load() + 1));
  CU_ASSERT_EQUAL(drained.size(), open);
  for (const auto& [host, id] : drained) CU_ASSERT(last_id[host] == id);
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
void test_compaction_keeps_open_outages_only() {
  Fixture f;
  f.send(note(Severity::Warning, at(0), "a"));
  f.send(note(Severity::Failure, at(0), "b"));
  f.send(note(Severity::Warning, at(0), "c"));
  f.send(note(Severity::Failure, at(10), "a"));  // escalation
  f.send(note(Severity::Okay, at(20), "b"));     // close
  CU_ASSERT_EQUAL(f.rec.size(), 5u);
  if (f.rec.size() != 5) return;
  const std::string a_id = f.rec.seen[0].outage.id, c_id = f.rec.seen[2].outage.id;
  const std::uint64_t before = f.spooled_bytes();
  f.spool->maintain();
  // Everything was delivered: what is left is the table of a and c.
  CU_ASSERT(f.spooled_bytes() < before);
  CU_ASSERT_EQUAL(f.spooled_bytes(), sf::encode_header().size() + sf::encode_snapshot().size() + f.snapshot().size());
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  const auto open = drain_open(f, {"a", "b", "c"}, at(40));
  CU_ASSERT_EQUAL(open.size(), 2u);
  CU_ASSERT(open.count("a") && open.at("a") == a_id);
  CU_ASSERT(open.count("c") && open.at("c") == c_id);
  if (f.rec.seen.size() == 7) CU_ASSERT(f.rec.seen[5].outage.severity == Severity::Failure);  // a's escalation kept
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

// The change rides in its event's record: a crash that keeps the event keeps
// the outage, whether or not the event was delivered or compacted since.
void test_change_in_undelivered_event_survives_restart() {
  for (const bool compacted : {false, true}) {
    Fixture f;
    f.hold(note(Severity::Failure, at(0)));
    if (compacted) f.spool->maintain();
    f.restart();
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
    CU_ASSERT_EQUAL(f.rec.undelivered.size(), 1u);  // and its event is still to be sent
    f.send(note(Severity::Failure, at(10)));        // still failing: not paged again
    f.send(note(Severity::Okay, at(20)));
    CU_ASSERT_EQUAL(f.rec.size(), 2u);
    if (f.rec.size() == 2) CU_ASSERT(f.rec.seen[1].type == EventType::Clear && f.rec.seen[1].outage.id == f.rec.seen[0].outage.id);
  }
}

// A close that sends nothing is a record of its own: after a restart the
// outage is closed, and the next FAILURE is a new outage.
void test_close_without_event_is_recorded() {
  for (const bool compacted : {false, true}) {
    Fixture f(opts(Severity::Warning, 0, false));
    f.send(note(Severity::Failure, at(0)));
    f.send(note(Severity::Okay, at(10)));
    if (compacted) f.spool->maintain();
    f.restart();
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
    f.send(note(Severity::Failure, at(20)));
    CU_ASSERT_EQUAL(f.rec.size(), 2u);
    if (f.rec.size() == 2) CU_ASSERT(f.rec.seen[1].outage.id != f.rec.seen[0].outage.id);
  }
}

// Keys with no open outage cost nothing once their close is 60 s of
// notification time old: neither in the table nor, once compacted, in the
// spool (until then a closed value list is remembered, its close record
// kept by compaction).
void test_closed_keys_are_forgotten() {
  Fixture f;
  for (int i = 0; i < 2000; ++i) {
    const std::string host = "k" + std::to_string(i);
    f.send(note(Severity::Okay, at(0), host));  // collectd's start-up OKAY
    f.send(note(Severity::Failure, at(1), host));
    f.send(note(Severity::Okay, at(2), host));
  }
  CU_ASSERT_EQUAL(f.rec.size(), 4000u);
  CU_ASSERT(!f.snapshot().empty());  // remembered for now
  f.send(note(Severity::Failure, at(100), "last"));
  f.send(note(Severity::Okay, at(101), "last"));
  const std::string last = f.snapshot();
  xmatters::Change c;
  CU_ASSERT_FATAL(xmatters::decode_change(last, &c));  // exactly one record: "last"'s close
  CU_ASSERT(c.key.host == "last" && !c.set && c.closed_start.has_value());
  f.spool->maintain();
  CU_ASSERT_EQUAL(f.spooled_bytes(), sf::encode_header().size() + sf::encode_snapshot().size() + last.size());
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

// Changes of other integrations are not this tracker's; malformed ones are
// skipped with one WARNING; per key the last record wins.
void test_recovered_changes_applied_in_order() {
  xmtest::CapturingLogger log;
  std::string mine, others, close;
  {
    OutageTracker t("test", opts(Severity::Warning, 0, false), log, {},
                    [&](const std::string& r) { close = r; });
    Recorder rec;
    t.process(note(Severity::Failure, at(0), "a"), rec.handler());
    t.process(note(Severity::Failure, at(0), "b"), rec.handler());
    t.snapshot(mine);
    t.process(note(Severity::Okay, at(5), "a"), rec.handler());  // closes a silently
    OutageTracker other("other", opts(), log);
    other.process(note(Severity::Failure, at(0), "z"), rec.handler());
    other.snapshot(others);
  }
  CU_ASSERT_FATAL(!close.empty());
  {
    // A torn record is a malformed change.
    OutageTracker t("test", opts(), log, {others, "garbage", mine.substr(0, mine.size() / 2 - 1), close});
    CU_ASSERT_EQUAL(t.open_outages(), 0u);
    CU_ASSERT(log.contains(LogLevel::Warning, "2 malformed"));
    log.clear();
    // Two records in one change (a folded outage's and its flood outage's,
    // written together) are both applied; a torn second one costs only itself.
    OutageTracker both("test", opts(), log, {mine});
    CU_ASSERT_EQUAL(both.open_outages(), 2u);
    CU_ASSERT_EQUAL(log.count(LogLevel::Warning), 0u);
    OutageTracker torn("test", opts(), log, {mine.substr(0, mine.size() - 1)});
    CU_ASSERT_EQUAL(torn.open_outages(), 1u);
    CU_ASSERT(log.contains(LogLevel::Warning, "1 malformed"));
  }
  std::vector<std::string> split;
  sf::scan_records(mine, [&](const sf::Record&, std::uint64_t, std::string_view bytes) {
    split.emplace_back(bytes);
  });
  CU_ASSERT_FATAL(split.size() == 2u);
  std::vector<std::string> recovered = split;
  recovered.push_back(close);  // a's close after its set
  OutageTracker t("test", opts(), log, recovered);
  CU_ASSERT_EQUAL(t.open_outages(), 1u);
  std::swap(recovered[0], recovered[2]);  // a close before the set: the set wins
  OutageTracker again("test", opts(), log, recovered);
  CU_ASSERT_EQUAL(again.open_outages(), 2u);
}

// A flipped byte in one outage's record of the compacted table costs that
// outage alone, with one WARNING.
void test_damaged_table_record_costs_only_it() {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.send(note(Severity::Failure, at(0), "h" + std::to_string(i)));
  f.spool->maintain();
  f.tracker.reset();
  f.spool.reset();
  std::string compacted;
  for (const auto& entry : fs::directory_iterator(f.dir.path())) {
    const std::string data = xmtest::read_file(entry.path().string());
    const std::string start = sf::encode_header() + sf::encode_snapshot();  // a compacted segment's
    if (data.compare(0, start.size(), start) == 0) compacted = entry.path().string();
  }
  CU_ASSERT_FATAL(!compacted.empty());
  std::string data = xmtest::read_file(compacted);
  std::vector<std::pair<std::size_t, std::size_t>> records;
  sf::scan_records(data, [&](const sf::Record&, std::uint64_t offset, std::string_view bytes) {
    records.emplace_back(static_cast<std::size_t>(offset), bytes.size());
  });
  CU_ASSERT_FATAL(records.size() == 7u);  // HEADER, SNAPSHOT, 5 outages
  data[records[4].first + records[4].second / 2] ^= 0x04;
  xmtest::write_file(compacted, data);
  f.log.clear();
  f.restart();
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 4u);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning), 1u);
  CU_ASSERT(f.log.contains(LogLevel::Warning, "skipped"));
}

// --- GroupBy host (collectd-xmatters(5) OUTAGES) ------------------------------------------------------------

TrackerOptions host_opts(long renotify = 0, bool send_clear = true) {
  TrackerOptions o = opts(Severity::Warning, renotify, send_clear);
  o.group_by = OutageKind::Host;
  return o;
}

Notification member(Severity sev, TimePoint t, int i, const std::string& host = "h") {
  return note(sev, t, host, "df", "percent_bytes", "v" + std::to_string(i));
}

std::size_t failing(const Outage& o) {
  return static_cast<std::size_t>(std::count_if(o.members.begin(), o.members.end(), [](const Member& m) { return m.failing; }));
}

// The member limit counts failing members: with one stuck member and 999
// that failed and recovered (container churn), a new failure is tracked;
// the outage clears only when neither the stuck nor the new one fails.
void test_host_limit_counts_failing_members() {
  Fixture f(host_opts());
  f.send(member(Severity::Failure, at(0), 0));
  for (int i = 1; i < static_cast<int>(kMaxMembers); ++i) {
    f.send(member(Severity::Failure, at(i), i));
    f.send(member(Severity::Okay, at(i) + seconds(1), i));
  }
  f.send(member(Severity::Failure, at(2000), 5000));
  CU_ASSERT(!f.log.contains(LogLevel::Warning, "not tracked"));
  f.send(member(Severity::Okay, at(2001), 0));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);  // no clear: the new member fails
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  f.send(member(Severity::Okay, at(2002), 5000));
  XM_REQUIRE(f.rec.size() == 2u);
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
  CU_ASSERT(f.rec.seen[1].outage.members.size() <= kMaxMembers);
  // Beyond kMaxMembers failing at once, the next is not tracked, with a WARNING.
  Fixture g(host_opts());
  for (int i = 0; i <= static_cast<int>(kMaxMembers); ++i) g.hold(member(Severity::Failure, at(i), i));
  CU_ASSERT(g.log.count(LogLevel::Warning, "not tracked") == 1u);
}

// 30 value lists of one host fail: one outage event; they recover: one
// clear, after the last, listing all 30.
void test_host_value_lists_share_one_outage() {
  Fixture f(host_opts());
  for (int i = 0; i < 30; ++i) f.send(member(Severity::Failure, at(i), i));
  f.send(member(Severity::Failure, at(0), 0, "other"));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  for (int i = 0; i < 30; ++i) f.send(member(Severity::Okay, at(100 + i), i));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
  const Seen& page = f.rec.seen[0];
  CU_ASSERT(page.type == EventType::Outage && page.outage.kind == OutageKind::Host);
  CU_ASSERT_EQUAL(page.outage.members.size(), 1u);
  CU_ASSERT(f.rec.seen[1].outage.id != page.outage.id);  // another host, another outage
  const Seen& clear = f.rec.seen[2];
  CU_ASSERT(clear.type == EventType::Clear);
  CU_ASSERT(clear.notification_time == at(129));
  CU_ASSERT(clear.outage.id == page.outage.id);
  CU_ASSERT_EQUAL(clear.sequence, 2u);
  CU_ASSERT_EQUAL(clear.outage.members.size(), 30u);
  CU_ASSERT_EQUAL(failing(clear.outage), 0u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  // The host's next failure is a new outage.
  f.send(member(Severity::Failure, at(200), 3));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 4u);
  CU_ASSERT(f.rec.seen[3].outage.id != page.outage.id);
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
}

// A FAILURE of any member after WARNINGs escalates the host outage, once;
// RenotifyInterval re-pages it with its current members.
void test_host_escalates_once_and_repages() {
  Fixture f(host_opts(100));
  for (int i = 0; i < 5; ++i) f.send(member(Severity::Warning, at(i), i));
  f.send(member(Severity::Failure, at(10), 3));
  f.send(member(Severity::Failure, at(11), 4));  // already critical: joins nothing new
  f.send(member(Severity::Okay, at(20), 0));     // leaves without an event
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  CU_ASSERT(f.rec.seen[1].type == EventType::Outage);
  CU_ASSERT(f.rec.seen[1].outage.severity == Severity::Failure);
  CU_ASSERT_EQUAL(f.rec.seen[1].sequence, 2u);
  f.send(member(Severity::Warning, at(110), 1));  // 100 s after the escalation: re-page
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
  CU_ASSERT_EQUAL(f.rec.seen[2].sequence, 3u);
  CU_ASSERT(f.rec.seen[2].outage.severity == Severity::Failure);  // the highest ever paged
  CU_ASSERT_EQUAL(failing(f.rec.seen[2].outage), 4u);
  CU_ASSERT_EQUAL(f.rec.seen[2].outage.members.size(), 5u);
}

// Each member keeps its own last time: an older notification of one member
// is ignored, whatever the others did since.
void test_host_older_notification_ignored_per_member() {
  Fixture f(host_opts());
  f.send(member(Severity::Failure, at(0), 0));
  f.send(member(Severity::Failure, at(1), 1));
  f.send(member(Severity::Okay, at(20), 0));
  f.send(member(Severity::Failure, at(15), 0));  // older than member 0's OKAY: ignored
  f.send(member(Severity::Okay, at(10), 1));     // older than nothing of member 1: processed
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

// A missing value is a member like any other; its OKAY, stamped with the
// value's earlier time, still clears it.
void test_host_missing_value_member() {
  Fixture f(host_opts());
  f.send(member(Severity::Failure, at(0), 0));
  Notification missing = member(Severity::Failure, at(50), 1);
  missing.message = "Host h, plugin df type percent_bytes: Data source \"value\" has not been updated for 30 seconds.";
  f.send(missing);
  f.send(member(Severity::Okay, at(60), 0));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);  // member 1 still failing
  f.send(member(Severity::Okay, at(45), 1));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
  CU_ASSERT_EQUAL(f.rec.seen[1].outage.members.size(), 2u);
}

// Members are in the outage's records: a restart in the middle keeps them,
// and the clear still comes once, after the last, listing them all.
void test_host_restart_keeps_members() {
  for (const bool compacted : {false, true}) {
    Fixture f(host_opts());
    for (int i = 0; i < 30; ++i) f.send(member(Severity::Failure, at(i), i));
    for (int i = 0; i < 10; ++i) f.send(member(Severity::Okay, at(100 + i), i));
    if (compacted) f.spool->maintain();
    f.restart(host_opts());
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
    for (int i = 0; i < 30; ++i) f.send(member(Severity::Failure, at(200), i));  // collectd's repeats: 0-9 rejoin
    f.restart(host_opts());
    for (int i = 0; i < 30; ++i) f.send(member(Severity::Okay, at(300 + i), i));
    CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
    CU_ASSERT(f.rec.seen[1].type == EventType::Clear && f.rec.seen[1].outage.id == f.rec.seen[0].outage.id);
    CU_ASSERT_EQUAL(f.rec.seen[1].outage.members.size(), 30u);
    CU_ASSERT_EQUAL(f.rec.seen[1].sequence, 2u);
    f.restart(host_opts());
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
    CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
  }
}

// A change of GroupBy across a restart: an outage of the old grouping keeps
// it until it clears.
void test_host_grouping_change_keeps_open_outages() {
  Fixture f;
  f.send(member(Severity::Failure, at(0), 0));
  f.restart(host_opts());
  f.send(member(Severity::Failure, at(10), 1));  // a new outage, the host's
  f.send(member(Severity::Okay, at(20), 0));     // clears the value list's
  f.send(member(Severity::Okay, at(20), 1));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 4u);
  CU_ASSERT(f.rec.seen[2].type == EventType::Clear && f.rec.seen[2].outage.id == f.rec.seen[0].outage.id);
  CU_ASSERT(f.rec.seen[3].type == EventType::Clear && f.rec.seen[3].outage.id == f.rec.seen[1].outage.id);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

// --- FloodLimit: flood folding (collectd-xmatters(5) OUTAGES) -------------------------------------------------

// A steady clock the test moves.
struct TestClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  void advance(std::chrono::seconds s) { now += s; }
};

TrackerOptions flood_opts(TestClock& clock, unsigned limit, OutageKind group_by = OutageKind::ValueList) {
  TrackerOptions o = opts();
  o.flood_limit = limit;
  o.group_by = group_by;
  o.steady_now = [&clock] { return clock.now; };
  return o;
}

// 200 outages on 50 hosts, 4 value lists each.
Notification flood_note(Severity sev, TimePoint t, int i) {
  return note(sev, t, "h" + std::to_string(i / 4), "cpu", "percent", "v" + std::to_string(i % 4));
}

struct FloodCount {
  std::set<std::string> paged;  // outage_ids with an outage event
  std::map<std::string, int> clears;
  std::size_t outage_events = 0;
};

FloodCount count(const std::vector<Seen>& seen) {
  FloodCount c;
  for (const Seen& s : seen) {
    if (s.type == EventType::Outage) {
      ++c.outage_events;
      c.paged.insert(s.outage.id);
    } else {
      ++c.clears[s.outage.id];
    }
  }
  return c;
}

// Issue 21 bug 4: FloodLimit's minute holds across a restart. With
// FloodLimit 2 and two outage events sent 5 s before it (FLOOD_SENT records
// in the spool, as the delivery writes them), the first outage after it is
// folded into the flood outage at once; sends of another integration, older
// than a minute, or clears do not count.
void test_flood_minute_after_restart() {
  using namespace std::chrono_literals;
  TestClock clock;
  const auto sent = [](const char* integration, EventType type, std::chrono::seconds ago) {
    return xmatters::encode_flood_send(xmatters::FloodSend{integration, type, xmatters::Clock::now() - ago});
  };
  {
    Fixture f(flood_opts(clock, 2));
    for (const auto& r : {sent("test", EventType::Outage, 70s), sent("web", EventType::Outage, 5s),
                          sent("test", EventType::Clear, 5s), sent("test", EventType::Clear, 5s)})
      f.spool->append_change(r);
    f.restart(flood_opts(clock, 2));
    f.send(note(Severity::Failure, at(0), "h1"));
    CU_ASSERT_EQUAL_FATAL(f.rec.size(), 1u);
    CU_ASSERT(f.rec.seen[0].outage.kind == OutageKind::ValueList);  // an empty minute: paged on its own
    CU_ASSERT_EQUAL(f.log.count(xmatters::LogLevel::Warning), 0u);
  }
  Fixture f(flood_opts(clock, 2));
  f.spool->append_change(sent("test", EventType::Outage, 6s));
  f.spool->append_change(sent("test", EventType::Outage, 5s));
  f.restart(flood_opts(clock, 2));
  f.send(note(Severity::Failure, at(0), "h1"));
  f.send(note(Severity::Failure, at(1), "h2"));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  CU_ASSERT(f.rec.seen[0].outage.kind == OutageKind::Flood);  // folded at once: the minute is used up
  CU_ASSERT_EQUAL(f.tracker->folded(), 2u);
  CU_ASSERT_EQUAL(f.log.count(xmatters::LogLevel::Warning), 0u);
  // A minute after those sends, outages page on their own again.
  f.send(note(Severity::Okay, at(2), "h1"));
  f.send(note(Severity::Okay, at(3), "h2"));
  clock.advance(60s);
  f.send(note(Severity::Failure, at(70), "h3"));
  CU_ASSERT(f.rec.seen.back().outage.kind == OutageKind::ValueList);
}

// FloodLimit 4, 200 outages in one minute: 3 paged on their own, the rest
// folded into one flood outage, paged with the last use at once, and re-paged
// a minute later with all it then holds; every paged outage gets one clear,
// the flood outage's after its last member.
void test_flood_folds_beyond_limit() {
  TestClock clock;
  Fixture f(flood_opts(clock, 4));
  const auto start = clock.now;
  for (int i = 0; i < 200; ++i) f.send(flood_note(Severity::Failure, at(i), i));
  FloodCount c = count(f.rec.seen);
  CU_ASSERT_EQUAL(c.outage_events, 5u);
  CU_ASSERT_EQUAL(c.paged.size(), 4u);
  CU_ASSERT_EQUAL(f.tracker->folded(), 197u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 201u);
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 5u);
  const Outage flood = f.rec.seen[3].outage;
  CU_ASSERT(flood.kind == OutageKind::Flood && is_uuid(flood.id));
  CU_ASSERT_EQUAL(f.rec.seen[3].sequence, 1u);
  CU_ASSERT_EQUAL(flood.outages, 1u);
  CU_ASSERT(f.rec.seen[3].not_before == std::chrono::steady_clock::time_point{});
  // The re-page waits for the minute, each join having taken its place.
  const Seen& repage = f.rec.seen[4];
  CU_ASSERT(repage.outage.id == flood.id);
  CU_ASSERT_EQUAL(repage.outage.outages, 197u);
  CU_ASSERT_EQUAL(repage.outage.hosts, 50u);
  CU_ASSERT(repage.not_before == start + std::chrono::minutes(1));
  CU_ASSERT_EQUAL(repage.sequence, 197u);
  for (int i = 199; i >= 0; --i) f.send(flood_note(Severity::Okay, at(300 + (199 - i)), i));
  c = count(f.rec.seen);
  CU_ASSERT_EQUAL(c.clears.size(), 4u);
  for (const auto& id : c.paged) CU_ASSERT_EQUAL(c.clears[id], 1);
  const auto flood_clear = std::find_if(f.rec.seen.begin(), f.rec.seen.end(), [&](const Seen& s) {
    return s.type == EventType::Clear && s.outage.id == flood.id;
  });
  CU_ASSERT_FATAL(flood_clear != f.rec.seen.end());
  const Seen& last = *flood_clear;
  CU_ASSERT(last.notification_time == at(300 + 199 - 3));  // the OKAY of its last member, outage 3
  CU_ASSERT_EQUAL(last.outage.outages, 197u);
  CU_ASSERT_EQUAL(last.outage.hosts, 50u);
  CU_ASSERT_EQUAL(last.outage.members.size(), kFloodListed);
  CU_ASSERT_EQUAL(last.sequence, 198u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  CU_ASSERT_EQUAL(f.rec.size(), 9u);
}

// The flood outage escalates at once, once; as it grows, a re-page waits
// for a minute after its last page; new outages page on their own again
// once the minute has room.
void test_flood_escalates_and_repages() {
  TestClock clock;
  Fixture f(flood_opts(clock, 2));
  const auto start = clock.now;
  f.send(flood_note(Severity::Warning, at(0), 0));  // own page
  f.send(flood_note(Severity::Warning, at(1), 1));  // folded: the flood outage's page
  f.send(flood_note(Severity::Warning, at(2), 2));  // folded: a re-page waits for the minute
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
  CU_ASSERT(f.rec.seen[1].outage.kind == OutageKind::Flood);
  CU_ASSERT(f.rec.seen[2].outage.id == f.rec.seen[1].outage.id);
  CU_ASSERT_EQUAL(f.rec.seen[2].outage.outages, 2u);
  CU_ASSERT(f.rec.seen[2].not_before == start + std::chrono::minutes(1));
  f.send(flood_note(Severity::Failure, at(3), 2));  // escalates the flood outage, at once
  f.send(flood_note(Severity::Failure, at(4), 1));  // already critical: nothing
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);        // the escalation took the waiting re-page's place
  CU_ASSERT(f.rec.seen[2].outage.id == f.rec.seen[1].outage.id);
  CU_ASSERT(f.rec.seen[2].outage.severity == Severity::Failure);
  CU_ASSERT(f.rec.seen[2].not_before == Steady::time_point{});
  CU_ASSERT_EQUAL(f.rec.seen[2].sequence, 3u);
  clock.advance(seconds(61));
  f.send(flood_note(Severity::Warning, at(70), 3));  // room again: its own page
  f.send(flood_note(Severity::Warning, at(71), 4));  // folded, a minute after its last page: re-page now
  f.send(flood_note(Severity::Warning, at(72), 5));  // folded: a re-page waits again
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 6u);
  CU_ASSERT(f.rec.seen[3].outage.kind == OutageKind::ValueList);
  CU_ASSERT(f.rec.seen[4].outage.id == f.rec.seen[1].outage.id);
  CU_ASSERT_EQUAL(f.rec.seen[4].outage.outages, 3u);
  CU_ASSERT_EQUAL(f.rec.seen[4].sequence, 4u);
  CU_ASSERT(f.rec.seen[4].not_before == Steady::time_point{});
  CU_ASSERT_EQUAL(f.rec.seen[5].outage.outages, 4u);
  CU_ASSERT(f.rec.seen[5].not_before == clock.now + std::chrono::minutes(1));
  CU_ASSERT_EQUAL(f.tracker->folded(), 4u);
  // An outage paged on its own keeps its escalation, unfolded.
  f.send(flood_note(Severity::Failure, at(73), 0));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 7u);
  CU_ASSERT(f.rec.seen[6].outage.id == f.rec.seen[0].outage.id);
}

// A flood outage open across a restart (and a compaction): its members stay
// folded, the clear still comes once, after the last.
void test_flood_survives_restart() {
  for (const bool compacted : {false, true}) {
    TestClock clock;
    Fixture f(flood_opts(clock, 4));
    for (int i = 0; i < 20; ++i) f.send(flood_note(Severity::Failure, at(i), i));
    for (int i = 10; i < 15; ++i) f.send(flood_note(Severity::Okay, at(50), i));  // 5 folded leave
    if (compacted) f.spool->maintain();
    f.restart(flood_opts(clock, 4));
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 16u);
    CU_ASSERT_EQUAL_FATAL(f.rec.size(), 5u);  // 3 own pages, the flood's page and its waiting re-page
    const std::string flood_id = f.rec.seen[3].outage.id;
    for (int i = 0; i < 20; ++i)
      if (i < 10 || i >= 15) f.send(flood_note(Severity::Failure, at(100), i));  // collectd's repeats
    CU_ASSERT_EQUAL(f.rec.size(), 5u);
    for (int i = 19; i >= 0; --i) f.send(flood_note(Severity::Okay, at(200), i));
    const FloodCount c = count(f.rec.seen);
    CU_ASSERT_EQUAL(c.clears.size(), 4u);
    for (const auto& [id, n] : c.clears) CU_ASSERT_EQUAL(n, 1);
    const Seen& flood_clear = f.rec.seen[5];  // at the OKAY of outage 3, before the own ones' clears
    CU_ASSERT(flood_clear.type == EventType::Clear && flood_clear.outage.id == flood_id);
    CU_ASSERT_EQUAL(flood_clear.outage.outages, 17u);
    CU_ASSERT_EQUAL(f.rec.size(), 9u);
    f.restart(flood_opts(clock, 4));
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
    CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
  }
}

// Host outages fold like value lists' (GroupBy host with FloodLimit 1: no
// reserve); a refused flood page leaves nothing changed.
void test_flood_of_host_outages() {
  TestClock clock;
  Fixture f(flood_opts(clock, 1, OutageKind::Host));
  f.send(member(Severity::Failure, at(0), 0, "a"));  // own page
  f.rec.refuse = true;
  f.send(member(Severity::Failure, at(1), 0, "b"));  // the flood page, refused: nothing opened
  f.rec.refuse = false;
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
  CU_ASSERT_EQUAL(f.tracker->folded(), 0u);
  f.send(member(Severity::Failure, at(2), 0, "b"));  // folded, and pages the flood outage
  f.send(member(Severity::Failure, at(3), 1, "b"));  // joins b's host outage: nothing
  f.send(member(Severity::Failure, at(4), 0, "c"));  // folded: a re-page waits
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 3u);
  CU_ASSERT(f.rec.seen[1].outage.kind == OutageKind::Flood);
  CU_ASSERT(f.rec.seen[2].outage.id == f.rec.seen[1].outage.id && f.rec.seen[2].outage.hosts == 2u);
  for (const char* host : {"b", "c"}) f.send(member(Severity::Okay, at(10), 0, host));
  CU_ASSERT_EQUAL(f.rec.size(), 3u);  // b's member 1 still failing
  f.send(member(Severity::Okay, at(11), 1, "b"));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 4u);
  CU_ASSERT(f.rec.seen[3].type == EventType::Clear && f.rec.seen[3].outage.id == f.rec.seen[1].outage.id);
  CU_ASSERT_EQUAL(f.rec.seen[3].outage.hosts, 2u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 1u);
}

// Issue 21 bug 6: the flood outage's first page leaves at once whenever a
// storm starts, also when the lane sent more than the tracker decided. The
// tracker and a lane with FloodLimit 4 on the tracker's clock: an outage
// paged at 0 s whose first request failed and was retried at 5 s (two
// requests of the minute, one decision), then at 18 s a storm of 50. What
// the lane takes at 18 s includes the flood outage's page, and at most 4
// outage requests leave within the minute.
void test_flood_first_page_leaves_at_once() {
  using namespace std::chrono_literals;
  TestClock clock;
  TrackerOptions o = flood_opts(clock, 4);
  o.flood_budget = std::make_shared<FloodBudget>("test", 4);  // as the delivery shares it
  Fixture f(o);
  LaneSchedule lane(Backoff(1000ms, 300000ms), o.flood_budget);
  std::string flood_id;
  int made = 0;
  const auto to_lane = [&](Transition& t) {
    Event e;
    e.event_id = t.outage.id + "-" + std::to_string(t.sequence) + "/" + std::to_string(++made);
    e.integration = "test";
    e.outage_id = t.outage.id;
    e.type = t.type;
    e.not_before = t.not_before;
    if (t.outage.kind == OutageKind::Flood) flood_id = t.outage.id;
    lane.enqueue(std::move(e));
    return true;
  };
  const auto take_all = [&] {
    std::vector<std::string> out;
    while (auto taken = lane.take(clock.now)) {
      out.push_back(taken->outage_id);
      lane.pop(taken->outage_id, clock.now);
    }
    return out;
  };
  f.tracker->process(flood_note(Severity::Failure, at(0), 0), to_lane);
  auto first = lane.take(clock.now);
  CU_ASSERT_FATAL(first.has_value());
  lane.retry(first->outage_id, 1, std::nullopt, 0s, clock.now);  // xMatters answered 503
  lane.resume();
  clock.advance(5s);
  CU_ASSERT_EQUAL(take_all().size(), 1u);  // the retry, delivered
  clock.advance(13s);
  for (int i = 1; i <= 50; ++i) f.tracker->process(flood_note(Severity::Failure, at(18), i), to_lane);
  const std::vector<std::string> taken = take_all();
  CU_ASSERT_FATAL(!flood_id.empty());
  CU_ASSERT(std::count(taken.begin(), taken.end(), flood_id) == 1);
  CU_ASSERT(lane.flood_used(EventType::Outage, clock.now) <= 4u);
  // The rest waits for the minute: the outages paged on their own that did
  // not fit, and the flood outage's re-page.
  clock.advance(60s);
  take_all();
  CU_ASSERT_EQUAL(lane.queued(), 0u);
}

// Host outages and flood folding on 8 threads, racing deliveries and
// compactions: per outage its events come in sequence, a clear last and
// once; the spool ends with the newest state; every outage still open then
// clears, once, and nothing stays open.
void test_flood_many_threads() {
  std::atomic<long> ms{0};
  const auto options = [&ms] {
    TrackerOptions o = opts();
    o.group_by = OutageKind::Host;
    o.flood_limit = 3;
    o.steady_now = [&ms] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms.load()) * 50); };
    return o;
  };
  Fixture f(options());
  constexpr int kThreads = 8, kSteps = 1000, kHosts = 12;
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937 rng(static_cast<unsigned>(th) * 104729u + 3);
      for (int i = 0; i < kSteps; ++i) {
        const Severity sev = static_cast<Severity>(rng() % 3);
        const int host = static_cast<int>(rng() % kHosts), vl = static_cast<int>(rng() % 3);
        f.tracker->process(member(sev, at_ms(ms.fetch_add(1)), vl, "h" + std::to_string(host)), f.rec.handler());
      }
    });
  }
  {
    const Deliverer deliverer(f, 99);
    for (auto& t : threads) t.join();
  }
  f.rec.deliver();
  const auto check = [&](std::map<std::string, std::uint32_t>& last, std::set<std::string>& cleared) {
    for (const Seen& e : f.rec.seen) {
      CU_ASSERT(cleared.count(e.outage.id) == 0);  // nothing after a clear
      // Increasing; a re-page that took a waiting one's place skips its number.
      CU_ASSERT(e.sequence > last[e.outage.id]);
      last[e.outage.id] = e.sequence;
      if (e.type == EventType::Clear) cleared.insert(e.outage.id);
    }
  };
  std::map<std::string, std::uint32_t> last;
  std::set<std::string> cleared;
  check(last, cleared);
  CU_ASSERT(f.tracker->folded() > 0);
  const std::size_t open = f.tracker->open_outages();
  f.restart(options());
  CU_ASSERT_EQUAL(f.tracker->open_outages(), open);
  for (int host = 0; host < kHosts; ++host)
    for (int vl = 0; vl < 3; ++vl) f.send(member(Severity::Okay, at_ms(ms.load() + 1), vl, "h" + std::to_string(host)));
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  last.clear();
  cleared.clear();
  check(last, cleared);
  for (const auto& [id, sequence] : last) CU_ASSERT(cleared.count(id) == 1);  // every outage paged got its clear
  CU_ASSERT_EQUAL(f.log.count(LogLevel::Error) + f.log.count(LogLevel::Warning), 0u);
}

// --- ids (collectd-xmatters(5) PAYLOAD) ----------------------------------------------------------------------

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

// The notifications of one value list through an outage's life: open,
// escalation, re-page, clear (RenotifyInterval 100).
const std::vector<Notification>& life() {
  static const std::vector<Notification> notes{note(Severity::Warning, at(0)), note(Severity::Failure, at(10)),
                                               note(Severity::Failure, at(120)), note(Severity::Okay, at(130))};
  return notes;
}

// Two aggregators fed the same notifications (each its own tracker and
// spool) make the same outage_id, and the same sequence, event by event.
void test_ids_agree_between_aggregators() {
  Fixture a(opts(Severity::Warning, 100)), b(opts(Severity::Warning, 100));
  for (const auto& n : life()) a.send(n);
  for (const auto& n : life()) b.send(n);
  CU_ASSERT_EQUAL_FATAL(a.rec.size(), 4u);
  CU_ASSERT_EQUAL_FATAL(b.rec.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    CU_ASSERT(a.rec.seen[i].outage.id == b.rec.seen[i].outage.id);
    CU_ASSERT_EQUAL(a.rec.seen[i].sequence, i + 1);  // 1 page, 2 escalation, 3 re-page, 4 clear
    CU_ASSERT_EQUAL(b.rec.seen[i].sequence, i + 1);
    CU_ASSERT(a.rec.seen[i].outage.id == a.rec.seen[0].outage.id);
    const std::string event_id = event_id_of(a.rec.seen[i].outage.id, a.rec.seen[i].sequence);
    CU_ASSERT(valid_id(event_id) && valid_id(a.rec.seen[i].outage.id));
  }
  CU_ASSERT(is_uuid(a.rec.seen[0].outage.id));
  CU_ASSERT(event_id_of(a.rec.seen[0].outage.id, 4294967295u).size() <= 64);
}

// Any difference in integration, key field or start (to the nanosecond)
// gives another id; fields are delimited, so moving bytes between them does too.
void test_ids_differ_by_integration_key_and_start() {
  const OutageKey key{"h", "cpu", "0", "percent", "user"};
  const std::string id = outage_id_of("test", OutageKind::ValueList, key, at(0));
  CU_ASSERT(id == outage_id_of("test", OutageKind::ValueList, key, at(0)));
  std::set<std::string> ids{id};
  ids.insert(outage_id_of("test2", OutageKind::ValueList, key, at(0)));
  ids.insert(outage_id_of("test", OutageKind::ValueList, key, at(0) + nanoseconds(1)));
  ids.insert(outage_id_of("test", OutageKind::ValueList, OutageKey{"h2", "cpu", "0", "percent", "user"}, at(0)));
  ids.insert(outage_id_of("test", OutageKind::ValueList, OutageKey{"h", "cpu", "0", "percent", "system"}, at(0)));
  ids.insert(outage_id_of("test", OutageKind::ValueList, OutageKey{"hc", "pu", "0", "percent", "user"}, at(0)));
  ids.insert(outage_id_of("test", OutageKind::ValueList, OutageKey{"h", "cpu", "", "0percent", "user"}, at(0)));
  ids.insert(outage_id_of("testh", OutageKind::ValueList, OutageKey{"", "cpu", "0", "percent", "user"}, at(0)));
  ids.insert(outage_id_of("test", OutageKind::Host, OutageKey{"h", "", "", "", ""}, at(0)));
  ids.insert(outage_id_of("test", OutageKind::ValueList, OutageKey{"h", "", "", "", ""}, at(0)));
  CU_ASSERT_EQUAL(ids.size(), 10u);
}

// A restart in the middle of an outage continues its sequence: the ids
// after it are those an aggregator that never restarted makes.
void test_ids_survive_restart() {
  Fixture steady(opts(Severity::Warning, 100)), restarted(opts(Severity::Warning, 100));
  for (const auto& n : life()) steady.send(n);
  for (std::size_t i = 0; i < life().size(); ++i) {
    if (i == 2) restarted.restart(opts(Severity::Warning, 100));
    restarted.send(life()[i]);
  }
  CU_ASSERT_EQUAL_FATAL(restarted.rec.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    CU_ASSERT(restarted.rec.seen[i].outage.id == steady.rec.seen[i].outage.id);
    CU_ASSERT_EQUAL(restarted.rec.seen[i].sequence, steady.rec.seen[i].sequence);
  }
  // A refused event does not take a place: the next try gets it.
  Fixture f;
  f.send(note(Severity::Warning, at(0)));
  f.rec.refuse = true;
  f.send(note(Severity::Failure, at(10)));
  f.rec.refuse = false;
  f.send(note(Severity::Failure, at(20)));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 2u);
  CU_ASSERT_EQUAL(f.rec.seen[1].sequence, 2u);
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
  Router router(config, sink, log);

  router.dispatch(note(Severity::Failure, at(0), "db1"));
  router.dispatch(note(Severity::Failure, at(0), "web7"));
  router.dispatch(note(Severity::Failure, at(0), "db1x"));
  CU_ASSERT_EQUAL(sink.for_integration("dba").size(), 1u);
  CU_ASSERT_EQUAL(sink.for_integration("web").size(), 1u);
  CU_ASSERT_EQUAL(sink.for_integration("all").size(), 3u);
  CU_ASSERT_EQUAL(router.open_outages(0), 1u);
  CU_ASSERT_EQUAL(router.open_outages(1), 1u);
  CU_ASSERT_EQUAL(router.open_outages(2), 3u);

  // Each integration has its own outage for the same value list.
  router.dispatch(note(Severity::Okay, at(60), "db1"));
  const auto dba = sink.for_integration("dba"), all = sink.for_integration("all");
  CU_ASSERT_EQUAL(dba.size(), 2u);
  CU_ASSERT_EQUAL(all.size(), 4u);
  if (dba.size() == 2 && all.size() == 4) {
    const Event& e = dba[0];
    CU_ASSERT(is_uuid(e.outage_id));
    CU_ASSERT(e.event_id == e.outage_id + "-1");
    CU_ASSERT(dba[1].event_id == e.outage_id + "-2");
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

// GroupBy "host" through the Router: one page for 30 failing value lists,
// one clear whose body lists them.
void test_router_group_by_host() {
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  config.integrations.push_back(integration("hosts", nullptr));
  config.integrations.back().group_by = GroupBy::Host;
  Router router(config, sink, log);
  for (int i = 0; i < 30; ++i) router.dispatch(member(Severity::Failure, at(i), i));
  for (int i = 0; i < 30; ++i) router.dispatch(member(Severity::Okay, at(100 + i), i));
  const auto events = sink.for_integration("hosts");
  CU_ASSERT_EQUAL_FATAL(events.size(), 2u);
  CU_ASSERT(events[1].type == EventType::Clear && events[1].event_id == events[0].outage_id + "-2");
  auto body = xmtest::parse_json(events[1].body);
  CU_ASSERT_FATAL(body != nullptr);
  const std::string services = xmtest::json_string_member(body.get(), "services");
  CU_ASSERT(services.rfind("df-0/percent_bytes-v0, df-0/percent_bytes-v1, ", 0) == 0);
  CU_ASSERT(services.size() > 12 && services.compare(services.size() - 12, 12, " and 20 more") == 0);
  CU_ASSERT(xmtest::json_string_member(body.get(), "name") == "h");
  CU_ASSERT_EQUAL(router.open_outages(0), 0u);
}

// FloodLimit through the Router: whatever the timing, every outage is paged
// on its own or folded, and the flood outage's clear names how many it had.
void test_router_flood_limit() {
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  config.integrations.push_back(integration("flood", nullptr));
  config.integrations.back().flood_limit = 4;
  Router router(config, sink, log);
  for (int i = 0; i < 40; ++i) router.dispatch(flood_note(Severity::Failure, at(i), i));
  const std::uint64_t folded = router.folded(0);
  std::set<std::string> paged;  // the flood outage's re-pages (waiting in a lane) count once
  for (const Event& e : sink.for_integration("flood"))
    if (e.type == EventType::Outage) paged.insert(e.outage_id);
  const std::size_t pages = paged.size();
  CU_ASSERT(folded > 0);
  CU_ASSERT_EQUAL(pages + folded, 40u + 1u);  // the flood outage's own page
  for (int i = 0; i < 40; ++i) router.dispatch(flood_note(Severity::Okay, at(100 + i), i));
  std::size_t clears = 0;
  std::string flood_name;
  for (const Event& e : sink.for_integration("flood")) {
    if (e.type != EventType::Clear) continue;
    ++clears;
    auto body = xmtest::parse_json(e.body);
    CU_ASSERT_FATAL(body != nullptr);
    const std::string name = xmtest::json_string_member(body.get(), "name");
    if (name.rfind("flood: ", 0) == 0) flood_name = name;
  }
  CU_ASSERT_EQUAL(clears, pages);
  const std::string expected = "flood: " + std::to_string(folded) + " outages on ";
  CU_ASSERT(flood_name.compare(0, expected.size(), expected) == 0);
  CU_ASSERT_EQUAL(router.open_outages(0), 0u);
}

void test_router_sink_exception_isolated() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  RecordingSink sink;
  Config config;
  config.integrations.push_back(integration("first", nullptr));
  config.integrations.push_back(integration("second", nullptr));
  Router router(config, sink, log);

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
  Router router(config, sink, log);
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
  Router router(config, sink, log);
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

// --- silences and maintenance windows ---------------------------------------------------------------

// What covers: the test's set of hosts, or of value lists ("host/plugin").
struct Covers {
  std::mutex mutex;
  std::set<std::string> hosts, plugins;
  void set(std::set<std::string> h, std::set<std::string> p = {}) {
    std::lock_guard<std::mutex> lock(mutex);
    hosts = std::move(h);
    plugins = std::move(p);
  }
  TrackerOptions options(TrackerOptions o = opts()) {
    o.covering = [this](const OutageKey& k) -> std::optional<std::string> {
      std::lock_guard<std::mutex> lock(mutex);
      if (hosts.count(k.host) || plugins.count(k.host + "/" + k.plugin)) return std::string("silence test");
      return std::nullopt;
    };
    return o;
  }
};

// Opened while covered: tracked, nothing sent; paged when the cover ends,
// with its real start; its clear follows as for any page.
void test_covered_outage_pages_when_released() {
  Covers covers;
  covers.set({"h1"});
  Fixture f(covers.options());
  f.send(note(Severity::Failure, at(0), "h1"));
  f.send(note(Severity::Failure, at(1), "h2"));
  CU_ASSERT_EQUAL_FATAL(f.rec.size(), 1u);
  CU_ASSERT_EQUAL(f.rec.seen[0].key.host, "h2");
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
  CU_ASSERT_EQUAL(f.tracker->silenced(), 1u);
  CU_ASSERT_EQUAL(f.tracker->release(at(50), f.rec.handler()), 0u);  // still covered
  covers.set({});
  CU_ASSERT_EQUAL(f.tracker->release(at(100), f.rec.handler()), 1u);
  XM_REQUIRE(f.rec.size() == 2u);
  const Seen late = f.rec.seen[1];  // a copy: seen grows below
  CU_ASSERT(late.type == EventType::Outage);
  CU_ASSERT_EQUAL(late.key.host, "h1");
  CU_ASSERT(late.outage.start == at(0));
  CU_ASSERT(late.notification_time == at(100));
  CU_ASSERT(late.notification_severity == Severity::Failure);
  CU_ASSERT(late.outage.id == outage_id_of("test", OutageKind::ValueList, OutageKey::of(note(Severity::Failure, at(0), "h1")), at(0)));
  CU_ASSERT_EQUAL(late.sequence, 1u);  // the held page took no place: "-1", the first that left
  CU_ASSERT_EQUAL(f.tracker->release(at(101), f.rec.handler()), 0u);  // once
  f.send(note(Severity::Okay, at(200), "h1"));
  XM_REQUIRE(f.rec.size() == 3u);
  CU_ASSERT(f.rec.seen[2].type == EventType::Clear && f.rec.seen[2].outage.id == late.outage.id);
  CU_ASSERT_EQUAL(f.rec.seen[2].sequence, 2u);
}

// Closed while covered: nothing at all, neither page nor clear.
void test_closed_while_covered_sends_nothing() {
  Covers covers;
  covers.set({"h1"});
  Fixture f(covers.options());
  f.send(note(Severity::Warning, at(0), "h1"));
  f.send(note(Severity::Failure, at(1), "h1"));
  f.send(note(Severity::Okay, at(2), "h1"));
  CU_ASSERT_EQUAL(f.rec.size(), 0u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
  covers.set({});
  CU_ASSERT_EQUAL(f.tracker->release(at(100), f.rec.handler()), 0u);
  CU_ASSERT_EQUAL(f.rec.size(), 0u);
  // And it is gone: a new failure is a new outage, paged.
  f.send(note(Severity::Failure, at(200), "h1"));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
}

// Paged before the cover: no escalation while covered, the escalation when
// released; a clear while covered is sent.
void test_paged_before_cover_escalates_after_and_always_clears() {
  Covers covers;
  Fixture f(covers.options());
  f.send(note(Severity::Warning, at(0), "h1"));
  f.send(note(Severity::Warning, at(0), "h2"));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  covers.set({"h1", "h2"});
  f.send(note(Severity::Failure, at(1), "h1"));
  f.send(note(Severity::Failure, at(1), "h2"));
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
  f.send(note(Severity::Okay, at(2), "h2"));  // its page went out: its clear goes
  XM_REQUIRE(f.rec.size() == 3u);
  CU_ASSERT(f.rec.seen[2].type == EventType::Clear && f.rec.seen[2].key.host == "h2");
  covers.set({});
  CU_ASSERT_EQUAL(f.tracker->release(at(10), f.rec.handler()), 1u);
  XM_REQUIRE(f.rec.size() == 4u);
  CU_ASSERT(f.rec.seen[3].type == EventType::Outage && f.rec.seen[3].key.host == "h1");
  CU_ASSERT(f.rec.seen[3].outage.severity == Severity::Failure);
  CU_ASSERT(f.rec.seen[3].outage.start == at(0));
  CU_ASSERT_EQUAL(f.rec.seen[2].sequence, 2u);  // h2's clear: its held escalation took no place
  CU_ASSERT_EQUAL(f.rec.seen[3].sequence, 2u);  // h1's escalation, released: next after its page
}

// A re-page (RenotifyInterval) of an outage paged before is dropped while
// covered, not owed afterwards.
void test_renotify_while_covered_is_not_owed() {
  Covers covers;
  Fixture f(covers.options(opts(Severity::Warning, 60)));
  f.send(note(Severity::Failure, at(0), "h1"));
  covers.set({"h1"});
  f.send(note(Severity::Failure, at(100), "h1"));
  CU_ASSERT_EQUAL(f.rec.size(), 1u);
  covers.set({});
  CU_ASSERT_EQUAL(f.tracker->release(at(110), f.rec.handler()), 0u);
  f.send(note(Severity::Failure, at(200), "h1"));  // the interval since the last decision
  CU_ASSERT_EQUAL(f.rec.size(), 2u);
}

// A host outage is covered while every failing member is: a member nothing
// covers pages it at once.
void test_host_outage_covered_while_every_failing_member_is() {
  Covers covers;
  TrackerOptions o = opts();
  o.group_by = OutageKind::Host;
  Fixture f(covers.options(o));
  covers.set({}, {"h1/cpu", "h1/memory"});
  f.send(note(Severity::Failure, at(0), "h1", "cpu"));
  f.send(note(Severity::Failure, at(1), "h1", "memory", "memory", "used"));
  CU_ASSERT_EQUAL(f.rec.size(), 0u);
  f.send(note(Severity::Failure, at(2), "h1", "disk", "disk_octets", "read"));
  XM_REQUIRE(f.rec.size() == 1u);
  CU_ASSERT(f.rec.seen[0].type == EventType::Outage && f.rec.seen[0].outage.start == at(0));
  CU_ASSERT_EQUAL(f.rec.seen[0].sequence, 1u);
  CU_ASSERT_EQUAL(f.rec.seen[0].outage.members.size(), 3u);
  f.send(note(Severity::Okay, at(3), "h1", "disk", "disk_octets", "read"));
  f.send(note(Severity::Okay, at(4), "h1", "cpu"));
  f.send(note(Severity::Okay, at(5), "h1", "memory", "memory", "used"));
  XM_REQUIRE(f.rec.size() == 2u);
  CU_ASSERT(f.rec.seen[1].type == EventType::Clear);
}

// Covered outages neither count towards FloodLimit nor join the flood outage.
void test_covered_outages_outside_flood_limit() {
  TestClock clock;
  Covers covers;
  covers.set({"h0", "h1", "h2", "h3", "h4", "h5"});
  Fixture f(covers.options(flood_opts(clock, 2)));
  for (int i = 0; i < 24; ++i) f.send(flood_note(Severity::Failure, at(i), i));  // h0..h5, 4 each
  CU_ASSERT_EQUAL(f.rec.size(), 0u);
  CU_ASSERT_EQUAL(f.tracker->folded(), 0u);
  CU_ASSERT_EQUAL(f.tracker->silenced(), 24u);
  f.send(flood_note(Severity::Failure, at(30), 24));  // h6: pages on its own, the minute untouched
  XM_REQUIRE(f.rec.size() == 1u);
  CU_ASSERT(f.rec.seen[0].outage.kind == OutageKind::ValueList);
  CU_ASSERT_EQUAL(f.tracker->folded(), 0u);
}

// Whether an outage was paged, or has a page held back, survives a restart
// (a kill -9: nothing written on the way out), with or without a compaction
// since: a held page is neither lost nor sent while still covered, and an
// outage never paged sends no clear.
void test_held_pages_survive_restart() {
  for (const bool compacted : {false, true}) {
    Covers covers;
    Fixture f(covers.options());
    f.send(note(Severity::Warning, at(0), "h2"));  // paged before the cover
    covers.set({"h1", "h2", "h3"});
    f.send(note(Severity::Failure, at(1), "h1"));  // held, never paged
    f.send(note(Severity::Failure, at(2), "h2"));  // its escalation held
    f.send(note(Severity::Failure, at(3), "h3"));  // held, never paged
    CU_ASSERT_EQUAL_FATAL(f.rec.size(), 1u);
    if (compacted) f.spool->maintain();
    f.restart(covers.options());
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 3u);
    f.send(note(Severity::Failure, at(10), "h1"));  // still failing, still covered: nothing
    CU_ASSERT_EQUAL(f.tracker->release(at(11), f.rec.handler()), 0u);
    f.send(note(Severity::Okay, at(12), "h3"));  // closes while covered: nothing at all
    CU_ASSERT_EQUAL(f.rec.size(), 1u);
    f.restart(covers.options());  // and again, after those changes
    CU_ASSERT_EQUAL(f.tracker->open_outages(), 2u);
    covers.set({});
    CU_ASSERT_EQUAL(f.tracker->release(at(100), f.rec.handler()), 2u);
    XM_REQUIRE(f.rec.size() == 3u);
    std::map<std::string, Seen> late;
    for (std::size_t i = 1; i < 3; ++i) late.emplace(f.rec.seen[i].outage.members.empty() ? f.rec.seen[i].key.host : "", f.rec.seen[i]);
    XM_REQUIRE(late.count("h1") == 1 && late.count("h2") == 1);
    CU_ASSERT(late.at("h1").type == EventType::Outage && late.at("h1").outage.start == at(1));
    CU_ASSERT(late.at("h1").outage.id == outage_id_of("test", OutageKind::ValueList, OutageKey::of(note(Severity::Failure, at(1), "h1")), at(1)));
    CU_ASSERT(late.at("h2").outage.severity == Severity::Failure && late.at("h2").outage.start == at(0));
    CU_ASSERT(late.at("h2").outage.id == f.rec.seen[0].outage.id && late.at("h2").sequence > f.rec.seen[0].sequence);
    CU_ASSERT_EQUAL(late.at("h1").sequence, 1u);  // never paged: its first page, across restarts
    CU_ASSERT_EQUAL(late.at("h2").sequence, 2u);  // paged once: the next
    f.restart(covers.options());  // paged: nothing owed any more
    CU_ASSERT_EQUAL(f.tracker->release(at(101), f.rec.handler()), 0u);
    f.send(note(Severity::Okay, at(200), "h1"));
    f.send(note(Severity::Okay, at(200), "h2"));
    XM_REQUIRE(f.rec.size() == 5u);
    CU_ASSERT(f.rec.seen[3].type == EventType::Clear && f.rec.seen[4].type == EventType::Clear);
    CU_ASSERT_EQUAL(f.log.count(LogLevel::Warning) + f.log.count(LogLevel::Error), 0u);
  }
}

// An outage opened while covered and never paged closes without a clear
// after a restart too, even once nothing covers it any more (the cover
// ended while collectd was down, and the OKAY came before any release).
void test_unpaged_outage_sends_no_clear_after_restart() {
  Covers covers;
  covers.set({"h1"});
  Fixture f(covers.options());
  f.send(note(Severity::Failure, at(0), "h1"));
  CU_ASSERT_EQUAL(f.rec.size(), 0u);
  covers.set({});
  f.restart(covers.options());
  f.send(note(Severity::Okay, at(5), "h1"));
  CU_ASSERT_EQUAL(f.rec.size(), 0u);
  CU_ASSERT_EQUAL(f.tracker->open_outages(), 0u);
}

int main(int argc, char** argv) {
  return xmtest::run(
      argc, argv,
      {{"listing", {{"for_each_open_lists_every_open_outage", test_for_each_open_lists_every_open_outage}}},
       {"silences",
        {{"covered_outage_pages_when_released", test_covered_outage_pages_when_released},
         {"closed_while_covered_sends_nothing", test_closed_while_covered_sends_nothing},
         {"paged_before_cover_escalates_after_and_always_clears", test_paged_before_cover_escalates_after_and_always_clears},
         {"renotify_while_covered_is_not_owed", test_renotify_while_covered_is_not_owed},
         {"host_outage_covered_while_every_failing_member_is", test_host_outage_covered_while_every_failing_member_is},
         {"covered_outages_outside_flood_limit", test_covered_outages_outside_flood_limit},
         {"held_pages_survive_restart", test_held_pages_survive_restart},
         {"unpaged_outage_sends_no_clear_after_restart", test_unpaged_outage_sends_no_clear_after_restart}}},
       {"table",
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
         {"missing_value_okay_with_older_value_time_clears", test_missing_value_okay_with_older_value_time_clears},
         {"clock_step_back_is_not_ignored", test_clock_step_back_is_not_ignored},
         {"refused_outage_is_not_opened", test_refused_outage_is_not_opened},
         {"refused_escalation_and_clear_keep_state", test_refused_escalation_and_clear_keep_state},
         {"handler_exception_leaves_state", test_handler_exception_leaves_state}}},
       {"collectd_shapes",
        {{"threshold_failure_with_meta", test_threshold_failure_with_meta},
         {"missing_value_failure_without_meta", test_missing_value_failure_without_meta},
         {"putnotif_without_type", test_putnotif_without_type}}},
       {"memory",
        {{"memory_bound_forgets_least_recent", test_memory_bound_forgets_least_recent},
         {"memory_clock_step_forgets_older", test_memory_clock_step_forgets_older},
         {"memory_remembered_again_is_forgotten_last", test_memory_remembered_again_is_forgotten_last},
         {"memory_same_time_twice_forgotten_once", test_memory_same_time_twice_forgotten_once},
         {"memory_last_closed_order_each_key_once", test_memory_last_closed_order_each_key_once},
         {"memory_repack_keeps_entries_and_order", test_memory_repack_keeps_entries_and_order}}},
       {"sequences",
        {{"stale_after_close_ignored", test_stale_after_close_ignored},
         {"reopen_at_same_time_new_id", test_reopen_at_same_time_new_id},
         {"closed_remembered_across_restart", test_closed_remembered_across_restart},
         {"closed_kept_by_compaction_bounded", test_closed_kept_by_compaction_bounded},
         {"every_interleaving", test_every_interleaving},
         {"randomized_sequence", test_randomized_sequence}, {"many_threads", test_many_threads},
         {"many_threads_silent_closes", test_many_threads_silent_closes}}},
       {"persistence",
        {{"restart_keeps_open_outage", test_restart_keeps_open_outage},
         {"restart_keeps_renotify_and_order", test_restart_keeps_renotify_and_order},
         {"hostile_key_bytes_round_trip", test_hostile_key_bytes_round_trip},
         {"compaction_keeps_open_outages_only", test_compaction_keeps_open_outages_only},
         {"change_in_undelivered_event_survives_restart", test_change_in_undelivered_event_survives_restart},
         {"close_without_event_is_recorded", test_close_without_event_is_recorded},
         {"closed_keys_are_forgotten", test_closed_keys_are_forgotten},
         {"recovered_changes_applied_in_order", test_recovered_changes_applied_in_order},
         {"damaged_table_record_costs_only_it", test_damaged_table_record_costs_only_it}}},
       {"group_by_host",
        {{"value_lists_share_one_outage", test_host_value_lists_share_one_outage},
         {"limit_counts_failing_members", test_host_limit_counts_failing_members},
         {"escalates_once_and_repages", test_host_escalates_once_and_repages},
         {"older_notification_ignored_per_member", test_host_older_notification_ignored_per_member},
         {"missing_value_member", test_host_missing_value_member},
         {"restart_keeps_members", test_host_restart_keeps_members},
         {"grouping_change_keeps_open_outages", test_host_grouping_change_keeps_open_outages}}},
       {"flood",
        {{"folds_beyond_limit", test_flood_folds_beyond_limit},
         {"minute_after_restart", test_flood_minute_after_restart},
         {"escalates_and_repages", test_flood_escalates_and_repages},
         {"survives_restart", test_flood_survives_restart},
         {"of_host_outages", test_flood_of_host_outages},
         {"first_page_leaves_at_once", test_flood_first_page_leaves_at_once},
         {"many_threads", test_flood_many_threads}}},
       {"ids",
        {{"agree_between_aggregators", test_ids_agree_between_aggregators},
         {"differ_by_integration_key_and_start", test_ids_differ_by_integration_key_and_start},
         {"survive_restart", test_ids_survive_restart}}},
       {"router",
        {{"routes_by_host_filter", test_router_routes_by_host_filter},
         {"group_by_host", test_router_group_by_host},
         {"flood_limit", test_router_flood_limit},
         {"sink_exception_isolated", test_router_sink_exception_isolated},
         {"refused_event_not_opened", test_router_refused_event_not_opened},
         {"options_from_integration", test_router_options_from_integration}}}});
}
