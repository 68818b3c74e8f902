// Delivery (collectd-xmatters(5), DELIVERY and SECURITY) over real loopback HTTP(S) to the xMatters
// stand-in: headers, retries and backoff, Retry-After, dead letters,
// RetryMaxAge, an endpoint down and back, per-outage order, a slow endpoint,
// TLS (with client certificates), basic auth, proxies, secrets, spool
// recovery, QueueLimit, shutdown.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "delivery/dead_letter.h"
#include "delivery/delivery.h"
#include "outage/flood_budget.h"
#include "delivery/flood_minute.h"
#include "delivery/http_client.h"
#include "delivery/lane.h"
#include "outage/minute_budget.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "standin.h"
#include "testing.h"

using namespace std::chrono_literals;
using xmatters::Clock;
using TimePointT = xmatters::TimePoint;
using xmatters::Config;
using xmatters::Delivery;
using xmatters::DeliveryOptions;
using xmatters::Event;
using xmatters::EventType;
using xmatters::IntegrationConfig;
using xmatters::LogLevel;
using xmtest::RecordedRequest;
namespace sf = xmatters::spool_format;
using xmtest::Standin;

namespace {

constexpr auto kWait = std::chrono::milliseconds(15000);

// Appends as the store does (src/core/store/store.cc): a clear may use the reserve, an
// outage event must leave it its need.
void append(xmatters::Spool& spool, const xmatters::Event& event) {
  spool.append(event, event.type == xmatters::EventType::Clear ? xmatters::Spool::Room::Reserve
                                                                : xmatters::Spool::Room::Free);
}


DeliveryOptions fast_options() {
  DeliveryOptions o;
  o.initial_backoff = 10ms;
  o.max_backoff = 100ms;
  o.sync_interval = 50ms;
  return o;
}

IntegrationConfig integration_for(const Standin& standin, const std::string& name = "ops") {
  IntegrationConfig c;
  c.name = name;
  c.outage_url = standin.url("outage-fn");
  c.clear_url = standin.url("clear-fn");
  c.timeout = 2000ms;
  c.connections = 4;
  c.flood_limit = 0;  // these tests send bursts; FloodLimit's pacing has its own
  return c;
}

Event make_event(EventType type, const std::string& outage_id, int seq = 0, const std::string& integration = "ops") {
  Event e;
  e.event_id = xmtest::random_uuid();
  e.integration = integration;
  e.outage_id = outage_id;
  e.type = type;
  e.created = Clock::now();
  e.body = std::string("{\"event_type\":\"") + xmatters::event_type_name(type) + "\",\"outage_id\":\"" + outage_id +
           "\",\"event_id\":\"" + e.event_id + "\",\"seq\":" + std::to_string(seq) + "}";
  e.change = "change " + outage_id + " " + std::to_string(seq);
  return e;
}

Standin::Reply reply_with(int status) {
  Standin::Reply r;
  r.status = status;
  return r;
}

// Delivery's clocks in a test that controls time (DeliveryOptions::
// steady_now, wall_now): they start at the real clocks' now (the wall
// clock's on a whole second, an HTTP date's precision) and move only when
// the test moves them.
class TestClock {
 public:
  xmatters::Steady::time_point steady() const { return steady0_ + moved(); }
  TimePointT wall() const { return wall0_ + std::chrono::duration_cast<Clock::duration>(moved()); }
  void advance(xmatters::Steady::duration d) { moved_ += d.count(); }

 private:
  xmatters::Steady::duration moved() const { return xmatters::Steady::duration(moved_.load()); }
  const xmatters::Steady::time_point steady0_ = xmatters::Steady::now();
  const TimePointT wall0_ = std::chrono::floor<std::chrono::seconds>(Clock::now());
  std::atomic<xmatters::Steady::rep> moved_{0};
};

// The test's world: a stand-in, a configuration and a delivery on a spool
// directory. Members are destroyed bottom up: the delivery first.
struct World {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  std::unique_ptr<Standin> standin;
  Config config;
  TestClock clock;  // delivery's once use_test_clock() is called
  std::unique_ptr<Delivery> delivery;

  explicit World(xmtest::StandinOptions so = {}) : standin(std::make_unique<Standin>(std::move(so))) {
    config.integrations.push_back(integration_for(*standin));
  }
  IntegrationConfig& ops() { return config.integrations.front(); }
  std::string spool_dir() const { return dir / "spool"; }
  DeliveryOptions options = fast_options();
  // Delivery decides by `clock`, which moves only by advance(): the test
  // waits for what it expects, not for time to pass.
  void use_test_clock() {
    options.steady_now = [this] { return clock.steady(); };
    options.wall_now = [this] { return clock.wall(); };
  }
  // Moves the clock, and wakes the delivery's threads to see it.
  void advance(xmatters::Steady::duration d) {
    clock.advance(d);
    if (delivery) delivery->wake();
  }
  // An event created now by the test's clock.
  Event event_now(EventType type, const std::string& outage_id, int seq = 0) {
    Event e = make_event(type, outage_id, seq);
    e.created = clock.wall();
    return e;
  }
  // When the queue's head of outage_id goes next, from the test clock's
  // now; nullopt when it has none (in flight, gone).
  std::optional<xmatters::Steady::duration> next_attempt_in(const std::string& outage_id) {
    for (const auto& q : delivery->queue())
      if (q.outage_id == outage_id && q.next_attempt) return *q.next_attempt - clock.wall();
    return std::nullopt;
  }
  Delivery& open(bool start = true) {
    delivery = std::make_unique<Delivery>(config, spool_dir(), log, options);
    if (start) delivery->start();
    return *delivery;
  }
  std::string dead_letter_path() const { return dir / "spool/dead-letter.jsonl"; }
  std::string dead_letters() const {
    const std::string path = dead_letter_path();
    return xmtest::file_exists(path) ? xmtest::read_file(path) : "";
  }
};

// Real time for the delivery's threads to act on what they see, before a
// test checks that something did NOT happen (a retry before its time).
void let_threads_run() { std::this_thread::sleep_for(100ms); }

std::string http_date(TimePointT t) {
  const time_t s = Clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// The dead-letter tests' delivery: every event refused with a 400, so each
// is a dead letter. Opened without starting it when a test first plants
// something at w.dead_letter_path().
Delivery& open_refusing(World& w, bool start = true) {
  w.standin->set_default_reply(reply_with(400));
  return w.open(start);
}

std::vector<xmtest::JsonPtr> json_lines(const std::string& text) {
  std::vector<xmtest::JsonPtr> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(xmtest::parse_json(line));
  return out;
}

std::string body_member(const RecordedRequest& r, const char* key) {
  auto j = xmtest::parse_json(r.body);
  return j ? xmtest::json_string_member(j.get(), key) : "<no json>";
}

long long body_seq(const RecordedRequest& r) {
  auto j = xmtest::parse_json(r.body);
  return j ? json_integer_value(json_object_get(j.get(), "seq")) : -1;
}

std::vector<RecordedRequest> accepted(const Standin& s) {
  std::vector<RecordedRequest> out;
  for (auto& r : s.requests())
    if (r.status >= 200 && r.status < 300) out.push_back(r);
  return out;
}

// Each outage's accepted events, in arrival order, are in submission order
// (their seq grows) and none is missing or repeated.
bool in_order_per_outage(const std::vector<RecordedRequest>& got, std::size_t expected) {
  std::map<std::string, long long> last;
  std::set<std::string> seen;
  for (const auto& r : got) {
    const std::string outage = body_member(r, "outage_id");
    const long long seq = body_seq(r);
    auto it = last.find(outage);
    if (it != last.end() && seq <= it->second) return false;
    last[outage] = seq;
    seen.insert(body_member(r, "event_id"));
  }
  return seen.size() == expected && got.size() == expected;
}

// Like in_order_per_outage, where an outage's pages may have replaced each
// other while queued: each of the outages' events arrived in order, none
// twice, and the last two are its latest page (seq last_page) and its clear.
bool latest_page_then_clear(const std::vector<RecordedRequest>& got, std::size_t outages, long long last_page) {
  std::map<std::string, std::vector<std::pair<std::string, long long>>> by_outage;
  std::set<std::string> seen;
  for (const auto& r : got) {
    by_outage[body_member(r, "outage_id")].emplace_back(body_member(r, "event_type"), body_seq(r));
    if (!seen.insert(body_member(r, "event_id")).second) return false;
  }
  if (by_outage.size() != outages) return false;
  for (const auto& [id, events] : by_outage) {
    for (std::size_t i = 1; i < events.size(); ++i)
      if (events[i].second <= events[i - 1].second) return false;
    if (events.size() < 2 || events.back().first != "clear" || events[events.size() - 2].first != "outage" ||
        events[events.size() - 2].second != last_page)
      return false;
  }
  return true;
}

// Every event still in the spool, read by opening it (the delivery must be gone).
std::vector<Event> spooled(const std::string& dir) {
  xmtest::CapturingLogger quiet;
  xmatters::Spool spool(dir, quiet);
  return spool.take_recovered();
}

std::string newest_segment(const std::string& dir) {
  std::string best;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.rfind("spool-", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0)
        best = std::max(best, name);
    }
    closedir(d);
  }
  return best.empty() ? "" : dir + "/" + best;
}

// --- FloodLimit pacing (collectd-xmatters(5) OUTAGES) ------------------------------------------------

using xmatters::Steady;

// The ring of the last N uses: a use is allowed once the oldest is a minute old.
void test_minute_budget() {
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  xmatters::MinuteBudget<Steady::time_point> b(3);
  CU_ASSERT(b.limited());
  b.use(t0);
  b.use(t0 + 10s);
  CU_ASSERT(b.available(t0 + 10s));
  CU_ASSERT_EQUAL(b.left(t0 + 10s), 1u);
  b.use(t0 + 20s);
  CU_ASSERT(!b.available(t0 + 20s));
  CU_ASSERT(b.next_free(t0 + 20s) == t0 + 60s);
  CU_ASSERT(!b.available(t0 + 59s));
  CU_ASSERT(b.available(t0 + 60s));
  CU_ASSERT_EQUAL(b.left(t0 + 65s), 1u);
  b.use(t0 + 60s);
  CU_ASSERT(b.next_free(t0 + 60s) == t0 + 70s);  // the oldest is now the one at t0 + 10 s
  CU_ASSERT_EQUAL(b.left(t0 + 200s), 3u);
  xmatters::MinuteBudget<Steady::time_point> none(0);
  CU_ASSERT(!none.limited());
  for (int i = 0; i < 100; ++i) none.use(t0);
  CU_ASSERT(none.available(t0));
}

xmatters::LaneSchedule paced_schedule(unsigned flood_limit) {
  return xmatters::LaneSchedule(xmatters::Backoff(1000ms, 300000ms), flood_limit);
}

// Takes every head due at now (delivering each at once); their outage ids.
std::vector<std::string> take_all(xmatters::LaneSchedule& s, Steady::time_point now) {
  std::vector<std::string> out;
  while (auto t = s.take(now)) {
    out.push_back(t->outage_id);
    s.pop(t->outage_id, now);
  }
  return out;
}

// 10 clears with FloodLimit 4: 4 leave at once, 4 more when the minute
// frees, the last 2 a minute later, in their order; next_due() says when,
// so the worker sleeps until then.
void test_clears_paced_by_flood_limit() {
  auto s = paced_schedule(4);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  for (int i = 0; i < 10; ++i) s.enqueue(make_event(EventType::Clear, "c-" + std::to_string(i)));
  CU_ASSERT((take_all(s, t0) == std::vector<std::string>{"c-0", "c-1", "c-2", "c-3"}));
  CU_ASSERT_EQUAL(s.paced(), 6u);
  CU_ASSERT(s.next_due() == t0 + 60s);
  CU_ASSERT(take_all(s, t0 + 59s).empty());
  CU_ASSERT((take_all(s, t0 + 60s) == std::vector<std::string>{"c-4", "c-5", "c-6", "c-7"}));
  CU_ASSERT(s.next_due() == t0 + 120s);
  CU_ASSERT((take_all(s, t0 + 120s) == std::vector<std::string>{"c-8", "c-9"}));
  CU_ASSERT_EQUAL(s.queued(), 0u);
  CU_ASSERT(s.next_due() == Steady::time_point::max());
}

// The time a head waited for the budget is recorded with it (RetryMaxAge
// does not count it).
void test_pacing_time_recorded() {
  auto s = paced_schedule(1);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  s.enqueue(make_event(EventType::Clear, "c-a"));
  s.enqueue(make_event(EventType::Clear, "c-b"));
  auto a = s.take(t0);
  CU_ASSERT_FATAL(a.has_value());
  CU_ASSERT(a->head.paced == Steady::duration::zero());
  CU_ASSERT(!s.take(t0 + 1s).has_value());
  auto b = s.take(t0 + 60s);
  CU_ASSERT_FATAL(b.has_value());
  CU_ASSERT_EQUAL(b->outage_id, "c-b");
  CU_ASSERT(b->head.paced == 59s);
}

// Clears without budget do not hold up a new outage's page, and pages
// without budget do not hold up clears; within an outage, a clear never
// overtakes its page waiting for budget.
void test_pacing_types_independent_and_ordered() {
  auto s = paced_schedule(2);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  for (int i = 0; i < 3; ++i) s.enqueue(make_event(EventType::Clear, "c-" + std::to_string(i)));
  CU_ASSERT_EQUAL(take_all(s, t0).size(), 2u);  // c-2 waits
  s.enqueue(make_event(EventType::Outage, "o-new"));
  CU_ASSERT((take_all(s, t0 + 1s) == std::vector<std::string>{"o-new"}));  // the one page of the minute not kept for the flood outage
  s.enqueue(make_event(EventType::Outage, "o-y", 0));
  s.enqueue(make_event(EventType::Clear, "o-y", 1));  // behind its page, which has no budget
  CU_ASSERT(take_all(s, t0 + 2s).empty());
  CU_ASSERT(s.next_due() == t0 + 60s);  // c-2's budget frees first
  CU_ASSERT((take_all(s, t0 + 60s) == std::vector<std::string>{"c-2"}));
  CU_ASSERT(s.next_due() == t0 + 61s);  // o-y's page: the outage budget frees at 61 s
  auto page = s.take(t0 + 61s);
  CU_ASSERT_FATAL(page.has_value());
  CU_ASSERT_EQUAL(page->outage_id, "o-y");
  CU_ASSERT(page->head.event.type == EventType::Outage);
  CU_ASSERT(!s.take(t0 + 61s).has_value());  // its clear waits for it, though clears have budget
  s.pop("o-y", t0 + 61s);
  auto clear = s.take(t0 + 61s);
  CU_ASSERT_FATAL(clear.has_value());
  CU_ASSERT_EQUAL(clear->outage_id, "o-y");
  CU_ASSERT(clear->head.event.type == EventType::Clear);
}

