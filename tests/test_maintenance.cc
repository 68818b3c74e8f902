// Maintenance windows through a real collectd (collectd-xmatters(5)
// MAINTENANCE): its threshold plugin, the plugin and the xMatters stand-in,
// with a window of a few seconds in the test's own time zone (collectd
// inherits it), computed when the test runs.
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "collectd_harness.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::seconds_of;

// The aggregator with maintenance, its <Maintenance> blocks.
struct Live : xmtest::Live {
  explicit Live(const std::string& maintenance) : xmtest::Live("", maintenance) {}
};

// "hh:mm:ss" of the local time at now + offset seconds.
std::string local_time(long offset) {
  const time_t t = ::time(nullptr) + offset;
  struct tm tm {};
  ::localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

// A window named "patch" over host web1, every day from from to until
// seconds from now (a span across midnight belongs to its first day).
std::string window(long from, long until) {
  return "  <Maintenance \"patch\">\n    Host \"^web1$\"\n    Times \"" + local_time(from) + "-" +
         local_time(until) + "\"\n  </Maintenance>\n";
}

// A window over web1 while web2 pages at once: web1's outage, held, pages
// when the window ends, with its real start; a second outage of web1 that
// opened and closed inside it sends nothing at all.
void test_window_holds_one_host_until_it_ends() {
  Live t(window(-60, 15));
  XM_REQUIRE(t.start());
  XM_REQUIRE(t.c.wait_for_log("maintenance window \"patch\" begins"));
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-a/gauge", 95));
  CU_ASSERT_TRUE(t.c.putval("web2", "e2e-a/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  CU_ASSERT_EQUAL(t.host(0), "web2");
  xmtest::JsonPtr held;
  XM_REQUIRE(xmtest::wait_until([&] { return (held = t.outage("web1/e2e-a/gauge")) != nullptr; }, 20s));
  CU_ASSERT_EQUAL(xmtest::json_string_member(held.get(), "covered_by"), "maintenance patch");
  const std::string start = xmtest::json_string_member(held.get(), "start");

  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-b/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.outage("web1/e2e-b/gauge") != nullptr; }, 20s));
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-b/gauge", 10));
  XM_REQUIRE(xmtest::wait_until([&] { return t.outage("web1/e2e-b/gauge") == nullptr; }, 20s));
  // The premise: it closed inside the window (else it pages, rightly).
  XM_REQUIRE(t.c.log_since_start().find("maintenance window \"patch\" ends") == std::string::npos);

  XM_REQUIRE(t.xm.wait_for_accepted(2, 30s));  // the window's end
  XM_REQUIRE(t.host(1) == "web1");
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "outage");
  CU_ASSERT_EQUAL(seconds_of(t.field(1, "start_time")), seconds_of(start));
  CU_ASSERT_EQUAL(t.field(1, "event_id"), t.field(1, "outage_id") + "-1");  // the held page took no place
  CU_ASSERT_TRUE(t.c.wait_for_log("maintenance window \"patch\" ends"));
  CU_ASSERT_TRUE(t.c.putval("web3", "e2e-c/gauge", 95));  // a fence
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), 3u);
  CU_ASSERT_TRUE(t.requests_for("e2e-b/gauge").empty());
}

// Paged before the window, escalated inside it (held) and cleared: the
// clear goes, the escalation never does.
void test_clear_of_a_paged_outage_goes() {
  Live t(window(5, 60));
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-x/gauge", 85));  // WARNING: paged
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  XM_REQUIRE(t.c.wait_for_log("maintenance window \"patch\" begins", 20s));
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-x/gauge", 95));  // FAILURE: held
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-x/gauge", 10));  // OKAY
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "clear");
  CU_ASSERT_EQUAL(t.field(1, "outage_id"), t.field(0, "outage_id"));
  CU_ASSERT_EQUAL(t.field(1, "event_id"), t.field(0, "outage_id") + "-2");  // the held escalation took none
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-y/gauge", 95));  // a fence
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  CU_ASSERT_EQUAL(t.host(2), "db1");
  CU_ASSERT_EQUAL(t.xm.request_count(), 3u);
}

