// Fleets, with real collectd daemons (issue 15): edge collectds sending over
// collectd's network plugin to a central collectd that thresholds and pages
// through the plugin to the xMatters stand-in; a dead host with GroupBy host
// and value_list; a storm of 200 outages under FloodLimit 4; an HA pair of
// centrals fed by one edge, whose ids must agree.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "collectd_harness.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::CollectdProcess;
using Clock = std::chrono::steady_clock;

// --- configuration fragments ------------------------------------------------------

// An edge: its values go to every port, flushed every second (the network
// plugin otherwise holds them until its 1452-byte packet is full).
std::string network_servers(const std::vector<std::uint16_t>& ports) {
  std::string s = "<LoadPlugin network>\n  FlushInterval 1\n</LoadPlugin>\n<Plugin network>\n";
  for (auto p : ports) s += "  Server \"127.0.0.1\" \"" + std::to_string(p) + "\"\n";
  return s + "</Plugin>\n";
}

std::string network_listen(std::uint16_t port) {
  return "LoadPlugin network\n<Plugin network>\n  Listen \"127.0.0.1\" \"" + std::to_string(port) + "\"\n</Plugin>\n";
}

// Thresholds on plugin "fleet", whatever the host: an aggregator's usual
// configuration, without Host blocks.
std::string fleet_thresholds() {
  return "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"fleet\">\n    <Type \"gauge\">\n"
         "      DataSource \"value\"\n      WarningMax 80\n      FailureMax 90\n    </Type>\n  </Plugin>\n</Plugin>\n";
}

// An integration whose outage and clear events go to the stand-in's
// functions <prefix>-outage and <prefix>-clear.
std::string integration(const std::string& name, const xmtest::Standin& xm, const std::string& prefix,
                        const std::string& extra = "") {
  return "  <Integration \"" + name + "\">\n    OutageURL \"" + xm.url(prefix + "-outage") + "\"\n    ClearURL \"" +
         xm.url(prefix + "-clear") + "\"\n    Timeout 5\n" + extra + "  </Integration>\n";
}

std::string xmatters_block(const std::string& integrations) {
  return "LoadPlugin xmatters\n<Plugin xmatters>\n  ReportStats true\n" + integrations + "</Plugin>\n";
}

// --- what the stand-in received ----------------------------------------------------

struct Event {
  std::string function_id;
  xmtest::JsonPtr body;
  Clock::time_point time;
  std::string str(const char* key) const { return xmtest::json_string_member(body.get(), key); }
  bool is(const char* type) const { return str("event_type") == type; }
};

// The requests answered with a 2xx whose function id starts with prefix,
// in arrival order.
std::vector<Event> events(const xmtest::Standin& xm, const std::string& prefix = "") {
  std::vector<Event> out;
  for (auto& r : xm.requests())
    if (r.status >= 200 && r.status <= 299 && r.function_id.rfind(prefix, 0) == 0)
      out.push_back({r.function_id, xmtest::parse_json(r.body), r.time});
  return out;
}

std::size_t count(const std::vector<Event>& evs, const char* type) {
  return static_cast<std::size_t>(std::count_if(evs.begin(), evs.end(), [&](const Event& e) { return e.is(type); }));
}

void dump(const xmtest::Standin& xm, const std::vector<const CollectdProcess*>& daemons, bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "\n--- %s; the stand-in received:\n", what);
  for (const auto& r : xm.requests()) std::fprintf(stderr, "%d %s %s\n", r.status, r.function_id.c_str(), r.body.c_str());
  for (const auto* c : daemons) std::fprintf(stderr, "--- collectd's log (%s):\n%s", c->dir().c_str(), c->log().c_str());
  std::fprintf(stderr, "---\n");
}

bool start(CollectdProcess& c) {
  const bool ok = c.start();
  if (!ok) std::fprintf(stderr, "\n--- collectd did not start; its log:\n%s---\n", c.log().c_str());
  return ok;
}

// Waits until the central's cache holds host/id (the value came over the network).
bool arrived(CollectdProcess& central, const std::string& host, const std::string& id,
             std::chrono::milliseconds timeout = 10s) {
  return xmtest::wait_until([&] { return central.getval(host + "/" + id).has_value(); }, timeout);
}

bool valid_id(const std::string& id) { return std::regex_match(id, std::regex("[A-Za-z0-9-]{1,64}")); }

std::string dead_letters(const CollectdProcess& c) { return xmtest::read_file(c.base_dir() + "/xmatters/dead-letter.jsonl"); }