// An event with a not_before (a flood outage's re-page) is not taken before
// then, whether it arrives first or behind an event in flight; a newer page
// takes its place and time, and an escalation (no not_before) goes at once.
void test_not_before_honoured() {
  auto s = paced_schedule(0);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  Event waiting = make_event(EventType::Outage, "flood", 1);
  waiting.not_before = t0 + 60s;
  s.enqueue(waiting);
  CU_ASSERT(s.next_due() == t0 + 60s);
  CU_ASSERT(!s.take(t0).has_value());
  Event grown = make_event(EventType::Outage, "flood", 2);
  grown.not_before = t0 + 60s;
  CU_ASSERT(s.enqueue(grown).has_value());  // replaced in place
  CU_ASSERT(!s.take(t0 + 59s).has_value());
  auto taken = s.take(t0 + 60s);
  CU_ASSERT_FATAL(taken.has_value());
  CU_ASSERT_EQUAL(taken->head.event.event_id, grown.event_id);
  // Behind an event in flight: due at its not_before once the head is done.
  Event later = make_event(EventType::Outage, "flood", 3);
  later.not_before = t0 + 120s;
  s.enqueue(later);
  s.pop("flood", t0 + 61s);
  CU_ASSERT(s.next_due() == t0 + 120s);
  CU_ASSERT(!s.take(t0 + 61s).has_value());
  // An escalation replaces it and leaves at once.
  CU_ASSERT(s.enqueue(make_event(EventType::Outage, "flood", 4)).has_value());
  auto escalation = s.take(t0 + 62s);
  CU_ASSERT_FATAL(escalation.has_value());
  CU_ASSERT_EQUAL(escalation->outage_id, "flood");
  s.pop("flood", t0 + 62s);
  CU_ASSERT(!s.take(t0 + 120s).has_value());  // the stale listing finds nothing
  CU_ASSERT_EQUAL(s.queued(), 0u);
}

// A page that takes the place of one due at once (a flood outage's first
// page, not yet taken when the next outage joins, its re-page waiting a
// minute) leaves at once: the first page is never held back a minute.
void test_replacement_never_later_than_replaced() {
  auto s = paced_schedule(4);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  s.enqueue(make_event(EventType::Outage, "flood", 1));
  Event repage = make_event(EventType::Outage, "flood", 2);
  repage.not_before = t0 + 60s;
  CU_ASSERT(s.enqueue(repage).has_value());
  auto taken = s.take(t0);
  CU_ASSERT_FATAL(taken.has_value());
  CU_ASSERT_EQUAL(taken->head.event.event_id, repage.event_id);
}

// Every request counts, retries included (FloodLimit 3: two pages a
// minute, the third request being the flood outage's).
void test_pacing_counts_retries() {
  auto s = paced_schedule(3);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  s.enqueue(make_event(EventType::Outage, "o-r"));
  auto r = s.take(t0);
  CU_ASSERT_FATAL(r.has_value());
  s.retry(r->outage_id, 1, std::nullopt, 0s, t0);  // due again at once (left 0)
  s.resume();
  auto again = s.take(t0);
  CU_ASSERT_FATAL(again.has_value());
  CU_ASSERT_EQUAL(again->outage_id, "o-r");
  s.pop("o-r", t0);
  s.enqueue(make_event(EventType::Outage, "o-s"));
  CU_ASSERT(!s.take(t0).has_value());  // two requests were made this minute
  CU_ASSERT(s.next_due() == t0 + 60s);
}

// Issue 21 bug 6: the flood outage's page never waits behind other pages.
// FloodLimit 4: three pages leave, a fourth waits (the minute's last
// request is the flood outage's), and the flood outage's page, queued after
// it, leaves at once; after a retry of it, the minute is used up for every
// page until it frees.
void test_flood_page_takes_the_kept_request() {
  auto budget = std::make_shared<xmatters::FloodBudget>("ops", 4);
  xmatters::LaneSchedule s(xmatters::Backoff(1000ms, 300000ms), budget);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  for (const char* id : {"o-1", "o-2", "o-3", "o-4"}) s.enqueue(make_event(EventType::Outage, id));
  CU_ASSERT((take_all(s, t0) == std::vector<std::string>{"o-1", "o-2", "o-3"}));
  CU_ASSERT_FALSE(budget->pages_on_its_own(t0));  // o-4 waits: a new outage would fold
  budget->set_flood_outage("flood");
  s.enqueue(make_event(EventType::Outage, "flood"));
  auto flood = s.take(t0 + 1s);
  CU_ASSERT_FATAL(flood.has_value());
  CU_ASSERT_EQUAL(flood->outage_id, "flood");
  s.retry("flood", 1, std::nullopt, 0s, t0 + 1s);
  s.resume();
  CU_ASSERT_FALSE(s.take(t0 + 2s).has_value());  // 4 outage requests in the minute
  CU_ASSERT(s.next_due() == t0 + 60s);
  CU_ASSERT((take_all(s, t0 + 61s) == std::vector<std::string>{"o-4", "flood"}));
  CU_ASSERT_EQUAL(s.flood_used(EventType::Outage, t0 + 61s), 2u);  // the retry at 1 s is a minute old
}

// FloodLimit 0: no pacing, today's behaviour.
void test_no_flood_limit_no_pacing() {
  auto s = paced_schedule(0);
  const Steady::time_point t0 = Steady::time_point{} + 1000h;
  for (int i = 0; i < 100; ++i) {
    s.enqueue(make_event(EventType::Clear, "c-" + std::to_string(i)));
    s.enqueue(make_event(EventType::Outage, "o-" + std::to_string(i)));
  }
  CU_ASSERT_EQUAL(take_all(s, t0).size(), 200u);
  CU_ASSERT_EQUAL(s.paced(), 0u);
}

// Through the delivery and real HTTP: with FloodLimit 2, two of three
// clears reach the stand-in, the third waits (queued, not dead-lettered,
// still in the spool at stop), and a new outage's page still goes at once.
void test_flood_limit_over_http() {
  World w;
  w.ops().flood_limit = 2;
  {
    Delivery& d = w.open();
    for (int i = 0; i < 3; ++i) CU_ASSERT(d.submit(make_event(EventType::Clear, "o-fl-" + std::to_string(i))));
    CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-fl-new")));
    CU_ASSERT_FATAL(w.standin->wait_for_accepted(3, kWait));
    const auto got = accepted(*w.standin);
    CU_ASSERT_EQUAL(body_member(got.back(), "outage_id"), "o-fl-new");
    CU_ASSERT_EQUAL(w.standin->request_count(), 3u);  // the third clear waits for the minute
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 1; }, kWait));
    CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
    w.delivery.reset();
  }
  const auto left = spooled(w.spool_dir());
  CU_ASSERT_EQUAL_FATAL(left.size(), 1u);
  CU_ASSERT(left.front().type == EventType::Clear);
  CU_ASSERT(w.dead_letters().empty());
}

// FLOOD_SENT records (FloodLimit's minute in the spool): what is read back
// is what was written; only the minute before now counts, the last
// FloodLimit of them, each integration and type apart; a send stamped after
// now (the clock went back) counts as now.
void test_flood_minute_records() {
  using xmatters::FloodSend;
  const TimePointT now = Clock::now();
  const auto rec = [](const char* name, EventType type, TimePointT at) {
    return xmatters::encode_flood_send(FloodSend{name, type, at});
  };
  const auto back = xmatters::decode_flood_send(rec("ops", EventType::Clear, now - 5s));
  CU_ASSERT_FATAL(back.has_value());
  CU_ASSERT_EQUAL(back->integration, "ops");
  CU_ASSERT(back->type == EventType::Clear);
  CU_ASSERT(back->at == now - 5s);
  CU_ASSERT_FALSE(xmatters::decode_flood_send(sf::RecordBuilder(sf::RecordType::OutageClose, 0).finish()).has_value());
  const std::vector<std::string> recovered = {
      rec("ops", EventType::Outage, now - 61s), rec("ops", EventType::Outage, now - 30s),
      rec("ops", EventType::Outage, now - 20s), rec("ops", EventType::Outage, now - 10s),
      rec("ops", EventType::Clear, now - 15s),  rec("web", EventType::Outage, now - 5s),
      rec("ops", EventType::Outage, now + 3600s)};
  CU_ASSERT((xmatters::recovered_sends(recovered, "ops", EventType::Outage, 3, now) ==
             std::vector<TimePointT>{now - 20s, now - 10s, now}));
  CU_ASSERT((xmatters::recovered_sends(recovered, "ops", EventType::Clear, 3, now) == std::vector<TimePointT>{now - 15s}));
  CU_ASSERT(xmatters::recovered_sends(recovered, "ops", EventType::Outage, 0, now).empty());
  // What compaction writes: the last FloodLimit sends of each type in the minute.
  xmatters::FloodBudget budget("ops", 2);
  const Steady::time_point steady = Steady::time_point{} + 1000h;
  for (const auto ago : {90s, 40s, 30s, 20s}) budget.sent(xmatters::FloodRequest::Page, steady - ago, now - ago);
  budget.sent(xmatters::FloodRequest::Clear, steady - 70s, now - 70s);
  std::vector<std::string> written;
  budget.snapshot(now, [&](std::string_view r) { written.emplace_back(r); });
  CU_ASSERT((xmatters::recovered_sends(written, "ops", EventType::Outage, 2, now) == std::vector<TimePointT>{now - 30s, now - 20s}));
  CU_ASSERT_EQUAL(written.size(), 2u);
  xmatters::FloodBudget none("ops", 0);
  none.sent(xmatters::FloodRequest::Page, steady, now);
  written.clear();
  none.snapshot(now, [&](std::string_view r) { written.emplace_back(r); });
  CU_ASSERT(written.empty());
}

// Issue 21 bug 4: FloodLimit's minute survives a restart, and a compaction.
// FloodLimit 3: two pages (the minute's third outage request is kept for
// the flood outage's page) and a clear sent, then a restart: the minute is
// used as before it (2 and 1), so a third page waits instead of leaving;
// after the first run's segment is compacted away, a second restart still
// finds the minute (the compaction wrote it).
void test_flood_minute_survives_restart() {
  World w;
  w.ops().flood_limit = 3;
  {
    Delivery& d = w.open();
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-min-1", 1)));
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-min-2", 1)));
    CU_ASSERT(d.submit(make_event(EventType::Clear, "o-min-1", 2)));
    CU_ASSERT_FATAL(w.standin->wait_for_accepted(3, kWait));
    w.delivery.reset();
  }
  const auto used = [&](Delivery& d) {
    const auto st = d.status();
    return std::make_pair(st.at(0).flood_used_outage, st.at(0).flood_used_clear);
  };
  {
    Delivery& d = w.open();
    CU_ASSERT((used(d) == std::pair<std::size_t, std::size_t>{2, 1}));
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-min-3", 1)));
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 1; }, kWait));
    // The first run's segment goes (its events were delivered) ...
    CU_ASSERT_FATAL(xmtest::wait_until([&] {
      for (const auto& entry : std::filesystem::directory_iterator(w.spool_dir()))
        if (entry.path().filename().string().rfind("spool-", 0) == 0 &&
            xmtest::read_file(entry.path().string()).find("o-min-2") != std::string::npos)
          return false;
      return true;
    }, kWait));
    CU_ASSERT_EQUAL(w.standin->request_count(), 3u);  // o-min-3 waits for the minute
    w.delivery.reset();
  }
  // ... and the minute is still there.
  Delivery& d = w.open(false);
  CU_ASSERT((used(d) == std::pair<std::size_t, std::size_t>{2, 1}));
}

// --- delivery and headers --------------------------------------------------------

void test_delivers_with_headers() {
  World w;
  w.ops().headers = {"X-Source: collectd"};
  Delivery& d = w.open();
  const Event outage = make_event(EventType::Outage, "o-1", 1);
  const Event clear = make_event(EventType::Clear, "o-1", 2);
  CU_ASSERT(d.submit(outage));
  CU_ASSERT(d.submit(clear));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));

  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 2u);
  const RecordedRequest& r = reqs[0];
  CU_ASSERT_EQUAL(r.method, "POST");
  CU_ASSERT_EQUAL(r.function_id, "outage-fn");
  CU_ASSERT_EQUAL(r.body, outage.body);
  CU_ASSERT_EQUAL(r.headers.at("content-type"), "application/json");
  CU_ASSERT_EQUAL(r.headers.at("user-agent"), "collectd-xmatters/" XMATTERS_VERSION);
  CU_ASSERT_EQUAL(r.headers.at("idempotency-key"), outage.event_id);
  CU_ASSERT_EQUAL(r.headers.count("x-source"), 1u);
  if (r.headers.count("x-source") != 0) CU_ASSERT_EQUAL(r.headers.at("x-source"), "collectd");
  CU_ASSERT_EQUAL(r.headers.count("expect"), 0u);
  CU_ASSERT_EQUAL(reqs[1].function_id, "clear-fn");  // clears go to ClearURL
  CU_ASSERT_EQUAL(reqs[1].headers.at("idempotency-key"), clear.event_id);

  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
  const double latency = d.take_mean_latency("ops");
  const auto s = d.stats("ops");
  CU_ASSERT_EQUAL(s.delivered, 2u);
  CU_ASSERT_EQUAL(s.retried, 0u);
  CU_ASSERT_EQUAL(s.dead_lettered, 0u);
  CU_ASSERT(latency > 0);
  CU_ASSERT_EQUAL(d.take_mean_latency("ops"), 0.0);  // a new window since the previous call
  // Logged just after the counters change: each at INFO, with the event
  // type, the outage_id, the status and xMatters' requestId.
  CU_ASSERT(xmtest::wait_until([&] { return w.log.count(LogLevel::Info, "delivered") == 2; }));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Debug, "delivered"), 0u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "HTTP 202, requestId "), 2u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "requestId none"), 0u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "outage event " + outage.event_id + " of outage o-1"), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "clear event " + clear.event_id + " of outage o-1"), 1u);

  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());  // acknowledged
}

