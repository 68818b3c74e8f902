// Silences as operators use them (collectd-xmatters(1) SILENCES): the built
// command against a real collectd with its threshold plugin and the
// plugin delivering to the xMatters stand-in. Each test ends silences with
// `silence expire` rather than waiting for them.
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "collectd_harness.h"
#include "control/channel.h"
#include "silence/silence.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::contains;
using xmtest::Live;
using xmtest::Run;
using xmtest::seconds_of;

// The words of the line of text that contains part.
std::vector<std::string> row_of(const std::string& text, const std::string& part) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!contains(line, part)) continue;
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
  }
  return {};
}

// The word after word in row ("<none>" when there is none).
std::string word_after(const std::vector<std::string>& row, const std::string& word) {
  const auto at = std::find(row.begin(), row.end(), word);
  return at == row.end() || at + 1 == row.end() ? "<none>" : *(at + 1);
}

// A silence for one host: its failures send nothing while another host
// pages; expired with its outage open, that outage pages once with its real
// start; a second outage that opened and closed inside it never shows up.
// status and outages show what is silenced and by what.
void test_silence_holds_one_host_until_expired() {
  Live t;
  XM_REQUIRE(t.start());
  const std::string id = t.silence({"host=web1"});
  XM_REQUIRE(!id.empty());

  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-a/gauge", 95));
  CU_ASSERT_TRUE(t.c.putval("web2", "e2e-a/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  CU_ASSERT_EQUAL(t.host(0), "web2");

  // web1's outage is open and silenced, by the silence.
  xmtest::JsonPtr held;
  XM_REQUIRE(xmtest::wait_until([&] { return (held = t.outage("web1/e2e-a/gauge")) != nullptr; }, 20s));
  CU_ASSERT_EQUAL(xmtest::json_string_member(held.get(), "state"), "silenced");
  CU_ASSERT_EQUAL(xmtest::json_string_member(held.get(), "covered_by"), "silence " + id);
  const std::string start = xmtest::json_string_member(held.get(), "start");
  const auto status = t.document({"status"});
  const json_t* ops = json_array_get(json_object_get(status.get(), "integrations"), 0);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ops, "silenced")), 1);
  const json_t* active = json_object_get(status.get(), "active_silences");
  XM_REQUIRE(json_array_size(active) == 1u);
  CU_ASSERT_EQUAL(xmtest::json_string_member(json_array_get(active, 0), "id"), id);
  const Run text = t.command({"outages"});
  CU_ASSERT_TRUE(contains(text.out, "silenced by silence " + id));
  // Nothing of it was paged: no LAST_PAGE (null; "-" after START in text).
  CU_ASSERT_TRUE(json_is_null(json_object_get(held.get(), "last_page")));
  CU_ASSERT_EQUAL(word_after(row_of(text.out, "web1/e2e-a/gauge"), start), "-");
  const auto paged = t.outage("web2/e2e-a/gauge");  // web2's was: its LAST_PAGE is a time
  XM_REQUIRE(paged != nullptr);
  CU_ASSERT_EQUAL(xmtest::json_string_member(paged.get(), "last_page"), xmtest::json_string_member(paged.get(), "start"));
  CU_ASSERT_EQUAL(word_after(row_of(text.out, "web2/e2e-a/gauge"), xmtest::json_string_member(paged.get(), "start")),
                  xmtest::json_string_member(paged.get(), "last_page"));

  // A second outage opens and closes inside the silence.
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-b/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.outage("web1/e2e-b/gauge") != nullptr; }, 20s));
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-b/gauge", 10));
  XM_REQUIRE(xmtest::wait_until([&] { return t.outage("web1/e2e-b/gauge") == nullptr; }, 20s));

  const Run expired = t.command({"silence", "expire", id});
  CU_ASSERT_EQUAL(expired.status, 0);
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  XM_REQUIRE(t.host(1) == "web1");
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "outage");
  CU_ASSERT_EQUAL(seconds_of(t.field(1, "start_time")), seconds_of(start));
  CU_ASSERT_EQUAL(t.field(1, "event_id"), t.field(1, "outage_id") + "-1");  // the held page took no place
  CU_ASSERT_TRUE(t.c.wait_for_log("silence " + id + " ends"));
  const auto released = t.outage("web1/e2e-a/gauge");
  XM_REQUIRE(released != nullptr);
  CU_ASSERT_TRUE(json_is_string(json_object_get(released.get(), "last_page")));

  // A fence: a third host's page comes after whatever web1 would send.
  CU_ASSERT_TRUE(t.c.putval("web3", "e2e-c/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), 3u);
  CU_ASSERT_TRUE(t.requests_for("e2e-b/gauge").empty());
  CU_ASSERT_EQUAL(t.command({"silence", "list"}).out.find(id), std::string::npos);
  CU_ASSERT_TRUE(contains(t.command({"silence", "list", "--expired"}).out, id));
  CU_ASSERT_EQUAL(t.command({"silence", "expire", id}).status, 1);  // ended already
}

// A page sent, then a silence: the escalation is held, and the OKAY's clear
// goes (xMatters must terminate what it was told).
void test_clear_of_a_paged_outage_goes() {
  Live t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-x/gauge", 85));  // WARNING: paged
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  const std::string id = t.silence({"host=~web[0-9]+", "plugin=e2e"});
  XM_REQUIRE(!id.empty());
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-x/gauge", 95));  // FAILURE: held
  xmtest::JsonPtr o;
  XM_REQUIRE(xmtest::wait_until(
      [&] {
        o = t.outage("web1/e2e-x/gauge");
        return o && xmtest::json_string_member(o.get(), "state") == "silenced";
      },
      20s));
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-x/gauge", 10));  // OKAY
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "clear");
  CU_ASSERT_EQUAL(t.field(1, "outage_id"), t.field(0, "outage_id"));
  CU_ASSERT_EQUAL(t.field(1, "event_id"), t.field(0, "outage_id") + "-2");  // the held escalation took none
  CU_ASSERT_EQUAL(t.command({"silence", "expire", id}).status, 0);
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-y/gauge", 95));  // a fence: nothing of web1 came before it
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  CU_ASSERT_EQUAL(t.host(2), "db1");
  CU_ASSERT_EQUAL(t.xm.request_count(), 3u);
}