// --- edge -> central ---------------------------------------------------------------

// An edge's values reach the central within a second or two (FlushInterval
// 1), under the host names the edge gave them; a FAILURE there pages, and
// the OKAY clears.
void test_edge_to_central() {
  xmtest::Standin xm;
  const auto port = xmtest::free_udp_port();
  CollectdProcess central(network_listen(port) + fleet_thresholds() + xmatters_block(integration("ops", xm, "ops")));
  CollectdProcess edge(network_servers({port}));
  XM_REQUIRE(start(central));
  XM_REQUIRE(start(edge));
  CU_ASSERT_TRUE(edge.putval("web-1", "fleet/gauge-0", 50));
  const bool came = arrived(central, "web-1", "fleet/gauge-0", 5s);
  dump(xm, {&central, &edge}, came, "the edge's value did not reach the central");
  XM_REQUIRE(came);
  CU_ASSERT_TRUE(edge.putval("web-1", "fleet/gauge-0", 95));
  bool paged = xmtest::wait_until([&] { return events(xm).size() >= 1; }, 20s);
  dump(xm, {&central, &edge}, paged, "no page");
  XM_REQUIRE(paged);
  CU_ASSERT_TRUE(edge.putval("web-1", "fleet/gauge-0", 50));
  const bool cleared = xmtest::wait_until([&] { return events(xm).size() >= 2; }, 20s);
  dump(xm, {&central, &edge}, cleared, "no clear");
  XM_REQUIRE(cleared);
  const auto got = events(xm);
  CU_ASSERT_EQUAL(got.size(), 2u);
  CU_ASSERT_TRUE(got[0].is("outage"));
  CU_ASSERT_EQUAL(got[0].function_id, "ops-outage");
  CU_ASSERT_EQUAL(got[0].str("name"), "web-1");
  CU_ASSERT_EQUAL(got[0].str("services"), "fleet/gauge-0");
  CU_ASSERT_EQUAL(got[0].str("severity"), "critical");
  CU_ASSERT_TRUE(got[1].is("clear"));
  CU_ASSERT_EQUAL(got[1].function_id, "ops-clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
}

// --- a dead host ---------------------------------------------------------------------

constexpr int kDeadLists = 30;

// An edge host with 30 value lists stops reporting: the central's
// missing-value FAILUREs (Timeout 2) page once for GroupBy host and 30
// times for value_list, both integrations in one central; when the values
// come back, one clear (listing every member) and 30 clears.
void test_dead_host() {
  xmtest::Standin xm;
  const auto port = xmtest::free_udp_port();
  CollectdProcess central("Timeout 2\n" + network_listen(port) + fleet_thresholds() +
                          xmatters_block(integration("byhost", xm, "byhost", "    GroupBy \"host\"\n") +
                                         integration("byvl", xm, "byvl", "    GroupBy \"value_list\"\n    FloodLimit 0\n")));
  CollectdProcess edge(network_servers({port}));
  XM_REQUIRE(start(central));
  XM_REQUIRE(start(edge));
  const auto feed = [&] {
    for (int i = 0; i < kDeadLists; ++i) edge.putval("dead-1", "fleet/gauge-" + std::to_string(i), 50);
  };
  feed();
  bool came = true;
  for (int i = 0; i < kDeadLists; ++i) came = came && arrived(central, "dead-1", "fleet/gauge-" + std::to_string(i));
  dump(xm, {&central, &edge}, came, "the dead host's values did not reach the central");
  XM_REQUIRE(came);

  // The values stop: 30 missing-value FAILUREs at the central.
  const bool paged = xmtest::wait_until(
      [&] { return count(events(xm, "byvl"), "outage") >= kDeadLists && count(events(xm, "byhost"), "outage") >= 1; },
      30s);
  dump(xm, {&central}, paged, "the dead host was not paged");
  XM_REQUIRE(paged);
  // The byhost lane had the same notifications as byvl's 30: no second page
  // comes from them.
  CU_ASSERT_FALSE(xmtest::wait_until([&] { return count(events(xm, "byhost"), "outage") > 1; }, 2s));
  const auto pages_vl = events(xm, "byvl");
  const auto pages_host = events(xm, "byhost");
  CU_ASSERT_EQUAL(count(pages_vl, "outage"), static_cast<std::size_t>(kDeadLists));
  CU_ASSERT_EQUAL(count(pages_host, "outage"), 1u);
  const std::string host_outage = pages_host[0].str("outage_id");
  CU_ASSERT_EQUAL(pages_host[0].str("name"), "dead-1");
  CU_ASSERT_TRUE(pages_host[0].str("description").find("has not been updated") != std::string::npos);
  std::set<std::string> vl_outages, vl_services;
  for (const auto& e : pages_vl) {
    vl_outages.insert(e.str("outage_id"));
    vl_services.insert(e.str("services"));
  }
  CU_ASSERT_EQUAL(vl_outages.size(), static_cast<std::size_t>(kDeadLists));
  CU_ASSERT_EQUAL(vl_services.size(), static_cast<std::size_t>(kDeadLists));

  // The host comes back, a value per list and second as it would. (A first
  // value can land before collectd drops the expired entry from its cache,
  // and then notifies nothing; the next one does.)
  const auto all_cleared = [&] {
    std::size_t vl = 0;
    for (const auto& e : events(xm, "byvl")) vl += e.is("clear") && vl_outages.count(e.str("outage_id"));
    return vl >= static_cast<std::size_t>(kDeadLists) && count(events(xm, "byhost"), "clear") >= 1;
  };
  bool cleared = false;
  for (int i = 0; i < 20 && !cleared; ++i) {
    feed();
    cleared = xmtest::wait_until(all_cleared, 1s);
  }
  dump(xm, {&central}, cleared, "the dead host's return was not cleared");
  XM_REQUIRE(cleared);
  std::map<std::string, int> clears;
  for (const auto& e : events(xm))
    if (e.is("clear")) ++clears[e.function_id + " " + e.str("outage_id")];
  CU_ASSERT_EQUAL(clears.size(), static_cast<std::size_t>(kDeadLists) + 1);
  CU_ASSERT_EQUAL(clears["byhost-clear " + host_outage], 1);
  for (const auto& id : vl_outages) CU_ASSERT_EQUAL(clears["byvl-clear " + id], 1);
  // The host's clear lists every member it had: ten, then "and 20 more".
  const auto by_host = events(xm, "byhost-clear");
  XM_REQUIRE(!by_host.empty());
  CU_ASSERT_EQUAL(by_host[0].str("name"), "dead-1");
  CU_ASSERT_TRUE(by_host[0].str("services").find("and 20 more") != std::string::npos);
}

// --- a storm under FloodLimit 4 --------------------------------------------------------

constexpr int kStormHosts = 50;
constexpr int kStormLists = 4;  // per host: 200 outages
constexpr int kFloodLimit = 4;

std::string storm_host(int h) {
  char name[16];
  std::snprintf(name, sizeof name, "storm-%02d", h);
  return name;
}

// At most limit events in any 60 s, as the stand-in received them. The
// plugin counts its minute when it sends, the stand-in when it records;
// loopback adds well under the 250 ms allowed here.
bool within_limit(std::vector<Clock::time_point> times, std::size_t limit) {
  std::sort(times.begin(), times.end());
  for (std::size_t i = 0; i + limit < times.size(); ++i)
    if (times[i + limit] - times[i] < 60s - 250ms) return false;
  return true;
}

// The outages of the storm, from the events: those paged on their own
// (name: their host) and the flood outage (any other name), whose name or
// description says "N outages on M hosts".
struct Tally {
  std::map<std::string, std::string> own;  // outage_id -> host/services
  std::set<std::string> flood_ids;
  long flood_outages = 0;  // the largest N any flood event announced
  long flood_hosts = 0;    // its M
  std::size_t own_pages = 0;
};

Tally tally(const std::vector<Event>& evs) {
  std::set<std::string> hosts;
  for (int h = 0; h < kStormHosts; ++h) hosts.insert(storm_host(h));
  static const std::regex counts(R"(([0-9]+) outages? on ([0-9]+) hosts?)");
  Tally t;
  for (const auto& e : evs) {
    if (!e.is("outage")) continue;
    if (hosts.count(e.str("name"))) {
      t.own[e.str("outage_id")] = e.str("name") + "/" + e.str("services");
      ++t.own_pages;
      continue;
    }
    t.flood_ids.insert(e.str("outage_id"));
    std::smatch m;
    const std::string text = e.str("name") + " " + e.str("description");
    if (std::regex_search(text, m, counts) && std::stol(m[1]) >= t.flood_outages) {
      t.flood_outages = std::stol(m[1]);
      t.flood_hosts = std::stol(m[2]);
    }
  }
  return t;
}

// 200 outages on 50 hosts at once, then all recover, with FloodLimit 4: at
// most 4 outage events and 4 clears reach the stand-in in any minute; every
// outage is paged on its own or counted in the flood outage; every paged
// outage gets one clear; nothing dead-lettered; ReportStats counts the
// folded ones. A minute or more: the flood is paged at once, with its
// first member, and re-paged with them all when the next minute's budget
// allows.
void test_storm_flood_limit() {
  xmtest::Standin xm;
  xmtest::TempDir csv;
  CollectdProcess c("Timeout 1000\n" + xmtest::csv_block(csv.path()) + fleet_thresholds() +
                    xmatters_block(integration("ops", xm, "ops", "    FloodLimit " + std::to_string(kFloodLimit) + "\n")));
  XM_REQUIRE(start(c));
  const auto put_all = [&](double value) {
    bool ok = true;
    for (int l = 0; l < kStormLists; ++l)
      for (int h = 0; h < kStormHosts; ++h) ok = c.putval(storm_host(h), "fleet/gauge-" + std::to_string(l), value) && ok;
    return ok;
  };
  CU_ASSERT_TRUE(put_all(50));  // first values: collectd's OKAYs, nothing sent
  CU_ASSERT_TRUE(put_all(95));
  constexpr long kOutages = kStormHosts * kStormLists;
  const bool counted = xmtest::wait_until(
      [&] {
        const Tally t = tally(events(xm));
        return static_cast<long>(t.own.size()) + t.flood_outages >= kOutages;
      },
      100s);
  dump(xm, {&c}, counted, "the storm's outages were not all paged or folded");
  Tally t = tally(events(xm));
  CU_ASSERT_EQUAL(static_cast<long>(t.own.size()) + t.flood_outages, kOutages);
  CU_ASSERT_EQUAL(t.own_pages, t.own.size());  // each paged once
  CU_ASSERT_EQUAL(t.flood_ids.size(), 1u);
  // The flood's hosts: all but those whose every outage was paged on its own.
  std::map<std::string, int> own_per_host;
  for (const auto& [id, key] : t.own) ++own_per_host[key.substr(0, key.find('/'))];
  long fully_own = 0;
  for (const auto& [host, n] : own_per_host) fully_own += n == kStormLists;
  CU_ASSERT_EQUAL(t.flood_hosts, kStormHosts - fully_own);
  // On to the recovery even so: the clears, the pacing and the counters
  // are checked whatever the flood's pages said.

  CU_ASSERT_TRUE(put_all(50));
  std::set<std::string> paged;
  for (const auto& [id, key] : t.own) paged.insert(id);
  paged.insert(t.flood_ids.begin(), t.flood_ids.end());
  const auto clears_of = [&] {
    std::map<std::string, int> n;
    for (const auto& e : events(xm))
      if (e.is("clear")) ++n[e.str("outage_id")];
    return n;
  };
  const bool cleared = xmtest::wait_until(
      [&] {
        const auto n = clears_of();
        return std::all_of(paged.begin(), paged.end(), [&](const std::string& id) { return n.count(id) > 0; });
      },
      150s);
  dump(xm, {&c}, cleared, "not every paged outage of the storm was cleared");
  XM_REQUIRE(cleared);
  const auto clears = clears_of();
  CU_ASSERT_EQUAL(clears.size(), paged.size());  // no clear of an outage never paged
  for (const auto& [id, n] : clears) CU_ASSERT_EQUAL(n, 1);

  const auto all = events(xm);
  std::vector<Clock::time_point> outage_times, clear_times;
  for (const auto& e : all) (e.is("outage") ? outage_times : clear_times).push_back(e.time);
  const bool paced = within_limit(outage_times, kFloodLimit) && within_limit(clear_times, kFloodLimit);
  dump(xm, {}, paced, "more than FloodLimit events in a minute");
  CU_ASSERT_TRUE(paced);
  CU_ASSERT_EQUAL(xm.request_count(), all.size());  // nothing refused or retried
  CU_ASSERT_EQUAL(dead_letters(c), "");

  // ReportStats: total_events-folded counts the outages folded into the
  // flood. A DERIVE, whose GETVAL is a rate: read as collectd's csv plugin
  // stores it, the counter itself.
  const long folded = kOutages - static_cast<long>(t.own.size());  // all not paged on their own
  std::optional<double> written;
  const bool stat = xmtest::wait_until(
      [&] {
        written = xmtest::last_csv_value(csv.path() + "/testhost/xmatters-ops", "total_events-folded-");
        return written == static_cast<double>(folded);
      },
      10s);
  if (!stat)
    std::fprintf(stderr, "\n--- total_events-folded: %s, %ld outages not paged on their own\n",
                 written ? std::to_string(*written).c_str() : "none", folded);
  CU_ASSERT_TRUE(stat);
}

// --- an HA pair -------------------------------------------------------------------------

// One edge, two centrals (network Server twice), each delivering to its
// own functions of one stand-in: every event arrives twice, with the same
// outage_id and event_id (threshold outages: the values carry the edge's
// times, so both centrals see the same notification times).
void test_ha_pair_agrees() {
  xmtest::Standin xm;
  const auto port_a = xmtest::free_udp_port();
  auto port_b = xmtest::free_udp_port();
  while (port_b == port_a) port_b = xmtest::free_udp_port();
  const std::string common = "Timeout 1000\n" + fleet_thresholds();
  CollectdProcess a(common + network_listen(port_a) + xmatters_block(integration("ops", xm, "a")));
  CollectdProcess b(common + network_listen(port_b) + xmatters_block(integration("ops", xm, "b")));
  CollectdProcess edge(network_servers({port_a, port_b}));
  XM_REQUIRE(start(a));
  XM_REQUIRE(start(b));
  XM_REQUIRE(start(edge));
  const auto wait_each = [&](std::size_t n, const char* what) {
    const bool ok = xmtest::wait_until([&] { return events(xm, "a").size() >= n && events(xm, "b").size() >= n; }, 20s);
    dump(xm, {&a, &b}, ok, what);
    return ok;
  };
  // A warning escalated to a failure, then cleared; a failure, then cleared.
  CU_ASSERT_TRUE(edge.putval("ha-1", "fleet/gauge-0", 85));
  CU_ASSERT_TRUE(edge.putval("ha-1", "fleet/gauge-1", 95));
  XM_REQUIRE(wait_each(2, "the first pages"));
  CU_ASSERT_TRUE(edge.putval("ha-1", "fleet/gauge-0", 95));
  XM_REQUIRE(wait_each(3, "the escalation"));
  CU_ASSERT_TRUE(edge.putval("ha-1", "fleet/gauge-0", 50));
  CU_ASSERT_TRUE(edge.putval("ha-1", "fleet/gauge-1", 50));
  XM_REQUIRE(wait_each(5, "the clears"));

  const auto ids = [&](const std::string& prefix) {
    std::multiset<std::string> out;
    for (const auto& e : events(xm, prefix))
      out.insert(e.str("event_type") + " " + e.str("severity") + " " + e.str("services") + " " + e.str("outage_id") +
                 " " + e.str("event_id"));
    return out;
  };
  const auto from_a = ids("a");
  const auto from_b = ids("b");
  CU_ASSERT_EQUAL(from_a.size(), 5u);
  CU_ASSERT_TRUE(from_a == from_b);
  if (from_a != from_b) {
    std::fprintf(stderr, "\n--- central a sent:\n");
    for (const auto& s : from_a) std::fprintf(stderr, "%s\n", s.c_str());
    std::fprintf(stderr, "--- central b sent:\n");
    for (const auto& s : from_b) std::fprintf(stderr, "%s\n", s.c_str());
  }
  std::set<std::string> outage_ids, event_ids;
  for (const auto& e : events(xm, "a")) {
    outage_ids.insert(e.str("outage_id"));
    event_ids.insert(e.str("event_id"));
    CU_ASSERT_TRUE(valid_id(e.str("outage_id")));
    CU_ASSERT_TRUE(valid_id(e.str("event_id")));
  }
  CU_ASSERT_EQUAL(outage_ids.size(), 2u);
  CU_ASSERT_EQUAL(event_ids.size(), 5u);
  // The Idempotency-Key of each request is its event_id, on both.
  for (const auto& r : xm.requests()) {
    const auto body = xmtest::parse_json(r.body);
    CU_ASSERT_EQUAL(r.headers.count("idempotency-key") ? r.headers.at("idempotency-key") : "<absent>",
                    xmtest::json_string_member(body.get(), "event_id"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {
                         {"fleet",
                          {
                              {"edge_to_central", xmtest::guarded<test_edge_to_central>},
                              {"dead_host", xmtest::guarded<test_dead_host>},
                              {"ha_pair_agrees", xmtest::guarded<test_ha_pair_agrees>},
                              {"storm_flood_limit", xmtest::guarded<test_storm_flood_limit>},
                          }},
                     });
}