void test_connections_kept_alive() {
  World w;
  w.ops().connections = 1;
  Delivery& d = w.open();
  for (int i = 0; i < 10; ++i) CU_ASSERT(d.submit(make_event(EventType::Outage, "o-ka-" + std::to_string(i))));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(10, kWait));
  CU_ASSERT_EQUAL(w.standin->connection_count(), 1u);
}

// --- retries -------------------------------------------------------------------

// The sum of the counts that lines holding `needle` start with ("N more
// ..."), or that follow "(and " in them.
std::size_t counted_in(const xmtest::CapturingLogger& log, LogLevel level, const std::string& needle) {
  std::size_t sum = 0;
  for (const auto& e : log.entries()) {
    if (e.level != level || e.message.find(needle) == std::string::npos) continue;
    const std::size_t colon = e.message.find(": ");
    const std::size_t and_pos = e.message.find("(and ");
    if (and_pos != std::string::npos)
      sum += std::stoul(e.message.substr(and_pos + 5));
    else if (colon != std::string::npos && std::isdigit(static_cast<unsigned char>(e.message[colon + 2])))
      sum += std::stoul(e.message.substr(colon + 2));
  }
  return sum;
}

// Each delivery is one INFO line, but at most delivered_info_lines per
// window and integration; the others are at debug, counted in one summary
// line per window: every delivery is in exactly one line at INFO, its own
// or a summary's count.
void test_deliveries_logged_at_info_at_most_n_a_window() {
  World w;
  w.use_test_clock();  // the window: a minute
  w.ops().connections = 1;
  w.options.delivered_info_lines = 3;
  Delivery& d = w.open();
  const std::size_t n = 20;
  for (std::size_t i = 0; i < n; ++i) CU_ASSERT(d.submit(make_event(EventType::Outage, "o-log-" + std::to_string(i))));
  // (A delivery's line is written just after it is counted.)
  XM_REQUIRE(xmtest::wait_until([&] { return w.log.count(LogLevel::Debug, "delivered outage event") == n - 3; }, kWait));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "delivered outage event"), 3u);
  // The summary only once the window has passed.
  let_threads_run();
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "more event(s) delivered in the minute"), 0u);
  w.advance(std::chrono::minutes(1) - 1ms);
  let_threads_run();
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "more event(s) delivered in the minute"), 0u);
  w.advance(1ms);
  XM_REQUIRE(xmtest::wait_until(
      [&] { return w.log.count(LogLevel::Info, "more event(s) delivered in the minute") == 1; }, kWait));
  CU_ASSERT(w.log.contains(LogLevel::Info, "17 more event(s) delivered in the minute since the first 3 (17 outage, 0 clear)"));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Info, "delivered outage event"), 3u);
}

void test_retries_500_then_success() {
  World w;
  Standin::Reply fail;
  fail.status = 500;
  w.standin->script({fail});
  Delivery& d = w.open();
  const Event e = make_event(EventType::Outage, "o-500");
  CU_ASSERT(d.submit(e));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 2u);
  CU_ASSERT_EQUAL(reqs[0].status, 500);
  CU_ASSERT_EQUAL(reqs[1].headers.at("idempotency-key"), e.event_id);  // same key on the retry
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }));
  CU_ASSERT_EQUAL(d.stats("ops").retried, 1u);
  CU_ASSERT(xmtest::wait_until([&] { return w.log.contains(LogLevel::Warning, "HTTP 500"); }));
  CU_ASSERT(w.dead_letters().empty());
}

void test_retries_dropped_connection() {
  World w;
  Standin::Reply drop;
  drop.drop = true;
  w.standin->script({drop, drop});
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-drop")));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  CU_ASSERT_EQUAL(w.standin->request_count(), 3u);
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }));
  CU_ASSERT_EQUAL(d.stats("ops").retried, 2u);
}

// Retry-After, in seconds or as an HTTP date, is when the retry goes: not
// a moment sooner (the backoff alone would retry within 10 ms here).
void test_honours_retry_after() {
  for (const bool as_date : {false, true}) {
    World w;
    w.use_test_clock();
    Standin::Reply busy;
    busy.status = 429;
    busy.retry_after = as_date ? http_date(w.clock.wall() + 30s) : "30";
    w.standin->script({busy});
    w.options.max_backoff = std::chrono::minutes(5);  // the ceiling, above the Retry-After
    Delivery& d = w.open();
    CU_ASSERT(d.submit(w.event_now(EventType::Outage, "o-429")));
    XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == 1; }, kWait));
    const auto in = w.next_attempt_in("o-429");
    XM_REQUIRE(in.has_value());
    CU_ASSERT(*in == 30s);
    w.advance(30s - 1ms);
    let_threads_run();
    CU_ASSERT_EQUAL(w.standin->request_count(), 1u);
    w.advance(1ms);
    XM_REQUIRE(w.standin->wait_for_accepted(1, kWait));
    CU_ASSERT_EQUAL(w.standin->request_count(), 2u);
  }
}

// A Retry-After of years, or of an hour, pauses the integration for the
// backoff ceiling at most (1.5 s here), with one WARNING a minute saying
// so; other outages wait with it.
void test_retry_after_bounded_by_ceiling() {
  for (const char* value : {"99999999999", "3600", "Fri, 31 Dec 2100 23:59:59 GMT"}) {
    World w;
    w.use_test_clock();
    w.ops().connections = 1;  // o-other's request is the second
    w.options.max_backoff = 1500ms;
    Standin::Reply busy;
    busy.status = 429;
    busy.retry_after = value;
    w.standin->script({busy, busy});
    Delivery& d = w.open();
    CU_ASSERT(d.submit(w.event_now(EventType::Outage, "o-429")));
    XM_REQUIRE(xmtest::wait_until([&] { return w.log.count(LogLevel::Warning, "Retry-After asks to wait") == 1; }));
    const auto in = w.next_attempt_in("o-429");
    XM_REQUIRE(in.has_value());
    CU_ASSERT(*in == 1500ms);
    // Once the reply has paused the lane, another outage waits too.
    CU_ASSERT(d.submit(w.event_now(EventType::Outage, "o-other")));
    w.advance(1499ms);
    let_threads_run();
    CU_ASSERT_EQUAL(w.standin->request_count(), 1u);
    // o-other goes first (it was due first), is refused likewise: the lane
    // pauses again, without another WARNING within the minute.
    w.advance(1ms);
    XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == 2; }, kWait));
    let_threads_run();
    CU_ASSERT_EQUAL(w.standin->request_count(), 2u);
    w.advance(1500ms);
    XM_REQUIRE(w.standin->wait_for_accepted(2, kWait));
    CU_ASSERT_EQUAL(w.standin->request_count(), 4u);
    CU_ASSERT_EQUAL(w.log.count(LogLevel::Warning, "Retry-After asks to wait"), 1u);
    CU_ASSERT_EQUAL(w.log.count(LogLevel::Warning, "delivery paused for 1.50 s"), 1u);
  }
}

// A failing event is retried after about initial_backoff, doubling with
// each failure up to max_backoff, each delay between half and all of its
// step (the jitter).
void test_backoff_doubles_to_its_ceiling() {
  World w;
  w.use_test_clock();
  w.ops().connections = 1;
  w.options.initial_backoff = 1s;
  w.options.max_backoff = 8s;
  w.standin->set_default_reply(reply_with(503));
  Delivery& d = w.open();
  CU_ASSERT(d.submit(w.event_now(EventType::Outage, "o-backoff")));
  std::chrono::milliseconds step = 1s;
  for (std::uint64_t failures = 1; failures <= 6; ++failures) {
    XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == failures; }, kWait));
    const auto in = w.next_attempt_in("o-backoff");
    XM_REQUIRE(in.has_value());
    CU_ASSERT(*in >= step / 2 && *in <= step);
    if (failures == 1) {  // not a moment sooner
      w.advance(*in - 1ms);
      let_threads_run();
      CU_ASSERT_EQUAL(w.standin->request_count(), 1u);
      w.advance(1ms);
    } else {
      w.advance(*in);
    }
    step = std::min<std::chrono::milliseconds>(step * 2, 8s);
  }
  XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == 7; }, kWait));
  CU_ASSERT_EQUAL(w.standin->request_count(), 7u);
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
}

// --- dead letters -----------------------------------------------------------------

void test_unwritable_dead_letter_file_keeps_the_order() {
  World w;
  Delivery& d = open_refusing(w, false);
  // A directory where the file should be: every append to it fails.
  const std::string path = w.dead_letter_path();
  CU_ASSERT_EQUAL_FATAL(::mkdir(path.c_str(), 0700), 0);
  d.start();
  const Event outage = make_event(EventType::Outage, "o-dl", 1);
  const Event clear = make_event(EventType::Clear, "o-dl", 2);
  CU_ASSERT(d.submit(outage));
  CU_ASSERT(d.submit(clear));
  // The outage event cannot be put aside, so its clear must wait.
  CU_ASSERT(xmtest::wait_until([&] { return w.log.count(LogLevel::Error, "cannot be written") >= 2; }, kWait));
  for (const auto& r : w.standin->requests()) CU_ASSERT_EQUAL(r.function_id, "outage-fn");
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  // Room again: the outage event is dead-lettered, then its clear (a 400
  // too) after it.
  CU_ASSERT_EQUAL_FATAL(::rmdir(path.c_str()), 0);
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 2; }, kWait));
  const auto lines = json_lines(w.dead_letters());
  CU_ASSERT_EQUAL_FATAL(lines.size(), 2u);
  CU_ASSERT_EQUAL(xmtest::json_string_member(lines[0].get(), "event_id"), outage.event_id);
  CU_ASSERT_EQUAL(xmtest::json_string_member(lines[1].get(), "event_id"), clear.event_id);
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL(reqs.back().function_id, "clear-fn");
  std::size_t clears = 0;
  for (const auto& r : reqs) clears += r.function_id == "clear-fn" ? 1 : 0;
  CU_ASSERT_EQUAL(clears, 1u);
}

// Issue 22: a letter is synced before its event leaves the spool, and one
// that cannot be synced is not written. dead-letter.jsonl is a FIFO (the
// test holds it open for reading): the line goes into the pipe, but
// fdatasync fails (EINVAL). The event stays in the spool with the ERROR of a
// letter that cannot be written, and is dead-lettered once the file can be
// synced again.
void test_unsynced_dead_letter_keeps_the_event() {
  World w;
  Delivery& d = open_refusing(w, false);
  const std::string path = w.dead_letter_path();
  CU_ASSERT_EQUAL_FATAL(::mkfifo(path.c_str(), 0600), 0);
  const int fifo = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);  // a reader: the plugin's open does not wait
  CU_ASSERT_FATAL(fifo >= 0);
  d.start();
  const Event outage = make_event(EventType::Outage, "o-unsynced", 1);
  CU_ASSERT(d.submit(outage));
  CU_ASSERT(xmtest::wait_until([&] { return w.log.count(LogLevel::Error, "cannot be written") >= 1; }, kWait));
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  char line[1 << 16];
  CU_ASSERT(::read(fifo, line, sizeof line) > 0);  // written, not synced
  CU_ASSERT_EQUAL_FATAL(::unlink(path.c_str()), 0);
  ::close(fifo);
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  const auto lines = json_lines(w.dead_letters());
  CU_ASSERT_EQUAL_FATAL(lines.size(), 1u);
  CU_ASSERT_EQUAL(xmtest::json_string_member(lines[0].get(), "event_id"), outage.event_id);
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
}

// Issue 11 item 7: a symbolic link planted as dead-letter.jsonl is not
// followed: its target stays as it was, one ERROR says the file cannot be
// written, and the event stays queued and goes on its next try.
void test_dead_letter_symlink_not_followed() {
  World w;
  w.standin->script({reply_with(400)});
  Delivery& d = w.open(false);
  const std::string target = w.dir / "target";
  xmtest::write_file(target, "not the plugin's\n");
  const std::string path = w.dead_letter_path();
  CU_ASSERT_EQUAL_FATAL(::symlink(target.c_str(), path.c_str()), 0);
  d.start();
  const Event outage = make_event(EventType::Outage, "o-link", 1);
  CU_ASSERT(d.submit(outage));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }, kWait));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 2u);
  CU_ASSERT_EQUAL(reqs[0].status, 400);
  CU_ASSERT_EQUAL(reqs[1].status, 202);
  CU_ASSERT_EQUAL(body_member(reqs[1], "event_id"), outage.event_id);
  CU_ASSERT_EQUAL(xmtest::read_file(target), "not the plugin's\n");
  struct stat st {};
  CU_ASSERT(::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "dead-letter.jsonl cannot be written"), 1u);
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
}