// A silence survives a restart and a kill -9; one whose end passes while
// collectd is down pages its open outage at the next start, with its real
// start.
void test_silences_survive_restart_and_kill() {
  Live t;
  XM_REQUIRE(t.start());
  const std::string id = t.silence({"host=web1"});
  XM_REQUIRE(!id.empty());
  const std::string short_id = t.silence({"host=web2"}, "8s");
  XM_REQUIRE(!short_id.empty());
  const xmatters::TimePoint short_end = xmatters::Clock::now() + 8s;
  CU_ASSERT_TRUE(t.c.putval("web2", "e2e-s/gauge", 95));
  xmtest::JsonPtr o;
  XM_REQUIRE(xmtest::wait_until([&] { return (o = t.outage("web2/e2e-s/gauge")) != nullptr; }, 20s));
  // Covered (the 8 s had not passed), or the rest proves nothing.
  XM_REQUIRE(xmtest::json_string_member(o.get(), "covered_by") == "silence " + short_id);
  const std::string start = xmtest::json_string_member(o.get(), "start");

  XM_REQUIRE(t.c.stop().has_value());
  // With collectd stopped, list reads SpoolDir.
  const Run offline = t.command({"silence", "list"});
  CU_ASSERT_EQUAL(offline.status, 0);
  CU_ASSERT_TRUE(contains(offline.out, id));
  CU_ASSERT_TRUE(contains(offline.out, "not running"));
  CU_ASSERT_EQUAL(t.command({"silence", "expire", id}).status, 1);  // needs the plugin
  CU_ASSERT_EQUAL(t.command({"silence", "add", "host=x", "--duration", "1h", "--comment", "c"}).status, 1);
  XM_REQUIRE(xmtest::wait_until([&] { return xmatters::Clock::now() > short_end + 1s; }, 20s));

  XM_REQUIRE(t.start());
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  CU_ASSERT_EQUAL(t.host(0), "web2");
  CU_ASSERT_EQUAL(seconds_of(t.field(0, "start_time")), seconds_of(start));
  CU_ASSERT_TRUE(contains(t.command({"silence", "list"}).out, id));

  t.c.kill9();
  XM_REQUIRE(t.start());
  const auto doc = t.document({"silence", "list"});
  const json_t* list = json_object_get(doc.get(), "silences");
  XM_REQUIRE(json_array_size(list) == 1u);
  CU_ASSERT_EQUAL(xmtest::json_string_member(json_array_get(list, 0), "id"), id);
  CU_ASSERT_EQUAL(xmtest::json_string_member(json_array_get(list, 0), "state"), "active");
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-k/gauge", 95));  // still silenced
  CU_ASSERT_TRUE(t.c.putval("web3", "e2e-k/gauge", 95));  // a fence
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(t.host(1), "web3");
  XM_REQUIRE(xmtest::wait_until([&] { return t.outage("web1/e2e-k/gauge") != nullptr; }, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), 2u);
}

