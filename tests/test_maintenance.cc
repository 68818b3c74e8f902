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
using xmtest::CollectdProcess;

struct Run {
  int status = -1;
  std::string out;  // stdout and stderr together
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Timeout 1000: a value list's last value opens no missing-value outage.
// One collectd whose threshold plugin watches plugin "e2e" (WARNING above
// 80, FAILURE above 90) for every host, as an aggregator does its fleet's.
struct Live {
  xmtest::Standin xm;
  CollectdProcess c;
  explicit Live(const std::string& maintenance)
      : c("Timeout 1000\nLoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"e2e\">\n    <Type \"gauge\">\n"
          "      DataSource \"value\"\n      WarningMax 80\n      FailureMax 90\n    </Type>\n  </Plugin>\n"
          "</Plugin>\nLoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"" +
          xm.url("outage-fn") + "\"\n    ClearURL \"" + xm.url("clear-fn") + "\"\n    Timeout 5\n" +
          "  </Integration>\n" + maintenance + "</Plugin>\n") {}

  bool start() {
    const bool ok = c.start();
    if (!ok) std::fprintf(stderr, "\n--- collectd did not start; its log:\n%s---\n", c.log().c_str());
    return ok;
  }
  Run command(std::vector<std::string> args) {
    std::string cmd = shell_quote(COMMAND_BIN) + " --config " + shell_quote(c.config_path());
    for (const auto& a : args) cmd += " " + shell_quote(a);
    cmd += " 2>&1";
    Run r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }
  // silence add; its id (the one line it prints), "" when it failed.
  std::string silence(const std::vector<std::string>& matchers, const std::string& duration = "1h") {
    std::vector<std::string> args = {"silence", "add"};
    args.insert(args.end(), matchers.begin(), matchers.end());
    args.insert(args.end(), {"--duration", duration, "--comment", "patch night"});
    const Run r = command(args);
    if (r.status != 0 || r.out.size() != 37 || r.out.back() != '\n') {
      std::fprintf(stderr, "\n--- silence add exited %d:\n%s---\n", r.status, r.out.c_str());
      return "";
    }
    return r.out.substr(0, 36);
  }
  // The document of a read-only verb (--json).
  xmtest::JsonPtr document(const std::vector<std::string>& args) {
    std::vector<std::string> a = {"--json"};
    a.insert(a.end(), args.begin(), args.end());
    return xmtest::parse_json(command(a).out);
  }
  // The open outage whose key names host and plugin instance ("host/e2e-inst/gauge").
  xmtest::JsonPtr outage(const std::string& key) {
    const auto doc = document({"outages"});
    const json_t* list = json_object_get(doc.get(), "outages");
    for (std::size_t i = 0; i < json_array_size(list); ++i) {
      json_t* o = json_array_get(list, i);
      if (xmtest::json_string_member(o, "key") == key) return xmtest::JsonPtr(json_incref(o));
    }
    return nullptr;
  }
  std::string field(std::size_t i, const char* name) const {
    return xmtest::json_string_member(xmtest::parse_json(xm.requests().at(i).body).get(), name);
  }
  // The host of request i (its collectd.host).
  std::string host(std::size_t i) const {
    const auto body = xmtest::parse_json(xm.requests().at(i).body);
    return xmtest::json_string_member(json_object_get(body.get(), "collectd"), "host");
  }
  // Indexes of the requests whose services are those of the value list.
  std::vector<std::size_t> requests_for(const std::string& services) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < xm.request_count(); ++i)
      if (field(i, "services") == services) out.push_back(i);
    return out;
  }
};

std::string seconds_of(const std::string& rfc3339) { return rfc3339.substr(0, 19); }

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
                          }},
                     });
}