void test_400_dead_lettered_and_clear_still_sent() {
  World w;
  w.standin->script({reply_with(400)});
  Delivery& d = w.open();
  const Event outage = make_event(EventType::Outage, "o-400", 1);
  const Event clear = make_event(EventType::Clear, "o-400", 2);
  CU_ASSERT(d.submit(outage));
  CU_ASSERT(d.submit(clear));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  // A retry of the outage event would have come before its clear.
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 2u);
  CU_ASSERT_EQUAL(reqs[0].status, 400);
  CU_ASSERT_EQUAL(reqs[1].function_id, "clear-fn");
  CU_ASSERT_EQUAL(reqs[1].status, 202);

  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }));
  const auto s = d.stats("ops");
  CU_ASSERT_EQUAL(s.dead_lettered, 1u);
  CU_ASSERT_EQUAL(s.retried, 0u);
  CU_ASSERT(xmtest::wait_until([&] { return w.log.count(LogLevel::Error) > 0; }));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "integration ops"), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "400"), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "o-400"), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, outage.event_id), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "Bad Request"), 1u);  // the start of the reply

  const std::string path = w.dead_letter_path();
  struct stat st {};
  CU_ASSERT_EQUAL_FATAL(stat(path.c_str(), &st), 0);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  // The letter, then the mark that its outage has cleared since.
  CU_ASSERT(xmtest::wait_until([&] { return json_lines(w.dead_letters()).size() == 2; }));
  const auto lines = json_lines(w.dead_letters());
  CU_ASSERT_EQUAL_FATAL(lines.size(), 2u);
  CU_ASSERT_PTR_NOT_NULL_FATAL(lines[0].get());
  CU_ASSERT_PTR_NOT_NULL_FATAL(lines[1].get());
  const json_t* mark = json_object_get(lines[1].get(), "cleared_by");
  CU_ASSERT_EQUAL(xmtest::json_string_member(mark, "event_id"), clear.event_id);
  CU_ASSERT_EQUAL(xmtest::json_string_member(lines[1].get(), "outage_id"), "o-400");
  const auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL(read.damaged, 0u);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.event_id, outage.event_id);
  CU_ASSERT_EQUAL(read.letters[0].event.body, outage.body);
  CU_ASSERT_EQUAL(read.letters[0].status, 400);
  CU_ASSERT_FATAL(read.letters[0].cleared_by.has_value());
  CU_ASSERT_EQUAL(read.letters[0].cleared_by->event_id, clear.event_id);
  CU_ASSERT_EQUAL(read.letters[0].cleared_by->body, clear.body);
  const json_t* j = lines[0].get();
  CU_ASSERT_EQUAL(xmtest::json_string_member(j, "event_id"), outage.event_id);
  CU_ASSERT_EQUAL(xmtest::json_string_member(j, "outage_id"), "o-400");
  CU_ASSERT_EQUAL(xmtest::json_string_member(j, "integration"), "ops");
  CU_ASSERT_EQUAL(xmtest::json_string_member(j, "event_type"), "outage");
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "status")), 400);
  CU_ASSERT(xmtest::json_string_member(j, "reason").find("400") != std::string::npos);
  CU_ASSERT(xmtest::json_string_member(j, "reply").find("Bad Request") != std::string::npos);
  const std::string url = xmtest::json_string_member(j, "url");
  CU_ASSERT(url.find("apiKey=***") != std::string::npos);
  CU_ASSERT(url.find("test-key") == std::string::npos);
  CU_ASSERT(json_is_object(json_object_get(j, "body")));
  CU_ASSERT_EQUAL(xmtest::json_string_member(json_object_get(j, "body"), "event_id"), outage.event_id);

  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());  // the dead letter is acknowledged too
}

// Queued events wait without their bodies, which are read back from the
// spool when sent: a record damaged on disk meanwhile is dead-lettered (no
// wrong body is ever sent), and the outage's clear still goes.
void test_damaged_spool_record_dead_lettered() {
  World w;
  Delivery& d = w.open(false);
  const Event outage = make_event(EventType::Outage, "o-damaged", 1);
  const Event clear = make_event(EventType::Clear, "o-damaged", 2);
  CU_ASSERT(d.submit(outage));
  CU_ASSERT(d.submit(clear));
  const std::string segment = newest_segment(w.spool_dir());
  std::string data = xmtest::read_file(segment);
  const std::size_t at = data.find("\"seq\":1");
  CU_ASSERT_FATAL(at != std::string::npos);
  data[at + 6] = '7';
  xmtest::write_file(segment, data);
  d.start();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 1u);
  CU_ASSERT_EQUAL(reqs[0].function_id, "clear-fn");
  CU_ASSERT_EQUAL(body_seq(reqs[0]), 2);
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, outage.event_id), 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "damaged"), 1u);
  // The letter, then the mark that its outage's clear was delivered after
  // it (written once that clear's reply is in: waited for, not raced).
  CU_ASSERT(xmtest::wait_until([&] { return json_lines(w.dead_letters()).size() == 2; }));
  const auto lines = json_lines(w.dead_letters());
  CU_ASSERT_EQUAL_FATAL(lines.size(), 2u);
  CU_ASSERT_EQUAL(xmtest::json_string_member(lines[0].get(), "event_id"), outage.event_id);
  CU_ASSERT(xmtest::json_string_member(lines[0].get(), "reason").find("damaged") != std::string::npos);
  CU_ASSERT_PTR_NOT_NULL(json_object_get(lines[1].get(), "cleared_by"));
}

std::uintmax_t spool_bytes(const std::string& dir) {
  std::uintmax_t total = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      struct stat st {};
      if (name.rfind("spool-", 0) == 0 && ::stat((dir + "/" + name).c_str(), &st) == 0) total += st.st_size;
    }
    closedir(d);
  }
  return total;
}

// Delivered events leave the spool: the flush tick deletes and compacts
// what is acknowledged, so a spool that held megabytes shrinks.
void test_spool_shrinks_after_delivery() {
  World w;
  Delivery& d = w.open(false);
  const std::string padding(1000, 'p');
  const int kEvents = 5000;  // more than a 4 MiB segment
  for (int i = 0; i < kEvents; ++i) {
    Event e = make_event(EventType::Outage, "o-shrink-" + std::to_string(i));
    e.body.insert(e.body.size() - 1, ",\"padding\":\"" + padding + "\"");
    CU_ASSERT_FATAL(d.submit(std::move(e)));
  }
  CU_ASSERT(spool_bytes(w.spool_dir()) > 5000000u);
  d.start();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(kEvents, kWait));
  // What may stay: the active segment with the acknowledgements (45 bytes
  // each), until it fills and goes too.
  CU_ASSERT(xmtest::wait_until([&] { return spool_bytes(w.spool_dir()) < (1u << 20); }, kWait));
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
}

// The outage changes in the spool come back at the next start in log
// order: those that events carry and those recorded on their own; once a
// compaction ran, only the outage table it wrote (the snapshot source's).
void test_changes_recovered_in_log_order() {
  World w;
  w.standin->stop();
  const std::string own = sf::RecordBuilder(sf::RecordType::OutageClose, 3).finish();
  std::string table = sf::RecordBuilder(sf::RecordType::OutageSet, 0).finish();
  {
    Delivery& d = w.open(false);
    CU_ASSERT(d.recovered_changes().empty());
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-left", 1)));
    d.record_change(own);
    CU_ASSERT(d.submit(make_event(EventType::Clear, "o-left", 2)));
  }
  w.delivery.reset();
  {
    Delivery& d = w.open(false);
    CU_ASSERT(d.recovered_changes() == (std::vector<std::string>{"change o-left 1", own, "change o-left 2"}));
  }
  w.delivery.reset();
  // Delivered, then compacted: the changes give way to the table.
  w.standin = std::make_unique<Standin>();
  w.ops() = integration_for(*w.standin);
  Delivery& d = w.open(false);
  d.set_snapshot_source([&](auto write) { write(table); });
  d.start();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));
  CU_ASSERT(xmtest::wait_until([&] {
    for (const auto& entry : std::filesystem::directory_iterator(w.spool_dir()))
      if (entry.path().filename().string().rfind("spool-", 0) == 0 &&
          xmtest::read_file(entry.path().string()).find("change o-left") != std::string::npos)
        return false;
    return true;
  }, kWait));
  w.delivery.reset();
  Delivery& again = w.open(false);
  CU_ASSERT(again.recovered_changes() == std::vector<std::string>{table});
}

// Retried until RetryMaxAge, the last try at the deadline; then a dead
// letter.
void test_retry_max_age_dead_letters() {
  World w;
  w.use_test_clock();
  w.ops().retry_max_age = std::chrono::seconds(60);
  Standin::Reply down;
  down.status = 503;
  w.standin->set_default_reply(down);
  Delivery& d = w.open();
  const Event e = w.event_now(EventType::Outage, "o-old");
  CU_ASSERT(d.submit(e));
  XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == 1; }, kWait));
  w.advance(30s);  // past its backoff (100 ms at most), not its RetryMaxAge
  XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == 2; }, kWait));
  let_threads_run();
  CU_ASSERT_EQUAL(w.standin->request_count(), 2u);
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  const auto in = w.next_attempt_in("o-old");
  XM_REQUIRE(in.has_value());
  CU_ASSERT(*in <= 100ms);
  w.advance(30s);  // its RetryMaxAge reached: this try is the last
  XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  CU_ASSERT_EQUAL(w.standin->request_count(), 3u);
  CU_ASSERT(xmtest::wait_until([&] { return w.log.contains(LogLevel::Error, "RetryMaxAge"); }));
  const auto lines = json_lines(w.dead_letters());
  CU_ASSERT_EQUAL_FATAL(lines.size(), 1u);
  CU_ASSERT_PTR_NOT_NULL_FATAL(lines[0].get());
  CU_ASSERT(xmtest::json_string_member(lines[0].get(), "reason").find("RetryMaxAge") != std::string::npos);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(lines[0].get(), "status")), 503);

  // Already too old at its first failure: given up at once.
  const std::size_t before = w.standin->request_count();
  Event old = make_event(EventType::Outage, "o-older");
  old.created = Clock::now() - std::chrono::hours(2);
  CU_ASSERT(d.submit(old));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 2; }, kWait));
  CU_ASSERT_EQUAL(w.standin->request_count(), before + 1);
}

// --- availability and order ------------------------------------------------------

void test_endpoint_down_then_up() {
  World w;
  Delivery& d = w.open();
  // Kept-alive connections exist when it goes down.
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-before", 1)));
  // Delivered as the delivery sees it: the reply was read, so stopping now
  // cannot cut it off (which would make the event go again, rightly).
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }, kWait));
  w.standin->stop();
  w.standin->clear();
  for (int o = 0; o < 5; ++o) {
    const std::string id = "o-down-" + std::to_string(o);
    CU_ASSERT(d.submit(make_event(EventType::Outage, id, 1)));
    CU_ASSERT(d.submit(make_event(EventType::Clear, id, 2)));
  }
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").retried >= 3; }, kWait));
  CU_ASSERT(xmtest::wait_until([&] { return w.log.contains(LogLevel::Warning, "integration ops"); }));
  w.standin->restart();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(10, kWait));
  CU_ASSERT(in_order_per_outage(accepted(*w.standin), 10));
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
  CU_ASSERT(w.dead_letters().empty());
}

void test_per_outage_order_in_parallel() {
  World w;
  Standin::Reply slow;
  slow.delay = 30ms;
  w.standin->set_default_reply(slow);
  Delivery& d = w.open();
  const int outages = 24;
  // Interleaved like a real stream: outage, escalation, clear of each.
  for (int step = 0; step < 3; ++step)
    for (int o = 0; o < outages; ++o)
      CU_ASSERT(d.submit(make_event(step == 2 ? EventType::Clear : EventType::Outage, "o-par-" + std::to_string(o),
                                    step)));
  // Several connections are used at once...
  CU_ASSERT(xmtest::wait_until([&] { return w.standin->pending_count() >= 2; }, kWait));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }, kWait));
  // ...yet each outage's events arrived in order, the clear last (an
  // escalation replaces its outage's first page if that was still queued).
  CU_ASSERT(latest_page_then_clear(accepted(*w.standin), outages, 1));
}

// collectd's thread does not wake the delivery threads; an idle one looks
// for new events. One held by a slow request must not leave a new outage
// waiting while another connection is free.
void test_new_outage_not_held_behind_slow_request() {
  World w;
  w.ops().connections = 2;
  w.ops().timeout = 10000ms;
  Standin::Reply slow;
  slow.delay = 3000ms;
  w.standin->script({slow});
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-held")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return w.standin->pending_count() == 1; }, kWait));
  const auto submitted = std::chrono::steady_clock::now();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-next")));
  CU_ASSERT(w.standin->wait_for_accepted(1, 2500ms));
  CU_ASSERT_EQUAL(w.standin->pending_count(), 1u);  // the slow one still in flight
  CU_ASSERT(std::chrono::steady_clock::now() - submitted < 2500ms);
  CU_ASSERT(w.standin->wait_for_accepted(2, kWait));
}

void test_slow_endpoint_does_not_slow_submit() {
  World w;
  w.ops().timeout = 10000ms;
  Standin::Reply slow;
  slow.delay = 1500ms;
  w.standin->set_default_reply(slow);
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-slow-0")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return w.standin->pending_count() == 1; }, kWait));
  // The stand-in holds the request; submitting goes on regardless.
  for (int i = 1; i <= 20; ++i) CU_ASSERT(d.submit(make_event(EventType::Outage, "o-slow-" + std::to_string(i))));
  CU_ASSERT_EQUAL(w.standin->accepted_count(), 0u);
  w.standin->set_default_reply({});
  CU_ASSERT(w.standin->wait_for_accepted(21, kWait));
}

// --- TLS, authentication, proxies --------------------------------------------------

struct Certificates {
  xmtest::TempDir dir;
  bool ok = xmtest::make_test_certificates(dir.path());
};

xmtest::StandinOptions tls_options(const Certificates& c) {
  xmtest::StandinOptions so;
  so.tls_cert_file = c.dir / "server.pem";
  so.tls_key_file = c.dir / "server.key";
  return so;
}

void test_tls_with_right_ca() {
  Certificates certs;
  CU_ASSERT_FATAL(certs.ok);
  World w(tls_options(certs));
  CU_ASSERT(w.ops().outage_url.rfind("https://", 0) == 0);
  w.ops().ca_cert = certs.dir / "ca.pem";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-tls")));
  CU_ASSERT(w.standin->wait_for_accepted(1, kWait));
}

void test_tls_with_wrong_ca() {
  Certificates certs, other;
  CU_ASSERT_FATAL(certs.ok && other.ok);
  World w(tls_options(certs));
  w.ops().ca_cert = other.dir / "ca.pem";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-badtls")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").retried >= 1; }, kWait));
  CU_ASSERT(xmtest::wait_until([&] { return w.log.contains(LogLevel::Warning, "certificate"); }));
  CU_ASSERT_EQUAL(w.standin->accepted_count(), 0u);
  CU_ASSERT_EQUAL(d.stats("ops").delivered, 0u);
}