// GroupBy host and FloodLimit 4 (three outages page on their own in a
// minute, the last room is the flood outage's): a silence covers four hosts
// of a storm of seven; the covered hosts neither count towards the limit
// nor fold, so the three others page each on its own and no flood outage
// opens (counted, the covered four would have folded all three).
void test_covered_hosts_outside_flood_limit() {
  Live t("    GroupBy \"host\"\n    FloodLimit 4\n");
  XM_REQUIRE(t.start());
  const std::string id = t.silence({"host=~h[1-4]"});
  XM_REQUIRE(!id.empty());
  for (int i = 1; i <= 7; ++i) CU_ASSERT_TRUE(t.c.putval("h" + std::to_string(i), "e2e-f/gauge", 95));
  // Every host's outage is open: the covered ones silenced, none folded.
  xmtest::JsonPtr doc;
  const auto open = [&] { return json_array_size(json_object_get(doc.get(), "outages")); };
  XM_REQUIRE(xmtest::wait_until(
      [&] {
        doc = t.document({"outages"});
        return open() >= 7u;
      },
      20s));
  CU_ASSERT_EQUAL(open(), 7u);
  const json_t* list = json_object_get(doc.get(), "outages");
  for (std::size_t i = 0; i < json_array_size(list); ++i) {
    const json_t* o = json_array_get(list, i);
    const std::string host = xmtest::json_string_member(o, "host");
    CU_ASSERT_EQUAL(xmtest::json_string_member(o, "kind"), "host");
    const bool covered = host <= "h4";
    CU_ASSERT_EQUAL(xmtest::json_string_member(o, "state"), covered ? "silenced" : "paged");
    if (covered) CU_ASSERT_EQUAL(xmtest::json_string_member(o, "covered_by"), "silence " + id);
  }
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  std::set<std::string> paged;
  for (std::size_t i = 0; i < 3; ++i) {
    CU_ASSERT_EQUAL(t.field(i, "event_type"), "outage");
    paged.insert(t.host(i));
  }
  CU_ASSERT_TRUE((paged == std::set<std::string>{"h5", "h6", "h7"}));
  const auto status = t.document({"status"});
  const json_t* ops = json_array_get(json_object_get(status.get(), "integrations"), 0);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ops, "folded")), 0);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ops, "silenced")), 4);
  CU_ASSERT_EQUAL(t.xm.request_count(), 3u);
}

// ReportStats: total_events-silenced counts the outage events held back
// (collectd-xmatters(5) STATISTICS): a silenced host's page and its
// escalation are two, another host's page is not one. collectd has the
// value (unixsock's LISTVAL and GETVAL, which answers a DERIVE's rate); the
// count itself is read from the csv plugin, which writes counters as they are.
void test_silenced_events_counted() {
  xmtest::TempDir csv;
  Live t("", "  ReportStats true\n", xmtest::csv_block(csv.path()));
  XM_REQUIRE(t.start());
  const std::string metric = "testhost/xmatters-ops/total_events-silenced";
  XM_REQUIRE(xmtest::wait_until([&] { return t.c.unixsock().command("GETVAL " + xmtest::quote_unixsock(metric)).ok(); }, 20s));
  bool listed = false;
  for (const auto& line : t.c.unixsock().command("LISTVAL").lines) listed = listed || contains(line, " " + metric);
  CU_ASSERT_TRUE(listed);
  const std::string id = t.silence({"host=web1"});
  XM_REQUIRE(!id.empty());
  // One after the other: collectd's threads may hand over two values at
  // once out of order, and the older notification is then ignored.
  const auto severity = [&](const char* s) {
    return xmtest::wait_until(
        [&] {
          const auto o = t.outage("web1/e2e-m/gauge");
          return o && xmtest::json_string_member(o.get(), "severity") == s;
        },
        20s);
  };
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-m/gauge", 85));  // WARNING: held
  XM_REQUIRE(severity("WARNING"));
  CU_ASSERT_TRUE(t.c.putval("web1", "e2e-m/gauge", 95));  // FAILURE, an escalation: held
  XM_REQUIRE(severity("FAILURE"));
  CU_ASSERT_TRUE(t.c.putval("web2", "e2e-m/gauge", 95));  // paged
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  CU_ASSERT_EQUAL(t.host(0), "web2");
  const std::string dir = csv.path() + "/testhost/xmatters-ops";
  std::optional<double> count;
  const bool two = xmtest::wait_until(
      [&] { return (count = xmtest::last_csv_value(dir, "total_events-silenced-")) && *count == 2; }, 20s);
  if (!two) std::fprintf(stderr, "\n--- total_events-silenced: %s\n", count ? std::to_string(*count).c_str() : "none");
  CU_ASSERT_TRUE(two);
  CU_ASSERT_EQUAL(t.xm.request_count(), 1u);
}