// A held page survives a restart and a kill -9, and pages once at the
// window's end, with its real start.
void test_held_page_survives_restart_and_kill() {
  Live t(window(-60, 12));
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-k/gauge", 95));
  xmtest::JsonPtr held;
  XM_REQUIRE(xmtest::wait_until([&] { return (held = t.outage("web1/e2e-k/gauge")) != nullptr; }, 20s));
  const std::string start = xmtest::json_string_member(held.get(), "start");
  XM_REQUIRE(t.c.restart());
  t.c.kill9();
  XM_REQUIRE(t.start());
  XM_REQUIRE(t.xm.wait_for_accepted(1, 30s));
  CU_ASSERT_EQUAL(t.host(0), "web1");
  CU_ASSERT_EQUAL(seconds_of(t.field(0, "start_time")), seconds_of(start));
  CU_ASSERT_TRUE(t.c.putval("web3", "e2e-c/gauge", 95));  // a fence
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), 2u);
  CU_ASSERT_EQUAL(t.requests_for("e2e-k/gauge").size(), 1u);
}

// An HA pair: two aggregators with the same window, fed the same values
// (the same times, as one edge feeds both): the outage the window holds
// pages at its end on both under the same outage_id and event_id ("-1": the
// held page took no place), and its clear follows with the same ids too.
void test_ha_pair_agrees_on_the_held_page() {
  const std::string w = window(-60, 15);
  Live a(w), b(w);
  XM_REQUIRE(a.start());
  XM_REQUIRE(b.start());
  const long at = ::time(nullptr);
  const auto put = [&](long time, double value) {
    const std::string line = "PUTVAL " + xmtest::quote_unixsock("web1/e2e-ha/gauge") + " interval=1 " +
                             std::to_string(time) + ":" + std::to_string(value);
    CU_ASSERT_TRUE(a.c.unixsock().command(line).ok());
    CU_ASSERT_TRUE(b.c.unixsock().command(line).ok());
  };
  put(at, 95);
  for (Live* t : {&a, &b}) {
    xmtest::JsonPtr held;
    XM_REQUIRE(xmtest::wait_until([&] { return (held = t->outage("web1/e2e-ha/gauge")) != nullptr; }, 20s));
    // Held by the window on both, or the rest proves nothing.
    XM_REQUIRE(xmtest::json_string_member(held.get(), "covered_by") == "maintenance patch");
  }
  XM_REQUIRE(a.xm.wait_for_accepted(1, 30s));  // the window's end
  XM_REQUIRE(b.xm.wait_for_accepted(1, 30s));
  CU_ASSERT_EQUAL(a.field(0, "event_type"), "outage");
  CU_ASSERT_EQUAL(a.field(0, "outage_id"), b.field(0, "outage_id"));
  CU_ASSERT_EQUAL(a.field(0, "event_id"), b.field(0, "event_id"));
  CU_ASSERT_EQUAL(a.field(0, "event_id"), a.field(0, "outage_id") + "-1");
  CU_ASSERT_EQUAL(a.request(0).headers["idempotency-key"], b.request(0).headers["idempotency-key"]);
  put(at + 1, 10);
  XM_REQUIRE(a.xm.wait_for_accepted(2, 20s));
  XM_REQUIRE(b.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(a.field(1, "event_type"), "clear");
  CU_ASSERT_EQUAL(a.field(1, "event_id"), b.field(1, "event_id"));
  CU_ASSERT_EQUAL(a.field(1, "event_id"), a.field(0, "outage_id") + "-2");
}

}  // namespace

int main(int argc, char** argv) {
  using xmtest::guarded;
  return xmtest::run(argc, argv,
                     {
                         {"maintenance",
                          {
                              {"window_holds_one_host_until_it_ends", guarded<test_window_holds_one_host_until_it_ends>},
                              {"clear_of_a_paged_outage_goes", guarded<test_clear_of_a_paged_outage_goes>},
                              {"held_page_survives_restart_and_kill", guarded<test_held_page_survives_restart_and_kill>},
                              {"ha_pair_agrees_on_the_held_page", guarded<test_ha_pair_agrees_on_the_held_page>},
                          }},
                     });
}