void test_tls_without_verification() {
  Certificates certs, other;
  CU_ASSERT_FATAL(certs.ok && other.ok);
  World w(tls_options(certs));
  w.ops().ca_cert = other.dir / "ca.pem";
  w.ops().verify_peer = false;
  w.ops().verify_host = false;
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-noverify")));
  CU_ASSERT(w.standin->wait_for_accepted(1, kWait));
}

// ClientCert / ClientKey (collectd-xmatters(5) OPTIONS): a stand-in that, like a gateway
// doing client authentication, takes only clients whose certificate its CA
// signed.
struct ClientCertificates {
  Certificates certs;
  bool ok = certs.ok && xmtest::make_client_certificate(certs.dir.path());
};

xmtest::StandinOptions mutual_tls_options(const Certificates& c) {
  xmtest::StandinOptions so = tls_options(c);
  so.tls_client_ca_file = c.dir / "ca.pem";
  return so;
}

void test_tls_client_certificate() {
  ClientCertificates client;
  CU_ASSERT_FATAL(client.ok);
  World w(mutual_tls_options(client.certs));
  w.ops().ca_cert = client.certs.dir / "ca.pem";
  w.ops().client_cert = client.certs.dir / "client.pem";
  w.ops().client_key = client.certs.dir / "client.key";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-mtls")));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 1u);
  CU_ASSERT(reqs[0].client_certificate);
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }, kWait));
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
}

// The stand-in answers 403 to a request without a certificate its CA
// signed: the integration pauses (collectd-xmatters(5) DELIVERY), its event
// stays queued, one ERROR gives the reason; nothing is dead-lettered.
void expect_refused_for_client_certificate(World& w, Delivery& d) {
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return w.log.contains(LogLevel::Error, "paused"); }, kWait));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 1u);  // the next request only a minute later
  CU_ASSERT_EQUAL(reqs[0].status, 403);
  CU_ASSERT_FALSE(reqs[0].client_certificate);
  CU_ASSERT_EQUAL(w.standin->accepted_count(), 0u);
  const auto s = d.stats("ops");
  CU_ASSERT_EQUAL(s.delivered, 0u);
  CU_ASSERT_EQUAL(s.dead_lettered, 0u);
  CU_ASSERT_EQUAL(s.queue_length, 1u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error), 1u);
  CU_ASSERT(w.log.contains(LogLevel::Error, "403"));
  CU_ASSERT(w.log.contains(LogLevel::Error, "client certificate required"));
  CU_ASSERT(w.dead_letters().empty());
  const auto status = d.status();
  CU_ASSERT_EQUAL_FATAL(status.size(), 1u);
  CU_ASSERT(status[0].paused == 403L);
}

void test_tls_client_certificate_missing() {
  ClientCertificates client;
  CU_ASSERT_FATAL(client.ok);
  World w(mutual_tls_options(client.certs));
  w.ops().ca_cert = client.certs.dir / "ca.pem";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-mtls-none")));
  expect_refused_for_client_certificate(w, d);
}

void test_tls_client_certificate_of_other_ca() {
  ClientCertificates client, stranger;
  CU_ASSERT_FATAL(client.ok && stranger.ok);
  World w(mutual_tls_options(client.certs));
  w.ops().ca_cert = client.certs.dir / "ca.pem";
  w.ops().client_cert = stranger.certs.dir / "client.pem";
  w.ops().client_key = stranger.certs.dir / "client.key";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-mtls-stranger")));
  expect_refused_for_client_certificate(w, d);
}

xmtest::StandinOptions basic_auth_options() {
  xmtest::StandinOptions so;
  so.user = "panopta";
  so.password = "s3cret-Pass";
  return so;
}

void test_basic_auth() {
  World w(basic_auth_options());
  w.ops().outage_url = w.standin->url("outage-fn", false);
  w.ops().clear_url = w.standin->url("clear-fn", false);
  w.ops().user = "panopta";
  w.ops().password = "s3cret-Pass";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-auth")));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  CU_ASSERT(w.standin->requests()[0].headers.at("authorization").rfind("Basic ", 0) == 0);
}

void test_basic_auth_wrong_password_pauses() {
  World w(basic_auth_options());
  w.ops().outage_url = w.standin->url("outage-fn", false);
  w.ops().clear_url = w.standin->url("clear-fn", false);
  w.ops().user = "panopta";
  w.ops().password = "wrong-Pass";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-401")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return w.log.contains(LogLevel::Error, "paused: HTTP 401"); }, kWait));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 1u);
  CU_ASSERT_EQUAL(reqs[0].status, 401);
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  CU_ASSERT_EQUAL(d.stats("ops").queue_length, 1u);
  CU_ASSERT(w.log.contains(LogLevel::Error, "1 event(s) waiting"));
  CU_ASSERT_FALSE(w.log.dump().find("wrong-Pass") != std::string::npos);
}

// --- paused integrations (401, 403, 404) ---------------------------------------------

// A revoked key: the integration pauses instead of dead-lettering; its
// events stay queued in order, one request per interval tries again (one
// ERROR each at most), and once the key works again everything goes, in
// order, nothing dead-lettered.
void test_401_pauses_then_resumes_in_order() {
  World w;
  w.use_test_clock();  // a probe a minute
  w.ops().connections = 1;
  w.standin->script({reply_with(401), reply_with(401), reply_with(401)});
  Delivery& d = w.open();
  for (int o = 0; o < 3; ++o) {
    const std::string id = "o-key-" + std::to_string(o);
    CU_ASSERT(d.submit(w.event_now(EventType::Outage, id, 1)));
    CU_ASSERT(d.submit(w.event_now(EventType::Clear, id, 2)));
  }
  XM_REQUIRE(xmtest::wait_until([&] { return d.status()[0].paused.has_value(); }, kWait));
  // Each probe waits for the interval, not a moment less; the clock moves
  // only once the last refusal is settled (the interval counts from then).
  for (std::uint64_t probe = 2; probe <= 4; ++probe) {
    w.advance(59999ms);
    let_threads_run();
    CU_ASSERT_EQUAL(w.standin->request_count(), probe - 1);
    w.advance(1ms);
    if (probe < 4) XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").retried == probe; }, kWait));
  }
  XM_REQUIRE(w.standin->wait_for_accepted(6, kWait));
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL(reqs.size(), 9u);  // 3 refused, each a probe, then the 6
  CU_ASSERT(in_order_per_outage(accepted(*w.standin), 6));
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  CU_ASSERT(w.dead_letters().empty());
  const std::size_t errors = w.log.count(LogLevel::Error);
  CU_ASSERT_EQUAL(errors, 3u);  // one a probe, a minute apart
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "paused: HTTP 401"), errors);
  CU_ASSERT(w.log.contains(LogLevel::Error, "apiKey=***"));
  CU_ASSERT(w.log.contains(LogLevel::Error, "6 event(s) waiting"));
  CU_ASSERT_FALSE(w.log.dump().find("test-key") != std::string::npos);
  CU_ASSERT(xmtest::wait_until([&] { return w.log.contains(LogLevel::Notice, "accepted again (HTTP 202)"); }));
  CU_ASSERT_FALSE(d.status()[0].paused.has_value());
}

// RetryMaxAge still applies while paused: an event too old is dead-lettered
// without a request of its own, with the status that paused the integration.
void test_paused_events_expire_by_retry_max_age() {
  World w;
  w.use_test_clock();  // the pause's probe and expiry sweep: each a minute
  w.ops().retry_max_age = std::chrono::seconds(60);
  w.standin->set_default_reply(reply_with(404));
  Delivery& d = w.open();
  const Event e = w.event_now(EventType::Outage, "o-expire", 1);
  CU_ASSERT(d.submit(e));
  XM_REQUIRE(xmtest::wait_until([&] { return d.status()[0].paused.has_value(); }, kWait));
  let_threads_run();  // its first look for expired events, at once, before the clock moves
  w.advance(59999ms);
  let_threads_run();
  CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
  w.advance(1ms);
  XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  CU_ASSERT_EQUAL(w.standin->request_count(), 1u);  // expired without a request
  const auto read = xmatters::read_dead_letters(w.dead_letter_path());
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.event_id, e.event_id);
  CU_ASSERT_EQUAL(read.letters[0].status, 404);
  CU_ASSERT(read.letters[0].reason.find("RetryMaxAge") != std::string::npos);
  CU_ASSERT(read.letters[0].reason.find("HTTP 404") != std::string::npos);
  CU_ASSERT(read.letters[0].url.find("apiKey=***") != std::string::npos);
  CU_ASSERT_EQUAL(d.stats("ops").queue_length, 0u);
}

// --- the operator's view: status, queue ---------------------------------------------

void test_status_and_queue_snapshots() {
  World w;
  w.ops().flood_limit = 5;
  Delivery& d = w.open();
  const Event first = make_event(EventType::Outage, "o-seen", 1);
  CU_ASSERT(d.submit(first));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").delivered == 1; }, kWait));
  auto st = d.status();
  CU_ASSERT_EQUAL_FATAL(st.size(), 1u);
  CU_ASSERT_EQUAL(st[0].name, "ops");
  CU_ASSERT_EQUAL(st[0].queued, 0u);
  CU_ASSERT_FALSE(st[0].oldest_queued.has_value());
  CU_ASSERT_FATAL(st[0].last_delivery.has_value());
  CU_ASSERT_EQUAL(st[0].last_delivery->status, 202);
  CU_ASSERT_EQUAL(st[0].last_delivery->outage_id, "o-seen");
  CU_ASSERT(st[0].last_delivery->type == EventType::Outage);
  CU_ASSERT_FALSE(st[0].last_delivery->request_id.empty());
  CU_ASSERT_FALSE(st[0].last_failure.has_value());
  CU_ASSERT_EQUAL(st[0].flood_limit, 5u);
  CU_ASSERT_EQUAL(st[0].flood_used_outage, 1u);
  CU_ASSERT_EQUAL(st[0].flood_used_clear, 0u);

  // xMatters down: the events wait, with their attempts and last error.
  w.standin->set_default_reply(reply_with(503));
  const Event page = make_event(EventType::Outage, "o-wait", 1);
  const Event clear = make_event(EventType::Clear, "o-wait", 2);
  CU_ASSERT(d.submit(page));
  CU_ASSERT(d.submit(clear));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").retried >= 1; }, kWait));
  const auto q = d.queue();
  CU_ASSERT_EQUAL_FATAL(q.size(), 2u);
  CU_ASSERT_EQUAL(q[0].event_id, page.event_id);
  CU_ASSERT_EQUAL(q[0].outage_id, "o-wait");
  CU_ASSERT_EQUAL(q[0].integration, "ops");
  CU_ASSERT(q[0].type == EventType::Outage);
  CU_ASSERT(q[0].attempts >= 1 || q[0].in_flight);
  CU_ASSERT(q[0].last_error.find("HTTP 503") != std::string::npos || q[0].in_flight);
  CU_ASSERT(q[0].created == page.created);
  CU_ASSERT_EQUAL(q[1].event_id, clear.event_id);
  CU_ASSERT(q[1].type == EventType::Clear);
  CU_ASSERT_EQUAL(q[1].attempts, 0);
  CU_ASSERT_FALSE(q[1].next_attempt.has_value());  // behind its outage's head
  st = d.status();
  CU_ASSERT_EQUAL(st[0].queued, 2u);
  CU_ASSERT(st[0].oldest_queued == page.created);
  CU_ASSERT_FATAL(st[0].last_failure.has_value());
  CU_ASSERT(st[0].last_failure->reason.find("HTTP 503") != std::string::npos);
  CU_ASSERT_FALSE(st[0].paused.has_value());
}

// --- test sends ----------------------------------------------------------------------

Event test_event(const std::string& outage_id, EventType type = EventType::Outage) {
  Event e = make_event(type, outage_id, 1);
  e.change.clear();
  return e;
}

// A test event goes through the spool and the lane to the stand-in, and
// its first answer (status, requestId) comes back; it leaves the spool.
void test_test_send_delivered() {
  World w;
  Delivery& d = w.open();
  const Event e = test_event("test-1");
  auto answer = d.test(e);
  CU_ASSERT_FATAL(answer.wait_for(kWait) == std::future_status::ready);
  const auto a = answer.get();
  CU_ASSERT(a.delivered);
  CU_ASSERT_EQUAL(a.status, 202);
  CU_ASSERT_FALSE(a.request_id.empty());
  CU_ASSERT(a.reason.empty());
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 1u);
  CU_ASSERT_EQUAL(reqs[0].body, e.body);
  CU_ASSERT_EQUAL(reqs[0].headers.at("idempotency-key"), e.event_id);
  CU_ASSERT(xmtest::wait_until([&] { return w.log.contains(LogLevel::Info, "delivered test outage event"); }));
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
}

// Refused, it reports the first answer and is neither retried nor
// dead-lettered; no secret in the reason.
void test_test_send_refused_not_retried() {
  for (int status : {400, 401, 503}) {
    World w;
    w.standin->set_default_reply(reply_with(status));
    Delivery& d = w.open();
    auto answer = d.test(test_event("test-refused"));
    CU_ASSERT_FATAL(answer.wait_for(kWait) == std::future_status::ready);
    const auto a = answer.get();
    CU_ASSERT_FALSE(a.delivered);
    CU_ASSERT_EQUAL(a.status, status);
    CU_ASSERT(a.reason.find("HTTP " + std::to_string(status)) != std::string::npos);
    CU_ASSERT(a.reason.find("test-key") == std::string::npos);
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
    CU_ASSERT_EQUAL(w.standin->request_count(), 1u);
    CU_ASSERT_EQUAL(d.stats("ops").dead_lettered, 0u);
    CU_ASSERT(w.dead_letters().empty());
    CU_ASSERT_FALSE(d.status()[0].paused.has_value());  // a test pauses nothing
    w.delivery.reset();
    CU_ASSERT(spooled(w.spool_dir()).empty());
  }
}