// Usage errors exit 2 with one line, before the plugin is asked.
void test_silence_usage_errors() {
  Live t;
  XM_REQUIRE(t.start());
  const std::vector<std::vector<std::string>> bad = {
      {"silence", "add", "--duration", "1h", "--comment", "c"},                          // no matcher
      {"silence", "add", "host=a", "--duration", "1h"},                                  // no comment
      {"silence", "add", "host=a", "--comment", "c"},                                    // no end
      {"silence", "add", "host=a", "--duration", "32d", "--comment", "c"},               // over 31 days
      {"silence", "add", "hostname=a", "--duration", "1h", "--comment", "c"},            // unknown field
      {"silence", "add", "host!=a", "--duration", "1h", "--comment", "c"},               // unknown operator
      {"silence", "add", "host=~web[", "--duration", "1h", "--comment", "c"},            // bad regex
      {"silence", "add", "host=a", "--end", "tomorrow", "--comment", "c"},               // bad time
      {"silence", "add", "host=a", "--duration", "1h", "--comment", "c", "--integration", "nope"},
      {"silence", "expire"},
      {"silence", "list", "extra"},
      {"silence"},
  };
  for (const auto& args : bad) {
    const Run r = t.command(args);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(!r.out.empty() && r.out.find('\n') == r.out.size() - 1);
  }
  CU_ASSERT_EQUAL(t.command({"silence", "list"}).out.find("host=a"), std::string::npos);

  // The plugin checks what it is sent too (a client other than the command).
  const auto ask = [&](const char* json) {
    const xmatters::Json args(json_loads(json, 0, nullptr));
    return xmatters::control::call(t.c.base_dir() + "/xmatters", "silence-add", args.get(), 20s);
  };
  using Status = xmatters::control::CallResult::Status;
  auto r = ask(R"({"matchers": ["host=a"], "duration": "1h", "comment": "c", "integration": "nope"})");
  CU_ASSERT_EQUAL(static_cast<int>(r.status), static_cast<int>(Status::Refused));
  CU_ASSERT_TRUE(contains(r.message, "no integration \"nope\" is configured"));
  r = ask(R"({"matchers": ["host=a"], "duration": "32d", "comment": "c"})");
  CU_ASSERT_EQUAL(static_cast<int>(r.status), static_cast<int>(Status::Refused));
  CU_ASSERT_TRUE(contains(r.message, "at most 31 days"));
  r = ask(R"({"matchers": [], "duration": "1h", "comment": "c"})");
  CU_ASSERT_EQUAL(static_cast<int>(r.status), static_cast<int>(Status::Refused));
  r = ask(R"({"matchers": ["host=a"], "duration": "1h", "comment": "c", "integration": "ops"})");
  CU_ASSERT_EQUAL(static_cast<int>(r.status), static_cast<int>(Status::Ok));
  const std::string id = xmtest::json_string_member(r.result.get(), "id");
  CU_ASSERT_TRUE(contains(t.command({"silence", "list"}).out, id));

  // A comment with a line break and a terminal escape sequence: list's text
  // keeps one row per silence and sends no control character to the
  // terminal; --json keeps the comment as it was given.
  const std::string comment = "line one\nline two \x1b[31mred\x1b[0m";
  const Run added = t.command({"silence", "add", "host=b", "--duration", "1h", "--comment", comment});
  XM_REQUIRE(added.status == 0 && added.out.size() == 37);
  const std::string out = t.command({"silence", "list"}).out;
  CU_ASSERT_EQUAL(std::count(out.begin(), out.end(), '\n'), 3);  // the header and two silences
  CU_ASSERT_TRUE(out.find('\x1b') == std::string::npos);
  CU_ASSERT_TRUE(contains(out, "line one line two "));
  const auto doc = t.document({"silence", "list"});
  const json_t* list = json_object_get(doc.get(), "silences");
  bool kept = false;
  for (std::size_t i = 0; i < json_array_size(list); ++i)
    kept = kept || xmtest::json_string_member(json_array_get(list, i), "comment") == comment;
  CU_ASSERT_TRUE(kept);
}

}  // namespace

int main(int argc, char** argv) {
  using xmtest::guarded;
  return xmtest::run(argc, argv,
                     {
                         {"silences",
                          {
                              {"silence_holds_one_host_until_expired", guarded<test_silence_holds_one_host_until_expired>},
                              {"clear_of_a_paged_outage_goes", guarded<test_clear_of_a_paged_outage_goes>},
                              {"silences_survive_restart_and_kill", guarded<test_silences_survive_restart_and_kill>},
                              {"covered_hosts_outside_flood_limit", guarded<test_covered_hosts_outside_flood_limit>},
                              {"silenced_events_counted", guarded<test_silenced_events_counted>},
                              {"silence_usage_errors", guarded<test_silence_usage_errors>},
                          }},
                     });
}