// A paused integration: the test goes first, at once; once accepted, the
// integration resumes and its queued events go.
void test_test_send_through_a_pause_resumes() {
  World w;
  w.standin->script({reply_with(401)});
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-queued", 1)));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.status()[0].paused.has_value(); }, kWait));
  auto answer = d.test(test_event("test-key-back"));
  CU_ASSERT_FATAL(answer.wait_for(kWait) == std::future_status::ready);
  CU_ASSERT(answer.get().delivered);
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));  // the queued one, well before the minute
  const auto reqs = w.standin->requests();
  CU_ASSERT_EQUAL_FATAL(reqs.size(), 3u);
  CU_ASSERT_EQUAL(body_member(reqs[1], "outage_id"), "test-key-back");
  CU_ASSERT_EQUAL(body_member(reqs[2], "outage_id"), "o-queued");
}

// Unknown integration: refused before anything is spooled.
void test_test_send_unknown_integration() {
  World w;
  Delivery& d = w.open();
  Event e = test_event("test-x");
  e.integration = "nope";
  bool thrown = false;
  try {
    d.test(e);
  } catch (const std::invalid_argument&) {
    thrown = true;
  }
  CU_ASSERT(thrown);
}

// --- resend --------------------------------------------------------------------------

// Three outage events refused with 400; the clear of one of them delivered
// afterwards. resend skips the cleared outage's letter by default, sends
// the others with their event_ids, and they leave the file; with
// include_cleared, the skipped one goes, then its clear again.
void test_resend_dead_letters() {
  World w;
  w.ops().connections = 1;
  w.standin->script({reply_with(400), reply_with(400), reply_with(400)});
  Delivery& d = w.open();
  std::vector<Event> pages;
  for (int o = 0; o < 3; ++o) {
    pages.push_back(make_event(EventType::Outage, "o-dl-" + std::to_string(o), 1));
    CU_ASSERT(d.submit(pages.back()));
  }
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 3; }, kWait));
  const Event clear = make_event(EventType::Clear, "o-dl-1", 2);
  CU_ASSERT(d.submit(clear));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  const std::string path = w.dead_letter_path();
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return json_lines(w.dead_letters()).size() == 4; }));

  auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 3u);
  CU_ASSERT_FALSE(read.letters[0].cleared_by.has_value());
  CU_ASSERT(read.letters[1].cleared_by.has_value());
  auto plan = xmatters::plan_resend(read.letters, false);
  CU_ASSERT_EQUAL_FATAL(plan.events.size(), 2u);
  CU_ASSERT_EQUAL_FATAL(plan.skipped.size(), 1u);
  CU_ASSERT_EQUAL(plan.skipped[0].event.event_id, pages[1].event_id);
  w.standin->clear();
  CU_ASSERT(d.resend(plan.events, plan.letters).rewritten);
  // Durable and out of the file when resend returns.
  read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.event_id, pages[1].event_id);
  struct stat st {};
  CU_ASSERT(::stat(path.c_str(), &st) == 0 && (st.st_mode & 0777) == 0600);
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));
  auto got = accepted(*w.standin);
  CU_ASSERT_EQUAL_FATAL(got.size(), 2u);
  CU_ASSERT_EQUAL(got[0].headers.at("idempotency-key"), pages[0].event_id);
  CU_ASSERT_EQUAL(got[0].body, pages[0].body);
  CU_ASSERT_EQUAL(got[1].headers.at("idempotency-key"), pages[2].event_id);

  // --include-cleared: the page, then its clear.
  plan = xmatters::plan_resend(read.letters, true);
  CU_ASSERT_EQUAL_FATAL(plan.events.size(), 2u);
  CU_ASSERT(plan.skipped.empty());
  w.standin->clear();
  CU_ASSERT(d.resend(plan.events, plan.letters).rewritten);
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));
  got = accepted(*w.standin);
  CU_ASSERT_EQUAL_FATAL(got.size(), 2u);
  CU_ASSERT_EQUAL(got[0].headers.at("idempotency-key"), pages[1].event_id);
  CU_ASSERT_EQUAL(got[1].headers.at("idempotency-key"), clear.event_id);
  CU_ASSERT_EQUAL(got[1].function_id, "clear-fn");
  CU_ASSERT(xmatters::read_dead_letters(path).letters.empty());
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
}

// A resent outage event goes before what its outage has queued since (its
// clear), though that was queued first.
void test_resend_goes_before_its_outage_queue() {
  World w;
  w.ops().connections = 1;
  w.standin->set_default_reply(reply_with(503));
  Delivery& d = w.open();
  const Event clear = make_event(EventType::Clear, "o-order", 2);
  CU_ASSERT(d.submit(clear));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").retried >= 1; }, kWait));
  Event page = make_event(EventType::Outage, "o-order", 1);
  const Delivery::Resent r = d.resend({page}, {page.event_id});
  CU_ASSERT(r.rewritten);
  w.standin->set_default_reply(Standin::Reply{});
  if (!r.skipped.empty()) {
    // The clear was in flight: the page would have gone after it, so it
    // was not queued.
    CU_ASSERT_EQUAL(r.skipped[0].event_id, page.event_id);
    CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
    const auto got = accepted(*w.standin);
    CU_ASSERT_EQUAL(got.size(), 1u);
    CU_ASSERT_EQUAL(got[0].headers.at("idempotency-key"), clear.event_id);
    return;
  }
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));
  const auto got = accepted(*w.standin);
  CU_ASSERT_EQUAL(got.size(), 2u);
  CU_ASSERT(in_order_per_outage(got, 2));
}

// The race of issue 22: the clear of a dead-lettered outage is delivered
// (and marked) after resend read the letters but before it queues them. The
// plan still has the outage event; resend, deciding with the marks held,
// does not queue it (it would page for a resolved outage that nothing
// clears): it is skipped, nothing more is sent, and its letter stays.
void test_resend_skips_outage_cleared_after_the_read() {
  World w;
  w.ops().connections = 1;
  w.standin->script({reply_with(400)});
  Delivery& d = w.open();
  const Event page = make_event(EventType::Outage, "o-race", 1);
  const Event other = make_event(EventType::Outage, "o-other", 1);
  CU_ASSERT(d.submit(page));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  const std::string path = w.dead_letter_path();
  auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  const auto plan = xmatters::plan_resend(read.letters, false);  // before the clear: not cleared
  CU_ASSERT_EQUAL_FATAL(plan.events.size(), 1u);

  const Event clear = make_event(EventType::Clear, "o-race", 2);
  CU_ASSERT(d.submit(clear));
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(1, kWait));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return json_lines(w.dead_letters()).size() == 2; }));  // the mark
  // The clear leaves the spool after its mark (collectd-xmatters(5) DELIVERY).
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));

  const Delivery::Resent r = d.resend(plan.events, plan.letters);
  CU_ASSERT(r.rewritten);
  CU_ASSERT_EQUAL_FATAL(r.skipped.size(), 1u);
  CU_ASSERT_EQUAL(r.skipped[0].event_id, page.event_id);
  CU_ASSERT_EQUAL(d.stats("ops").queue_length, 0u);  // never queued, out of the spool
  read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT(read.letters[0].cleared_by.has_value());
  CU_ASSERT_EQUAL(accepted(*w.standin).size(), 1u);  // the clear only

  // The decision itself: only the outage whose clear was marked.
  xmatters::DeadLetterFile file(w.dir / "other.jsonl");
  const std::string reason = "refused", none;
  CU_ASSERT(file.write({page, page.body, none, 1, 400, reason, none}).ok);
  CU_ASSERT(file.write({other, other.body, none, 1, 400, reason, none}).ok);
  {
    const xmatters::DeadLetterFile::MarksHeld marks(file);
    CU_ASSERT_FALSE(file.marked_cleared(page));
  }
  CU_ASSERT(file.mark_cleared(clear, "{}"));
  {
    const xmatters::DeadLetterFile::MarksHeld marks(file);
    CU_ASSERT(file.marked_cleared(page));
    CU_ASSERT_FALSE(file.marked_cleared(other));
  }
}

// --include-cleared in the moment between a clear's mark and its leaving
// the spool: the plan sends the outage event and that clear again, but the
// delivered clear is still in the spool under the same event_id, and its
// acknowledgement would take the resent one out (a kill then, and the
// resent page has no clear). The resend is refused, nothing changes. The
// moment is made by marking the letter while the clear waits (xMatters down).
void test_resend_with_clear_refused_while_the_clear_is_in_the_spool() {
  World w;
  w.ops().connections = 1;
  Delivery& d = open_refusing(w);
  const Event page = make_event(EventType::Outage, "o-window", 1);
  CU_ASSERT(d.submit(page));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  w.standin->stop();
  const Event clear = make_event(EventType::Clear, "o-window", 2);
  CU_ASSERT(d.submit(clear));
  {
    xmatters::DeadLetterFile file(w.dead_letter_path());
    file.load();  // the letter waiting for its clear
    CU_ASSERT_FATAL(file.mark_cleared(clear, "{}"));
  }
  const auto read = xmatters::read_dead_letters(w.dead_letter_path());
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  const auto plan = xmatters::plan_resend(read.letters, true);
  CU_ASSERT_EQUAL_FATAL(plan.events.size(), 2u);
  bool refused = false;
  try {
    d.resend(plan.events, plan.letters);
  } catch (const std::runtime_error& e) {
    refused = std::string(e.what()).find(clear.event_id) != std::string::npos;
  }
  CU_ASSERT(refused);
  CU_ASSERT_EQUAL(d.stats("ops").queue_length, 1u);  // the clear alone
  CU_ASSERT_EQUAL(xmatters::read_dead_letters(w.dead_letter_path()).letters.size(), 1u);  // kept
}

// Issue 22: a resent event refused again at once (400) writes a new letter,
// with the same event_id. The letters that left with the resend are taken
// out of the file as the events are queued, marks held: the new letter is
// written after that rewrite, never dropped by it. The hook holds the
// rewrite until the stand-in has refused the event again and, for a second
// at most, until its new letter is written (which it is not, when it waits
// for the rewrite).
void test_resend_refused_again_keeps_its_new_letter() {
  World w;
  w.ops().connections = 1;
  Delivery* delivery = nullptr;
  w.options.before_resend_rewrite = [&] {
    xmtest::wait_until([&] { return w.standin->requests().size() == 2; }, kWait);
    xmtest::wait_until([&] { return delivery->stats("ops").dead_lettered == 2; }, 1s);
  };
  Delivery& d = open_refusing(w);
  delivery = &d;
  const Event page = make_event(EventType::Outage, "o-again", 1);
  CU_ASSERT(d.submit(page));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  const std::string path = w.dead_letter_path();
  auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  const auto plan = xmatters::plan_resend(read.letters, false);
  CU_ASSERT(d.resend(plan.events, plan.letters).rewritten);
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 2; }, kWait));
  CU_ASSERT_EQUAL(w.standin->requests().size(), 2u);
  read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.event_id, page.event_id);
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
}

// A crash after the resent events were spooled but before their letters
// left the file: the next start removes the letters.
void test_resent_letters_removed_at_start() {
  World w;
  const Event e = make_event(EventType::Outage, "o-crash", 1);
  {
    xmatters::DeadLetterFile file(w.dead_letter_path());
    std::filesystem::create_directories(w.spool_dir());
    ::chmod(w.spool_dir().c_str(), 0700);
    const std::string none, reason = "HTTP 400";
    CU_ASSERT_FATAL(file.write({e, e.body, none, 1, 400, reason, none}).ok);
    const Event other = make_event(EventType::Outage, "o-other", 1);
    CU_ASSERT_FATAL(file.write({other, other.body, none, 1, 400, reason, none}).ok);
    xmtest::CapturingLogger quiet;
    xmatters::Spool spool(w.spool_dir(), quiet);
    Event queued = e;
    queued.change.clear();
    append(spool, queued);
    spool.sync();
  }
  w.standin->stop();
  w.open(false);
  const auto read = xmatters::read_dead_letters(w.dead_letter_path());
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.outage_id, "o-other");
}

// --- dead letters: bounded lines, bounded file, rotation, damage -----------------------

// Many events refused with 400: one ERROR per interval at most, each
// counting those held back, every letter accounted for once.
void test_dead_letter_errors_bounded() {
  World w;
  w.use_test_clock();  // an ERROR each 10 s at most
  Delivery& d = open_refusing(w);
  const std::size_t n = 300;
  for (std::size_t i = 0; i < n; ++i) CU_ASSERT(d.submit(make_event(EventType::Outage, "o-bad-" + std::to_string(i))));
  XM_REQUIRE(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == n; }, kWait));
  const auto accounted = [&] {
    // A summary line names the last letter it counts too.
    return w.log.count(LogLevel::Error, "dead-lettered: HTTP 400") -
           w.log.count(LogLevel::Error, "more event(s) dead-lettered since") +
           counted_in(w.log, LogLevel::Error, "dead-lettered");
  };
  let_threads_run();
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error), 1u);  // the first; the others wait for the interval
  w.advance(9999ms);
  let_threads_run();
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error), 1u);
  w.advance(1ms);
  XM_REQUIRE(xmtest::wait_until([&] { return accounted() == n; }, kWait));
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error), 2u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, std::to_string(n - 1) + " more event(s) dead-lettered since"), 1u);
  CU_ASSERT_EQUAL(xmatters::read_dead_letters(w.dead_letter_path()).letters.size(), n);
}

// Beyond DeadLetterLimit the oldest letters go, with a WARNING; the file
// stays under the limit and valid JSON lines, the newest letter kept.
void test_dead_letter_limit() {
  World w;
  w.config.dead_letter_limit = 8192;
  w.ops().connections = 1;
  Delivery& d = open_refusing(w);
  const std::size_t n = 60;
  Event last;
  for (std::size_t i = 0; i < n; ++i) {
    last = make_event(EventType::Outage, "o-big-" + std::to_string(i));
    CU_ASSERT(d.submit(last));
  }
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == n; }, kWait));
  const std::string path = w.dead_letter_path();
  struct stat st {};
  CU_ASSERT_FATAL(::stat(path.c_str(), &st) == 0);
  CU_ASSERT(st.st_size <= 8192);
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
  const auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL(read.damaged, 0u);
  CU_ASSERT(read.letters.size() < n);
  CU_ASSERT(!read.letters.empty());
  CU_ASSERT_EQUAL(read.letters.back().event.event_id, last.event_id);
  CU_ASSERT(w.log.contains(LogLevel::Warning, "DeadLetterLimit"));
  CU_ASSERT(w.log.count(LogLevel::Warning, "DeadLetterLimit") < n / 4);
}

// Rotated under the plugin (renamed, or truncated): the next letter starts
// a new file, or continues the truncated one, as valid JSON lines.
void test_dead_letter_file_rotated() {
  World w;
  Delivery& d = open_refusing(w);
  const std::string path = w.dead_letter_path();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-r1")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  CU_ASSERT_FATAL(::rename(path.c_str(), (path + ".1").c_str()) == 0);
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-r2")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 2; }, kWait));
  auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.outage_id, "o-r2");
  CU_ASSERT_FATAL(::truncate(path.c_str(), 0) == 0);
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-r3")));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 3; }, kWait));
  read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL(read.damaged, 0u);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 1u);
  CU_ASSERT_EQUAL(read.letters[0].event.outage_id, "o-r3");
}

// The reader skips what is not a letter nor a mark (garbage, a torn last
// line, a letter without its event_id), counting it; marks fold into the
// letters before them of their outage only.
void test_dead_letter_reader_tolerates_damage() {
  xmtest::TempDir dir;
  const std::string path = dir / "dead-letter.jsonl";
  xmatters::DeadLetterFile file(path);
  const Event a = make_event(EventType::Outage, "o-a"), b = make_event(EventType::Outage, "o-b");
  const std::string none, reason = "HTTP 400";
  CU_ASSERT_FATAL(file.write({a, a.body, none, 1, 400, reason, none}).ok);
  {
    std::ofstream out(path, std::ios::app);
    out << "not json at all\n{\"integration\":\"ops\"}\n\n";
  }
  CU_ASSERT_FATAL(file.write({b, "not { json", none, 1, 400, reason, none}).ok);
  CU_ASSERT(file.mark_cleared(make_event(EventType::Clear, "o-a", 2), "{\"x\":1}"));
  CU_ASSERT(file.mark_cleared(make_event(EventType::Clear, "o-z", 2), "{}"));  // no letter: no mark
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"integration\":\"ops\",\"event_id\":\"torn";
  }
  const auto read = xmatters::read_dead_letters(path);
  CU_ASSERT_EQUAL(read.damaged, 3u);
  CU_ASSERT_EQUAL_FATAL(read.letters.size(), 2u);
  CU_ASSERT(read.letters[0].cleared_by.has_value());
  CU_ASSERT_EQUAL(read.letters[0].cleared_by->body, "{\"x\":1}");
  CU_ASSERT_FALSE(read.letters[1].cleared_by.has_value());
  CU_ASSERT_EQUAL(read.letters[1].event.body, "not { json");
  CU_ASSERT(std::abs(std::chrono::duration<double>(read.letters[0].event.created - a.created).count()) < 1.0);
  CU_ASSERT(xmatters::read_dead_letters(dir / "missing.jsonl").letters.empty());
}

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

void test_empty_proxy_ignores_environment() {
  // A proxy in the environment that does not exist: port 9 (discard) on loopback.
  ScopedEnv proxy("http_proxy", "http://127.0.0.1:9");
  ScopedEnv no_proxy("no_proxy", nullptr);
  ScopedEnv no_proxy_upper("NO_PROXY", nullptr);
  {
    World w;  // no Proxy option: libcurl takes the environment's, and fails
    Delivery& d = w.open();
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-envproxy")));
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").retried >= 1; }, kWait));
    CU_ASSERT_EQUAL(w.standin->request_count(), 0u);
  }
  World w;
  w.ops().proxy = "";
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-noproxy")));
  CU_ASSERT(w.standin->wait_for_accepted(1, kWait));
}

// --- secrets ------------------------------------------------------------------------

void test_secrets_never_logged() {
  const std::string key = "Key-7f3a9c2e-very-secret";
  const std::string password = "Pw-0b8d41-very-secret";
  xmtest::StandinOptions so;
  so.api_key = key;
  World w(so);
  w.ops().user = "panopta";
  w.ops().password = password;
  w.ops().clear_url = w.standin->url("clear-fn") + "&token=" + password;
  w.standin->script({reply_with(500), reply_with(400)});
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-sec-1", 1)));
  CU_ASSERT(d.submit(make_event(EventType::Clear, "o-sec-1", 2)));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").dead_lettered == 1; }, kWait));
  CU_ASSERT(w.standin->wait_for_accepted(1, kWait));
  // And while the endpoint is down.
  w.standin->stop();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-sec-2", 1)));
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").retried >= 2; }, kWait));
  w.delivery.reset();

  CU_ASSERT(w.log.contains(LogLevel::Warning, "apiKey=***"));  // URLs are logged, redacted
  CU_ASSERT(!w.dead_letters().empty());
  for (const auto& e : w.log.entries()) {
    CU_ASSERT(e.message.find(key) == std::string::npos);
    CU_ASSERT(e.message.find(password) == std::string::npos);
    CU_ASSERT(e.message.find("Authorization") == std::string::npos);
  }
  CU_ASSERT(w.dead_letters().find(key) == std::string::npos);
  CU_ASSERT(w.dead_letters().find(password) == std::string::npos);
}

void test_client_scrubs_secrets() {
  IntegrationConfig c;
  c.name = "ops";
  c.outage_url = "https://u:UrlPass@h.example/p?apiKey=K3y%2Fx&recipients=a,b";
  c.clear_url = c.outage_url;
  c.password = "Pa55";
  c.headers = {"X-Api-Key: HdrKey", "X-Source: collectd"};
  xmatters::HttpClient client(c);
  const std::string s = client.scrub("K3y%2Fx K3y/x Pa55 UrlPass HdrKey collectd");
  CU_ASSERT_EQUAL(s, "*** *** *** *** *** ***");  // every Header value, whatever its name

  // What the Authorization headers carry, echoed by a reply: a bearer token
  // alone, and basic auth's base64 of "user:password".
  IntegrationConfig b = c;
  b.user = "panopta";
  b.password = "s3cretpw";
  b.headers = {"Authorization: Bearer TOKEN-abc-123"};
  xmatters::HttpClient basic(b);
  CU_ASSERT_EQUAL(basic.scrub("invalid token TOKEN-abc-123; basic cGFub3B0YTpzM2NyZXRwdw==; pw s3cretpw"),
                  "invalid token ***; basic ***; pw ***");
}

// --- spool ---------------------------------------------------------------------------

void test_spool_recovery() {
  World w;
  w.standin->stop();
  const Event a1 = make_event(EventType::Outage, "o-rec-a", 1);
  const Event a2 = make_event(EventType::Clear, "o-rec-a", 2);
  const Event b1 = make_event(EventType::Outage, "o-rec-b", 1);
  {
    Delivery& d = w.open();
    CU_ASSERT(d.submit(a1));
    CU_ASSERT(d.submit(b1));
    CU_ASSERT(d.submit(a2));
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").retried >= 1; }, kWait));
    w.delivery.reset();
  }
  // A torn last record, as a crash in the middle of a write leaves it.
  const std::string segment = newest_segment(w.spool_dir());
  CU_ASSERT_FATAL(!segment.empty());
  xmtest::write_file(segment, xmtest::read_file(segment) + std::string("\x13\x00\x00\x00torn", 8));

  w.standin->restart();
  Delivery& d = w.open(false);
  CU_ASSERT_EQUAL(d.stats("ops").queue_length, 3u);
  CU_ASSERT(w.log.contains(LogLevel::Warning, "spool"));  // the torn record
  d.start();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(3, kWait));
  CU_ASSERT(in_order_per_outage(accepted(*w.standin), 3));
  std::set<std::string> ids;
  for (const auto& r : accepted(*w.standin)) ids.insert(r.headers.at("idempotency-key"));
  CU_ASSERT(ids == (std::set<std::string>{a1.event_id, a2.event_id, b1.event_id}));
}

// The child of test_recovery_after_kill: spools events while its delivery
// threads fail to reach the stopped stand-in, then is killed with SIGKILL.
int crash_child(const std::string& spool_dir, const std::string& url) {
  Config config;
  IntegrationConfig c;
  c.name = "ops";
  c.outage_url = c.clear_url = url;
  c.timeout = 2000ms;
  c.flood_limit = 0;
  config.integrations.push_back(c);
  xmtest::CapturingLogger log;
  Delivery d(config, spool_dir, log, fast_options());
  d.start();
  for (int step = 0; step < 5; ++step)
    for (int o = 0; o < 10; ++o)
      d.submit(make_event(step == 4 ? EventType::Clear : EventType::Outage, "o-crash-" + std::to_string(o), step));
  kill(getpid(), SIGKILL);
  return 1;
}

void test_recovery_after_kill() {
  World w;
  w.standin->stop();
  const std::string url = w.standin->url("outage-fn");
  const std::string dir = w.spool_dir();
  std::vector<char*> argv = {const_cast<char*>("/proc/self/exe"), const_cast<char*>("--crash-child"),
                             const_cast<char*>(dir.c_str()), const_cast<char*>(url.c_str()), nullptr};
  pid_t pid;
  CU_ASSERT_EQUAL_FATAL(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0);
  int status = 0;
  CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT_FATAL(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  w.standin->restart();
  Delivery& d = w.open();
  // Each outage's pages replaced each other while queued: at least its
  // latest page and its clear are recovered, in order.
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(20, kWait));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
  CU_ASSERT(latest_page_then_clear(accepted(*w.standin), 10, 3));
}

// An event of an integration no longer configured stays in the spool,
// unsent and not dead-lettered, and leaves once its name is back.
void test_recovered_events_of_removed_integration() {
  World w;
  w.config.integrations.push_back(integration_for(*w.standin, "gone"));
  {
    Delivery& d = w.open(false);
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-gone", 1, "gone")));
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-kept", 1, "ops")));
    w.delivery.reset();
  }
  const IntegrationConfig gone = w.config.integrations.back();
  w.config.integrations.pop_back();
  {
    Delivery& d = w.open();
    CU_ASSERT(w.log.contains(LogLevel::Warning, "integration gone is not configured: 1 undelivered event(s)"));
    CU_ASSERT(w.standin->wait_for_accepted(1, kWait));
    CU_ASSERT(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
    CU_ASSERT(json_lines(w.dead_letters()).empty());
    w.delivery.reset();
  }
  CU_ASSERT_EQUAL(spooled(w.spool_dir()).size(), 1u);
  w.config.integrations.push_back(gone);
  Delivery& d = w.open();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(2, kWait));
  CU_ASSERT(xmtest::wait_until([&] { return d.stats("gone").queue_length == 0; }));
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
  CU_ASSERT(json_lines(w.dead_letters()).empty());
}

void test_queue_limit() {
  World w;
  w.config.queue_limit = 3;
  Delivery& d = w.open(false);  // not started: nothing drains
  for (int i = 0; i < 3; ++i) CU_ASSERT(d.submit(make_event(EventType::Outage, "o-q-" + std::to_string(i))));
  CU_ASSERT(!d.submit(make_event(EventType::Outage, "o-q-3")));
  CU_ASSERT_EQUAL(d.stats("ops").dropped, 1u);
  CU_ASSERT(w.log.contains(LogLevel::Error, "QueueLimit"));
  CU_ASSERT(d.submit(make_event(EventType::Clear, "o-q-0")));  // a clear is never refused
  CU_ASSERT(!d.submit(make_event(EventType::Outage, "o-q-4")));
  const auto s = d.stats("ops");
  CU_ASSERT_EQUAL(s.dropped, 2u);
  CU_ASSERT_EQUAL(s.queue_length, 4u);
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "QueueLimit"), 1u);  // rate-limited
  w.delivery.reset();
  CU_ASSERT_EQUAL(spooled(w.spool_dir()).size(), 4u);  // the refused ones never reached the spool
  // The refusals the rate limit kept out of an ERROR are counted by one at stop.
  CU_ASSERT_EQUAL(w.log.count(LogLevel::Error, "1 more outage event(s) refused since the last report"), 1u);
}

// Re-pages of an undelivered outage replace its queued page in place: one
// page per outage counts against QueueLimit, the replaced ones leave the
// spool, the clear still follows the latest page.
void test_repages_replace_queued_page() {
  World w;
  w.config.queue_limit = 3;
  {
    Delivery& d = w.open(false);  // not started: nothing is in flight
    for (int seq = 0; seq < 3; ++seq) CU_ASSERT(d.submit(make_event(EventType::Outage, "o-m", seq)));
    CU_ASSERT_EQUAL(d.stats("ops").queue_length, 1u);
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-n")));
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-p")));
    CU_ASSERT(!d.submit(make_event(EventType::Outage, "o-q")));  // full
    CU_ASSERT(d.submit(make_event(EventType::Outage, "o-m", 3)));  // full, but takes no room
    CU_ASSERT(d.submit(make_event(EventType::Clear, "o-m", 4)));
    const auto st = d.stats("ops");
    CU_ASSERT_EQUAL(st.queue_length, 4u);
    CU_ASSERT_EQUAL(st.dropped, 1u);
    w.delivery.reset();
  }
  std::map<std::string, std::vector<long long>> left;  // outage -> seqs still spooled
  for (const auto& e : spooled(w.spool_dir())) {
    auto j = xmtest::parse_json(e.body);
    left[e.outage_id].push_back(json_integer_value(json_object_get(j.get(), "seq")));
  }
  CU_ASSERT((left["o-m"] == std::vector<long long>{3, 4}));
  CU_ASSERT_EQUAL(left.size(), 3u);
  Delivery& d = w.open();
  CU_ASSERT_FATAL(w.standin->wait_for_accepted(4, kWait));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }));
  std::vector<long long> o_m;
  for (const auto& r : accepted(*w.standin))
    if (body_member(r, "outage_id") == "o-m") o_m.push_back(body_seq(r));
  CU_ASSERT((o_m == std::vector<long long>{3, 4}));
  CU_ASSERT_EQUAL(w.standin->request_count(), 4u);
}

// A page in flight is not replaced: the next one queues behind it, and
// replaces only its queued successors.
void test_page_in_flight_not_replaced() {
  World w;
  Standin::Reply slow;
  slow.delay = 500ms;
  w.standin->script({slow});
  Delivery& d = w.open();
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-f", 0)));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return w.standin->pending_count() == 1; }, kWait));
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-f", 1)));
  CU_ASSERT(d.submit(make_event(EventType::Outage, "o-f", 2)));
  CU_ASSERT_EQUAL(d.stats("ops").queue_length, 2u);
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return d.stats("ops").queue_length == 0; }, kWait));
  std::vector<long long> seqs;
  for (const auto& r : accepted(*w.standin)) seqs.push_back(body_seq(r));
  CU_ASSERT((seqs == std::vector<long long>{0, 2}));
  w.delivery.reset();
  CU_ASSERT(spooled(w.spool_dir()).empty());
}

// A client libcurl cannot set up (here a Proxy over libcurl's 8 MB string
// limit) fails the construction, naming the integration, before the spool
// takes any event, instead of ending a delivery thread later.
void test_client_that_cannot_be_made_fails_construction() {
  World w;
  w.ops().proxy = std::string(8000001, 'p');
  std::string what;
  try {
    w.open();
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  CU_ASSERT(what.find("integration ops: cannot set up its connections") != std::string::npos);
  CU_ASSERT(!w.delivery);
  CU_ASSERT(!xmtest::file_exists(w.spool_dir()));
}

void test_submit_after_stop_refused() {
  World w;
  Delivery& d = w.open();
  d.stop();
  d.stop();  // idempotent
  CU_ASSERT(!d.submit(make_event(EventType::Outage, "o-late")));
  CU_ASSERT(w.log.contains(LogLevel::Warning, "o-late"));
}

// --- shutdown ------------------------------------------------------------------------

void test_shutdown_with_hung_endpoint() {
  World w;
  w.ops().timeout = 1000ms;
  Standin::Reply hung;
  hung.delay = 30s;
  w.standin->set_default_reply(hung);
  Delivery& d = w.open();
  const Event e = make_event(EventType::Outage, "o-hung");
  CU_ASSERT(d.submit(e));
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return w.standin->pending_count() == 1; }, kWait));

  auto stopped = std::async(std::launch::async, [&] { w.delivery.reset(); });
  const bool returned = stopped.wait_for(15s) == std::future_status::ready;
  CU_ASSERT(returned);
  if (!returned) w.standin->stop();  // lets it return, so that the test ends
  stopped.wait();

  // Still in the spool: the next start sends it.
  w.standin->set_default_reply({});
  w.standin->restart();
  w.standin->clear();
  w.open();
  CU_ASSERT(w.standin->wait_for_accepted(1, kWait));
  const auto got = accepted(*w.standin);
  CU_ASSERT(!got.empty() && got[0].headers.at("idempotency-key") == e.event_id);
}

// --- the stand-in's scripted replies ------------------------------------------------

// One POST with libcurl itself, recording when the status line and when the
// whole reply arrived: the stand-in's faults are checked without the
// plugin's client, whose handling of them is what other tests test.
struct RawReply {
  long status = 0;
  CURLcode rc = CURLE_OK;
  std::string body;
  std::string headers;
  std::chrono::steady_clock::duration status_after{}, done_after{};
};

RawReply raw_post(const std::string& url, const std::vector<std::string>& header_lines = {}) {
  struct Capture {
    RawReply r;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  } cap;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> h(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* list = nullptr;
  for (const auto& l : header_lines) list = curl_slist_append(list, l.c_str());
  const std::string body = "{}";
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(h.get(), CURLOPT_HEADERFUNCTION, +[](char* d, size_t, size_t n, void* c) {
    auto* cap = static_cast<Capture*>(c);
    if (cap->r.headers.empty()) cap->r.status_after = std::chrono::steady_clock::now() - cap->start;
    cap->r.headers.append(d, n);
    return n;
  });
  curl_easy_setopt(h.get(), CURLOPT_HEADERDATA, &cap);
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, +[](char* d, size_t, size_t n, void* c) {
    static_cast<Capture*>(c)->r.body.append(d, n);
    return n;
  });
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &cap);
  cap.r.rc = curl_easy_perform(h.get());
  cap.r.done_after = std::chrono::steady_clock::now() - cap.start;
  curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &cap.r.status);
  curl_slist_free_all(list);
  return cap.r;
}

void test_standin_echoes_request_headers() {
  Standin xm;
  Standin::Reply echo;
  echo.status = 400;
  echo.echo_headers = {"X-Sig", "Authorization", "X-Absent"};
  xm.script({echo});
  const auto r = raw_post(xm.url("f"), {"X-Sig: sig-value-1", "Authorization: Bearer tok-2"});
  CU_ASSERT_EQUAL(r.status, 400);
  // First in the body, where a client's 200-byte excerpt of the reply sees it.
  CU_ASSERT_EQUAL(r.body.rfind("{\"echo\":{\"X-Sig\":\"sig-value-1\",\"Authorization\":\"Bearer tok-2\"}", 0), 0u);
  CU_ASSERT(r.body.find("X-Absent") == std::string::npos);
  CU_ASSERT(r.body.find("\"code\":400") != std::string::npos);
  // Without echo_headers, nothing is echoed.
  const auto plain = raw_post(xm.url("f"), {"X-Sig: sig-value-1"});
  CU_ASSERT_EQUAL(plain.status, 202);
  CU_ASSERT(plain.body.find("sig-value-1") == std::string::npos);
}

void test_standin_stalls_body_after_status_line() {
  Standin xm;
  Standin::Reply stall;
  stall.stall_body = 1500ms;
  xm.script({stall});
  const auto r = raw_post(xm.url("f"));
  CU_ASSERT_EQUAL(r.rc, CURLE_OK);
  CU_ASSERT_EQUAL(r.status, 202);
  CU_ASSERT(r.status_after < 1000ms);  // the status line came before the stall
  CU_ASSERT(r.done_after >= 1500ms);   // the rest of the body after it
  CU_ASSERT(xmtest::parse_json(r.body) != nullptr);
  CU_ASSERT(r.body.find("requestId") != std::string::npos);
  CU_ASSERT_EQUAL(xm.accepted_count(), 1u);
}

void test_standin_stalled_body_cut_by_stop() {
  auto xm = std::make_unique<Standin>();
  Standin::Reply stall;
  stall.stall_body = std::chrono::hours(1);
  xm->set_default_reply(stall);
  auto reply = std::async(std::launch::async, [url = xm->url("f")] { return raw_post(url); });
  CU_ASSERT_FATAL(xmtest::wait_until([&] { return xm->pending_count() == 1; }, kWait));
  xm.reset();  // stops the stand-in within the test's time
  const auto r = reply.get();
  CU_ASSERT_EQUAL(r.status, 202);
  CU_ASSERT_NOT_EQUAL(r.rc, CURLE_OK);  // the body never completed
}

void test_standin_redirects_and_retry_after() {
  Standin xm;
  Standin::Reply redirect;
  redirect.status = 307;
  redirect.location = xm.url("elsewhere");
  Standin::Reply busy;
  busy.status = 429;
  busy.retry_after = "Sun, 06 Nov 1994 08:49:37 GMT";
  xm.script({redirect, busy});
  const auto r = raw_post(xm.url("f"));
  CU_ASSERT_EQUAL(r.status, 307);
  CU_ASSERT(r.headers.find("Location: " + xm.url("elsewhere") + "\r\n") != std::string::npos);
  const auto b = raw_post(xm.url("f"));
  CU_ASSERT_EQUAL(b.status, 429);
  CU_ASSERT(b.headers.find("Retry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n") != std::string::npos);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--crash-child") return crash_child(argv[2], argv[3]);
  return xmtest::run(argc, argv,
                     {{"delivery",
                       {{"delivers_with_headers", test_delivers_with_headers},
                        {"connections_kept_alive", test_connections_kept_alive},
                        {"new_outage_not_held_behind_slow_request", test_new_outage_not_held_behind_slow_request},
                        {"damaged_spool_record_dead_lettered", test_damaged_spool_record_dead_lettered},
                        {"changes_recovered_in_log_order", test_changes_recovered_in_log_order},
                        {"spool_shrinks_after_delivery", test_spool_shrinks_after_delivery},
                        {"deliveries_logged_at_info_at_most_n_a_window", test_deliveries_logged_at_info_at_most_n_a_window},
                        {"retries_500_then_success", test_retries_500_then_success},
                        {"retries_dropped_connection", test_retries_dropped_connection},
                        {"honours_retry_after", test_honours_retry_after},
                        {"retry_after_bounded_by_ceiling", test_retry_after_bounded_by_ceiling},
                        {"backoff_doubles_to_its_ceiling", test_backoff_doubles_to_its_ceiling},
                        {"400_dead_lettered_and_clear_still_sent", test_400_dead_lettered_and_clear_still_sent},
         {"unwritable_dead_letter_file_keeps_the_order", test_unwritable_dead_letter_file_keeps_the_order},
         {"dead_letter_symlink_not_followed", test_dead_letter_symlink_not_followed},
         {"unsynced_dead_letter_keeps_the_event", test_unsynced_dead_letter_keeps_the_event},
                        {"retry_max_age_dead_letters", test_retry_max_age_dead_letters},
                        {"endpoint_down_then_up", test_endpoint_down_then_up},
                        {"per_outage_order_in_parallel", test_per_outage_order_in_parallel},
                        {"slow_endpoint_does_not_slow_submit", test_slow_endpoint_does_not_slow_submit},
                        {"submit_after_stop_refused", test_submit_after_stop_refused},
                        {"client_that_cannot_be_made_fails_construction",
                         test_client_that_cannot_be_made_fails_construction},
                        {"shutdown_with_hung_endpoint", test_shutdown_with_hung_endpoint}}},
                      {"operator",
                       {{"401_pauses_then_resumes_in_order", test_401_pauses_then_resumes_in_order},
                        {"paused_events_expire_by_retry_max_age", test_paused_events_expire_by_retry_max_age},
                        {"status_and_queue_snapshots", test_status_and_queue_snapshots},
                        {"test_send_delivered", test_test_send_delivered},
                        {"test_send_through_a_pause_resumes", test_test_send_through_a_pause_resumes},
                        {"test_send_unknown_integration", test_test_send_unknown_integration},
                        {"resend_dead_letters", test_resend_dead_letters},
                        {"resend_goes_before_its_outage_queue", test_resend_goes_before_its_outage_queue},
                        {"resend_skips_outage_cleared_after_the_read", test_resend_skips_outage_cleared_after_the_read},
                        {"resend_with_clear_refused_while_the_clear_is_in_the_spool",
                         test_resend_with_clear_refused_while_the_clear_is_in_the_spool},
                        {"resend_refused_again_keeps_its_new_letter", test_resend_refused_again_keeps_its_new_letter},
                        {"resent_letters_removed_at_start", test_resent_letters_removed_at_start}}},
                      {"dead_letters",
                       {{"dead_letter_errors_bounded", test_dead_letter_errors_bounded},
                        {"dead_letter_limit", test_dead_letter_limit},
                        {"dead_letter_file_rotated", test_dead_letter_file_rotated},
                        {"dead_letter_reader_tolerates_damage", test_dead_letter_reader_tolerates_damage}}},
                      {"security",
                       {{"tls_with_right_ca", test_tls_with_right_ca},
                        {"tls_with_wrong_ca", test_tls_with_wrong_ca},
                        {"tls_without_verification", test_tls_without_verification},
                        {"tls_client_certificate", test_tls_client_certificate},
                        {"tls_client_certificate_missing", test_tls_client_certificate_missing},
                        {"tls_client_certificate_of_other_ca", test_tls_client_certificate_of_other_ca},
                        {"basic_auth", test_basic_auth},
                        {"basic_auth_wrong_password_pauses", test_basic_auth_wrong_password_pauses},
                        {"test_send_refused_not_retried", test_test_send_refused_not_retried},
                        {"empty_proxy_ignores_environment", test_empty_proxy_ignores_environment},
                        {"secrets_never_logged", test_secrets_never_logged},
                        {"client_scrubs_secrets", test_client_scrubs_secrets}}},
                      {"pacing",
                       {{"minute_budget", test_minute_budget},
                        {"clears_paced_by_flood_limit", test_clears_paced_by_flood_limit},
                        {"pacing_time_recorded", test_pacing_time_recorded},
                        {"pacing_types_independent_and_ordered", test_pacing_types_independent_and_ordered},
                        {"not_before_honoured", test_not_before_honoured},
                        {"replacement_never_later_than_replaced", test_replacement_never_later_than_replaced},
                        {"pacing_counts_retries", test_pacing_counts_retries},
                        {"flood_page_takes_the_kept_request", test_flood_page_takes_the_kept_request},
                        {"no_flood_limit_no_pacing", test_no_flood_limit_no_pacing},
                        {"flood_limit_over_http", test_flood_limit_over_http},
                        {"flood_minute_records", test_flood_minute_records},
                        {"flood_minute_survives_restart", test_flood_minute_survives_restart}}},
                      {"spool",
                       {{"spool_recovery", test_spool_recovery},
                        {"recovery_after_kill", test_recovery_after_kill},
                        {"recovered_events_of_removed_integration", test_recovered_events_of_removed_integration},
                        {"queue_limit", test_queue_limit},
                        {"repages_replace_queued_page", test_repages_replace_queued_page},
                        {"page_in_flight_not_replaced", test_page_in_flight_not_replaced}}},
                      {"standin",
                       {{"standin_echoes_request_headers", test_standin_echoes_request_headers},
                        {"standin_stalls_body_after_status_line", test_standin_stalls_body_after_status_line},
                        {"standin_stalled_body_cut_by_stop", test_standin_stalled_body_cut_by_stop},
                        {"standin_redirects_and_retry_after", test_standin_redirects_and_retry_after}}}});
}
