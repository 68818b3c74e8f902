// collectd-xmatters resend and test (collectd-xmatters(1)), as operators run
// them: the built command against a real collectd with the plugin, and the
// xMatters stand-in.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "collectd_harness.h"
#include "delivery/dead_letter.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::contains;
using xmtest::Live;
using xmtest::one_line;
using xmtest::Run;
using xmtest::shell_quote;

// Refuses the next n requests with 400: their events are dead-lettered.
void refuse_next(xmtest::Standin& xm, std::size_t n) {
  xmtest::Standin::Reply bad;
  bad.status = 400;
  xm.script(std::vector<xmtest::Standin::Reply>(n, bad));
}

// --- resend ----------------------------------------------------------------------

// A page refused with 400 and resent once the stand-in takes it: the same
// event_id and Idempotency-Key, and the letter is out of dead-letter.jsonl
// when the command returns.
void test_resend_event_id_after_400() {
  Live t;
  XM_REQUIRE(t.start());
  refuse_next(t.xm, 1);
  CU_ASSERT_TRUE(t.c.putval("e2e-rs/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 1; }, 20s));
  const std::string event_id = t.field(0, "event_id");
  XM_REQUIRE(!event_id.empty());
  CU_ASSERT_EQUAL(t.letters()[0].event.event_id, event_id);

  const Run r = t.command({"resend", event_id});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(contains(r.out, "queued"));
  CU_ASSERT_TRUE(contains(r.out, event_id));
  CU_ASSERT_TRUE(t.letters().empty());
  CU_ASSERT_FALSE(contains(xmtest::read_file(t.dead_letter_path()), event_id));
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), 2u);
  CU_ASSERT_EQUAL(t.field(1, "event_id"), event_id);
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "outage");
  CU_ASSERT_EQUAL(t.request(1).headers["idempotency-key"], event_id);
  CU_ASSERT_EQUAL(t.request(0).headers["idempotency-key"], event_id);

  // Gone from the file, so not a dead letter any more.
  const Run again = t.command({"resend", event_id});
  CU_ASSERT_EQUAL(again.status, 1);
  CU_ASSERT_TRUE(one_line(again.out));
  CU_ASSERT_TRUE(contains(again.out, "no dead letter has the event_id"));
}

// An outage event dead-lettered whose clear was delivered since: skipped by
// default (left in the file, nothing sent), sent with --include-cleared and
// followed by its clear.
void test_resend_cleared_outage() {
  Live t;
  XM_REQUIRE(t.start());
  refuse_next(t.xm, 1);
  CU_ASSERT_TRUE(t.c.putval("e2e-cl/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 1; }, 20s));
  CU_ASSERT_TRUE(t.c.putval("e2e-cl/gauge", 40));
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  XM_REQUIRE(xmtest::wait_until([&] { return !t.letters().empty() && t.letters()[0].cleared_by; }, 20s));
  const std::string event_id = t.field(0, "event_id"), clear_id = t.field(1, "event_id");
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "clear");

  Run r = t.command({"resend", "--all"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(contains(r.out, "skipped"));
  CU_ASSERT_TRUE(contains(r.out, event_id));
  CU_ASSERT_TRUE(contains(r.out, "cleared"));
  CU_ASSERT_FALSE(contains(r.out, "queued"));
  CU_ASSERT_EQUAL(t.letters().size(), 1u);

  r = t.command({"resend", "--include-cleared", event_id});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(t.letters().empty());
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  // Nothing went between (the skipped run sent nothing): the outage event,
  // then its clear again, with their own ids.
  CU_ASSERT_EQUAL(t.xm.request_count(), 4u);
  CU_ASSERT_EQUAL(t.field(2, "event_id"), event_id);
  CU_ASSERT_EQUAL(t.field(2, "event_type"), "outage");
  CU_ASSERT_EQUAL(t.request(2).function_id, "outage-fn");
  CU_ASSERT_EQUAL(t.field(3, "event_id"), clear_id);
  CU_ASSERT_EQUAL(t.field(3, "event_type"), "clear");
  CU_ASSERT_EQUAL(t.request(3).function_id, "clear-fn");
  CU_ASSERT_EQUAL(t.request(3).headers["idempotency-key"], clear_id);
}

// resend --all: every letter of several outages, each delivered once with
// its event_id; --json has the same fields; an unknown id or integration
// is one line (exit 1), arguments missing a usage error (exit 2).
void test_resend_all() {
  Live t("    FloodLimit 0\n");  // three refused and three resent: six pages in the minute
  XM_REQUIRE(t.start());
  refuse_next(t.xm, 3);
  for (const char* id : {"e2e-a/gauge", "e2e-b/gauge", "e2e-c/gauge"}) CU_ASSERT_TRUE(t.c.putval(id, 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 3; }, 20s));
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < 3; ++i) ids.push_back(t.field(i, "event_id"));

  Run r = t.command({"resend", "no-such-event"});
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_TRUE(one_line(r.out));
  r = t.command({"resend", "--all", "--integration", "nope"});
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_TRUE(one_line(r.out) && contains(r.out, "nope"));
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"resend"}, {"resend", "--all", ids[0]}, {"resend", "--frob"}}) {
    r = t.command(bad);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_TRUE(one_line(r.out));
  }
  CU_ASSERT_EQUAL(t.xm.request_count(), 3u);
  CU_ASSERT_EQUAL(t.letters().size(), 3u);

  r = t.command({"--json", "resend", "--all", "--integration", "ops"});
  CU_ASSERT_EQUAL(r.status, 0);
  const auto doc = xmtest::parse_json(r.out);
  XM_REQUIRE(doc != nullptr);
  const json_t* resent = json_object_get(doc.get(), "resent");
  CU_ASSERT_EQUAL(json_array_size(resent), 3u);
  CU_ASSERT_EQUAL(json_array_size(json_object_get(doc.get(), "skipped")), 0u);
  CU_ASSERT_TRUE(json_is_true(json_object_get(doc.get(), "dead_letter_file_rewritten")));
  CU_ASSERT_TRUE(t.letters().empty());
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  std::multiset<std::string> sent;
  for (std::size_t i = 3; i < t.xm.request_count(); ++i) {
    sent.insert(t.field(i, "event_id"));
    CU_ASSERT_EQUAL(t.request(i).headers["idempotency-key"], t.field(i, "event_id"));
  }
  CU_ASSERT_TRUE(sent == std::multiset<std::string>(ids.begin(), ids.end()));

  r = t.command({"resend", "--all"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(contains(r.out, "no dead letters"));
}

// collectd killed -9 while resend --all hands 40 dead letters back (the kill
// as soon as the first resent page reaches xMatters, which answers 503 until
// the restart): after the restart, each letter is either queued or still in
// dead-letter.jsonl, never both and never neither; a second resend --all
// takes what is left, and every page is then accepted exactly once, with
// its original event_id.
void test_resend_cut_short_by_kill() {
  constexpr std::size_t kLetters = 40;
  Live t("    FloodLimit 0\n");  // 40 pages refused, then resent, within the minute
  XM_REQUIRE(t.start());
  refuse_next(t.xm, kLetters);
  for (std::size_t i = 0; i < kLetters; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-r" + std::to_string(i) + "/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == kLetters; }, 30s));
  std::set<std::string> ids;
  for (const auto& l : t.letters()) ids.insert(l.event.event_id);
  XM_REQUIRE(ids.size() == kLetters);

  xmtest::Standin::Reply busy;
  busy.status = 503;
  t.xm.set_default_reply(busy);
  const std::size_t before = t.xm.request_count();
  const std::string out = t.c.dir() + "/resend.out";
  const std::string cmd = shell_quote(xmtest::command_bin()) + " --config " + shell_quote(t.c.config_path()) +
                          " resend --all >" + shell_quote(out) + " 2>&1 &";
  XM_REQUIRE(std::system(cmd.c_str()) == 0);
  XM_REQUIRE(t.xm.wait_for_requests(before + 1, 30s));
  t.c.kill9();

  // Every letter is in exactly one place: the spool or the file.
  std::set<std::string> queued, lettered;
  for (const auto& p : xmatters::read_spool(t.c.base_dir() + "/xmatters").pending) queued.insert(p.event.event_id);
  for (const auto& l : t.letters()) lettered.insert(l.event.event_id);
  std::size_t both = 0;
  for (const auto& id : ids) {
    CU_ASSERT_TRUE(queued.count(id) + lettered.count(id) >= 1);
    both += queued.count(id) * lettered.count(id);
  }
  // A letter both queued and still in the file (the kill between the two
  // writes) is dropped from the file at the next start, not sent twice.
  t.xm.set_default_reply(xmtest::Standin::Reply{});
  XM_REQUIRE(t.start());
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == lettered.size() - both; }, 20s));
  if (!t.letters().empty()) CU_ASSERT_EQUAL(t.command({"resend", "--all"}).status, 0);
  XM_REQUIRE(xmtest::wait_until([&] { return t.xm.accepted_count() >= kLetters; }, 30s));
  XM_REQUIRE(xmtest::wait_until(
      [&] { return xmatters::read_spool(t.c.base_dir() + "/xmatters").pending.empty(); }, 20s));
  std::multiset<std::string> accepted;
  for (const auto& r : t.xm.requests())
    if (r.status / 100 == 2 && r.headers.count("idempotency-key") > 0) accepted.insert(r.headers.at("idempotency-key"));
  CU_ASSERT_EQUAL(accepted.size(), kLetters);
  CU_ASSERT_TRUE(std::set<std::string>(accepted.begin(), accepted.end()) == ids);
  CU_ASSERT_TRUE(t.letters().empty());
}

// collectd killed while resend had a skipped outage event durable in the
// spool, before it took it back out (collectd-xmatters(1) RESEND): its
// outage cleared after it was dead-lettered (the letter marked), and the
// spool holds the event as resend appended it. The next start does not
// send it (it would page for a resolved outage that nothing clears) and
// keeps its letter, as resend would have.
void test_resend_skipped_then_killed() {
  Live t;
  XM_REQUIRE(t.start());
  refuse_next(t.xm, 1);
  CU_ASSERT_TRUE(t.c.putval("e2e-s/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 1u; }, 20s));
  CU_ASSERT_TRUE(t.c.putval("e2e-s/gauge", 50));  // its clear, delivered: the letter is marked
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 1u && t.letters()[0].cleared_by; }, 20s));
  t.c.kill9();
  xmatters::Event event = t.letters()[0].event;
  {
    // What resend had made durable when collectd was killed.
    xmtest::CapturingLogger log;
    xmatters::Spool spool(t.spool_dir(), log);
    event.change.clear();
    event.created = xmatters::Clock::now();
    spool.append(event, xmatters::Spool::Room::Free);
  }
  const std::size_t before = t.xm.request_count();
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.wait_for_log("left by a resend that skipped them"));
  CU_ASSERT_TRUE(xmtest::wait_until(
      [&] { return xmatters::read_spool(t.spool_dir()).pending.empty(); }, 20s));
  // Proof that nothing was waiting: a new page goes, and is the only request.
  CU_ASSERT_TRUE(t.c.putval("e2e-s2/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), before + 1);
  const auto requests = t.xm.requests();
  for (std::size_t i = before; i < requests.size(); ++i)
    CU_ASSERT_NOT_EQUAL(requests[i].headers.count("idempotency-key") > 0 ? requests[i].headers.at("idempotency-key") : "",
                        event.event_id);
  XM_REQUIRE(t.letters().size() == 1u);
  CU_ASSERT_EQUAL(t.letters()[0].event.event_id, event.event_id);
}

// Whether a thread of process pid waits in open(2) for a reader of a FIFO.
bool waits_on_fifo(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream in(task.path() / "wchan");
    std::string wchan;
    if (std::getline(in, wchan) && wchan == "wait_for_partner") return true;
  }
  return false;
}

// collectd killed -9 between a delivered clear's mark in dead-letter.jsonl
// and its leaving the spool (collectd-xmatters(1) RESEND): the instant is
// held open by making dead-letter.jsonl a FIFO that nobody reads, so that
// the plugin waits in the mark's open(2). The next start sends the clear
// again, once, its letter is marked, and resend --all skips the outage
// event. With the clear acknowledged before the mark, the kill left no
// clear and an unmarked letter, and resend paged for the resolved outage.
void test_clear_killed_before_it_left_the_spool() {
  Live t;
  XM_REQUIRE(t.start());
  refuse_next(t.xm, 1);
  CU_ASSERT_TRUE(t.c.putval("e2e-k/gauge", 95));
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 1u; }, 20s));
  const std::string page_id = t.letters()[0].event.event_id;
  const std::string letters = xmtest::read_file(t.dead_letter_path());
  XM_REQUIRE(::unlink(t.dead_letter_path().c_str()) == 0);
  XM_REQUIRE(::mkfifo(t.dead_letter_path().c_str(), 0600) == 0);
  CU_ASSERT_TRUE(t.c.putval("e2e-k/gauge", 50));  // its clear
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  const std::string clear_id = t.field(1, "event_id");
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "clear");
  XM_REQUIRE(xmtest::wait_until([&] { return waits_on_fifo(t.c.pid()); }, 20s));
  t.c.kill9();
  XM_REQUIRE(::unlink(t.dead_letter_path().c_str()) == 0);
  xmtest::write_file(t.dead_letter_path(), letters);  // as it was: the mark never written
  XM_REQUIRE(::chmod(t.dead_letter_path().c_str(), 0600) == 0);

  XM_REQUIRE(t.start());
  // The clear again, same event_id, and the letter marked by it.
  XM_REQUIRE(t.xm.wait_for_accepted(2, 20s));
  CU_ASSERT_EQUAL(t.field(2, "event_id"), clear_id);
  CU_ASSERT_EQUAL(t.request(2).headers["idempotency-key"], clear_id);
  XM_REQUIRE(xmtest::wait_until([&] { return t.letters().size() == 1u && t.letters()[0].cleared_by; }, 20s));
  CU_ASSERT_EQUAL(t.letters()[0].cleared_by->event_id, clear_id);

  const Run r = t.command({"resend", "--all"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(contains(r.out, "skipped"));
  CU_ASSERT_FALSE(contains(r.out, "queued"));
  CU_ASSERT_EQUAL(t.letters().size(), 1u);
  // Proof that nothing was queued: a new page goes, and is the only request.
  CU_ASSERT_TRUE(t.c.putval("e2e-k2/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  CU_ASSERT_EQUAL(t.xm.request_count(), 4u);
  std::size_t clears = 0;
  for (const auto& request : t.xm.requests()) {
    const auto key = request.headers.find("idempotency-key");
    if (key == request.headers.end()) continue;
    clears += key->second == clear_id;
    if (key->second == page_id) CU_ASSERT_EQUAL(request.status, 400);  // only its first, refused, request
  }
  CU_ASSERT_EQUAL(clears, 2u);
}

// Which recovered outage events the start drops as skipped by a resend
// (skipped_resends): only those with a letter, whose letter is marked
// cleared and whose clear is not queued again with them (that is
// --include-cleared), or whose outage's clear is queued before them (it
// was in flight when resend skipped them).
void test_skipped_resends_rule() {
  using xmatters::Event;
  using xmatters::EventType;
  const auto event = [](const std::string& id, EventType type, const std::string& outage) {
    Event e;
    e.event_id = id;
    e.integration = "ops";
    e.outage_id = outage;
    e.type = type;
    return e;
  };
  xmatters::DeadLetters file;
  for (const char* outage : {"marked", "marked-with-clear", "clear-before", "open"}) {
    xmatters::DeadLetter l;
    l.event = event(std::string("page-") + outage, EventType::Outage, outage);
    if (std::string(outage).rfind("marked", 0) == 0) l.cleared_by = event(std::string("clear-") + outage, EventType::Clear, outage);
    file.letters.push_back(l);
  }
  const std::vector<Event> recovered = {
      event("page-marked", EventType::Outage, "marked"),
      event("page-marked-with-clear", EventType::Outage, "marked-with-clear"),
      event("clear-marked-with-clear", EventType::Clear, "marked-with-clear"),
      event("clear-clear-before", EventType::Clear, "clear-before"),
      event("page-clear-before", EventType::Outage, "clear-before"),
      event("page-open", EventType::Outage, "open"),
      event("page-no-letter", EventType::Outage, "marked"),
  };
  const std::set<std::string> expected = {"page-marked", "page-clear-before"};
  CU_ASSERT_TRUE(xmatters::skipped_resends(recovered, file) == expected);
}

// --- test ----------------------------------------------------------------------

// A test outage then its clear through the plugin to the stand-in: marked
// as a test sent by the sudo user, both answers' requestIds printed, exit 0;
// no outage of the tracker, nothing left in the spool.
void test_test_pages_and_clears() {
  Live t;
  XM_REQUIRE(t.start());
  Run r = t.command({"test"}, {"SUDO_USER=alice", "USER=root"});
  CU_ASSERT_EQUAL(r.status, 0);
  XM_REQUIRE(t.xm.request_count() == 2u);
  CU_ASSERT_EQUAL(t.request(0).function_id, "outage-fn");
  CU_ASSERT_EQUAL(t.field(0, "event_type"), "outage");
  CU_ASSERT_EQUAL(t.field(0, "services"), "xmatters/test");
  CU_ASSERT_TRUE(contains(t.field(0, "description"), "test"));
  CU_ASSERT_TRUE(contains(t.field(0, "description"), "alice"));
  CU_ASSERT_EQUAL(t.request(1).function_id, "clear-fn");
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "clear");
  CU_ASSERT_EQUAL(t.field(1, "outage_id"), t.field(0, "outage_id"));
  CU_ASSERT_EQUAL(t.field(1, "services"), "xmatters/test");
  CU_ASSERT_EQUAL(t.request(0).headers["idempotency-key"], t.field(0, "event_id"));
  for (std::size_t i = 0; i < 2; ++i) {
    XM_REQUIRE(!t.request(i).request_id.empty());
    CU_ASSERT_TRUE(contains(r.out, t.request(i).request_id));
  }
  CU_ASSERT_TRUE(contains(r.out, "202"));

  // --json, one integration, no clear: the same answer's fields.
  r = t.command({"test", "--integration", "ops", "--no-clear", "--json"}, {"USER=bob"});
  CU_ASSERT_EQUAL(r.status, 0);
  XM_REQUIRE(t.xm.request_count() == 3u);
  CU_ASSERT_TRUE(contains(t.field(2, "description"), "bob"));
  const auto doc = xmtest::parse_json(r.out);
  XM_REQUIRE(doc != nullptr);
  const json_t* ops = json_array_get(json_object_get(doc.get(), "integrations"), 0);
  CU_ASSERT_EQUAL(xmtest::json_string_member(ops, "name"), "ops");
  CU_ASSERT_EQUAL(xmtest::json_string_member(ops, "outage_id"), t.field(2, "outage_id"));
  const json_t* page = json_object_get(ops, "outage");
  CU_ASSERT_TRUE(json_is_true(json_object_get(page, "delivered")));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(page, "status")), 202);
  CU_ASSERT_EQUAL(xmtest::json_string_member(page, "request_id"), t.request(2).request_id);
  CU_ASSERT_TRUE(json_is_null(json_object_get(ops, "clear")));

  // No outage opened, nothing queued: the tracker's records and the spool
  // know nothing of the tests, and a restart sends nothing.
  // (A FLOOD_SENT record per request is there: a test page counts in
  // FloodLimit's minute as xMatters' filter counts it.)
  const auto spool = xmatters::read_spool(t.c.base_dir() + "/xmatters");
  std::size_t outage_changes = 0;
  for (const auto& change : spool.changes) {
    for (std::size_t at = 0; at < change.size();) {
      xmatters::spool_format::Record rec{};
      const std::size_t n = xmatters::spool_format::parse_record(change, at, &rec);
      XM_REQUIRE(n > 0);
      outage_changes += xmatters::spool_format::is_change(rec.type) ? 1 : 0;
      at += n;
    }
  }
  CU_ASSERT_EQUAL(outage_changes, 0u);
  CU_ASSERT_TRUE(spool.pending.empty());
  XM_REQUIRE(t.c.restart());
  CU_ASSERT_TRUE(t.c.putval("e2e-after/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(4, 20s));
  CU_ASSERT_EQUAL(t.field(3, "services"), "e2e-after/gauge");

  CU_ASSERT_EQUAL(t.command({"test", "--integration", "nope"}).status, 1);
  CU_ASSERT_EQUAL(t.command({"test", "extra"}).status, 2);
}

// A stand-in that answers 500, 401 or not at all: exit 1 with the reason,
// no secret, no clear after the refused outage event, no retry.
void test_test_failures() {
  Live t;
  XM_REQUIRE(t.start());
  for (const int status : {500, 401}) {
    xmtest::Standin::Reply reply;
    reply.status = status;
    t.xm.set_default_reply(reply);
    const std::size_t before = t.xm.request_count();
    const Run r = t.command({"test"});
    CU_ASSERT_EQUAL(r.status, 1);
    CU_ASSERT_TRUE(contains(r.out, std::to_string(status)));
    CU_ASSERT_TRUE(contains(r.out, "not delivered"));
    CU_ASSERT_FALSE(contains(r.out, "test-key"));
    CU_ASSERT_EQUAL(t.xm.request_count(), before + 1);
  }
  t.xm.set_default_reply({});
  t.xm.stop();
  const Run r = t.command({"test", "--no-clear"});
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_TRUE(contains(r.out, "not delivered"));
  CU_ASSERT_FALSE(contains(r.out, "test-key"));
  t.xm.restart();
  // Nothing of the tests is left to send.
  CU_ASSERT_EQUAL(t.command({"test", "--no-clear"}).status, 0);
  const auto spool = xmatters::read_spool(t.c.base_dir() + "/xmatters");
  CU_ASSERT_TRUE(spool.pending.empty());
}

// collectd killed while a test page waits for its answer: the next start
// drops it (one INFO line), and sends it neither as a test nor as a page.
void test_test_cut_short_by_kill() {
  Live t;
  XM_REQUIRE(t.start());
  xmtest::Standin::Reply slow;
  slow.delay = 60s;
  t.xm.script({slow});
  const std::string out = t.c.dir() + "/test.out";
  const std::string cmd = shell_quote(xmtest::command_bin()) + " --config " + shell_quote(t.c.config_path()) +
                          " test --no-clear >" + shell_quote(out) + " 2>&1 &";
  XM_REQUIRE(std::system(cmd.c_str()) == 0);
  XM_REQUIRE(xmtest::wait_until([&] { return t.xm.pending_count() == 1; }, 20s));
  const auto before = xmatters::read_spool(t.c.base_dir() + "/xmatters");
  XM_REQUIRE(before.pending.size() == 1u);
  CU_ASSERT_TRUE(before.pending[0].event.test);
  const std::string event_id = before.pending[0].event.event_id;
  t.c.kill9();
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.wait_for_log("1 test event(s) of collectd-xmatters test left by the last run dropped"));
  CU_ASSERT_TRUE(xmatters::read_spool(t.c.base_dir() + "/xmatters").pending.empty());
  CU_ASSERT_TRUE(t.c.putval("e2e-k/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  std::size_t sent = 0;
  for (const auto& r : t.xm.requests())
    if (r.headers.count("idempotency-key") > 0 && r.headers.at("idempotency-key") == event_id) ++sent;
  // The request cut short by the kill is recorded only once its (long)
  // delay ends; no other went.
  CU_ASSERT_EQUAL(sent, 0u);
  // The command was cut short too: one line.
  CU_ASSERT_TRUE(xmtest::wait_until([&] { return one_line(xmtest::read_file(out)); }, 60s));
}

// collectd stopped while collectd-xmatters test waits for the answer to its
// page, which xMatters holds (Timeout 600): collectd exits on its own
// (SIGTERM; the harness sends SIGKILL only 30 s later) while the page is
// still held unanswered, so neither the command's wait nor the test's
// request in flight held up the shutdown; no clear follows; the command
// says the plugin is stopping and exits 1.
void test_test_does_not_block_shutdown() {
  Live::Config config;
  config.timeout = "600";
  Live t(config);
  XM_REQUIRE(t.start());
  xmtest::Standin::Reply held;
  held.delay = 1200s;
  t.xm.set_default_reply(held);
  const std::string out = t.c.dir() + "/test.out";
  const std::string rc = t.c.dir() + "/test.rc";
  const std::string cmd = "(" + shell_quote(xmtest::command_bin()) + " --config " + shell_quote(t.c.config_path()) +
                          " test >" + shell_quote(out) + " 2>&1; echo $? >" + shell_quote(rc) + ") &";
  XM_REQUIRE(std::system(cmd.c_str()) == 0);
  XM_REQUIRE(xmtest::wait_until([&] { return t.xm.pending_count() == 1; }, 20s));
  const std::optional<int> status = t.c.stop();
  XM_REQUIRE(status.has_value());
  CU_ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  CU_ASSERT_EQUAL(t.xm.pending_count(), 1u);  // the page, still held
  CU_ASSERT_EQUAL(t.xm.request_count(), 0u);  // nothing answered
  XM_REQUIRE(xmtest::wait_until([&] { return !xmtest::read_file(rc).empty(); }, 30s));
  CU_ASSERT_EQUAL(xmtest::read_file(rc), "1\n");
  const std::string printed = xmtest::read_file(out);
  CU_ASSERT_TRUE(contains(printed, "the plugin is stopping"));
  CU_ASSERT_FALSE(contains(printed, "test-key"));
  if (!contains(printed, "the plugin is stopping")) std::fprintf(stderr, "\n--- test printed:\n%s---\n", printed.c_str());
}

// A 401 (a revoked key) pauses the integration: nothing dead-lettered, one
// ERROR saying so, the pages wait in order; once the key works again,
// collectd-xmatters test is delivered and resumes the integration at once,
// and the waiting pages follow with their own event_ids.
void test_401_pauses_until_test_delivers() {
  Live t;
  XM_REQUIRE(t.start());
  xmtest::Standin::Reply refused;
  refused.status = 401;
  t.xm.set_default_reply(refused);
  CU_ASSERT_TRUE(t.c.putval("e2e-p1/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_requests(1, 20s));
  CU_ASSERT_TRUE(t.c.wait_for_log("paused: HTTP 401"));
  CU_ASSERT_TRUE(t.c.putval("e2e-p2/gauge", 95));
  const std::string first = t.field(0, "event_id");
  CU_ASSERT_TRUE(t.letters().empty());
  CU_ASSERT_EQUAL(t.c.log_lines({"[error] xmatters plugin: ", "paused"}).size(), 1u);
  XM_REQUIRE(xmtest::wait_until(
      [&] { return xmatters::read_spool(t.c.base_dir() + "/xmatters").pending.size() == 2u; }, 20s));

  t.xm.set_default_reply({});
  const Run r = t.command({"test", "--no-clear"});
  CU_ASSERT_EQUAL(r.status, 0);
  XM_REQUIRE(t.xm.wait_for_accepted(3, 20s));
  std::vector<std::string> pages;
  for (const auto& q : t.xm.requests())
    if (q.status == 202 && xmtest::json_string_member(xmtest::parse_json(q.body).get(), "services") != "xmatters/test")
      pages.push_back(xmtest::json_string_member(xmtest::parse_json(q.body).get(), "event_id"));
  XM_REQUIRE(pages.size() == 2u);
  CU_ASSERT_TRUE(pages[0] == first || pages[1] == first);
  CU_ASSERT_NOT_EQUAL(pages[0], pages[1]);
  CU_ASSERT_TRUE(t.letters().empty());
}

// tinyproxy on loopback, in the foreground with its own configuration and
// log (LogLevel Connect: a line per request, CONNECT included), stopped
// with its object.
class Tinyproxy {
 public:
  Tinyproxy() : port_(xmtest::free_tcp_port()) {
    xmtest::write_file(dir_ / "tinyproxy.conf", "Port " + std::to_string(port_) +
                                                    "\nListen 127.0.0.1\nTimeout 30\nLogFile \"" + log_path() +
                                                    "\"\nLogLevel Connect\nMaxClients 10\nAllow 127.0.0.1\n");
  }
  ~Tinyproxy() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Tinyproxy(const Tinyproxy&) = delete;
  Tinyproxy& operator=(const Tinyproxy&) = delete;

  // Starts it and waits until it accepts connections.
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string conf = dir_ / "tinyproxy.conf";
      ::execlp("tinyproxy", "tinyproxy", "-d", "-c", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid_ > 0 && xmtest::wait_until([&] { return accepts(); }, 10s);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log_path() const { return dir_ / "tinyproxy.log"; }
  std::string log() const { return xmtest::read_file(log_path()); }

 private:
  bool accepts() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  }

  xmtest::TempDir dir_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

// collectd-xmatters test through a real proxy (the integration's Proxy,
// tinyproxy on loopback) to the stand-in over HTTPS, as to xMatters: the
// test page and its clear are delivered (exit 0), and tinyproxy's log shows
// the CONNECT to the stand-in that carried them.
void test_test_through_a_proxy() {
  Tinyproxy proxy;
  XM_REQUIRE(proxy.start());
  xmtest::TempDir certs;
  XM_REQUIRE(xmtest::make_test_certificates(certs.path()));
  Live::Config config;
  config.standin.tls_cert_file = certs / "server.pem";
  config.standin.tls_key_file = certs / "server.key";
  config.integration = "    Proxy \"" + proxy.url() + "\"\n    CACert \"" + certs / "ca.pem" + "\"\n";
  Live t(config);
  XM_REQUIRE(t.xm.url("x").rfind("https://127.0.0.1:", 0) == 0);
  XM_REQUIRE(t.start());
  const Run r = t.command({"test"});
  CU_ASSERT_EQUAL(r.status, 0);
  XM_REQUIRE(t.xm.request_count() == 2u);
  CU_ASSERT_EQUAL(t.field(0, "event_type"), "outage");
  CU_ASSERT_EQUAL(t.field(1, "event_type"), "clear");
  CU_ASSERT_TRUE(contains(r.out, t.request(0).request_id));
  // The stand-in's host:port, as the CONNECT names it.
  const std::string url = t.xm.url("x");
  const std::string target = url.substr(8, url.find('/', 8) - 8);
  const bool tunnelled =
      xmtest::wait_until([&] { return contains(proxy.log(), "Request (file descriptor"); }, 10s) &&
      contains(proxy.log(), ": CONNECT " + target + " HTTP/1.1");
  if (!tunnelled) std::fprintf(stderr, "\n--- tinyproxy's log:\n%s---\n", proxy.log().c_str());
  CU_ASSERT_TRUE(tunnelled);
}

// With collectd stopped: one line saying the plugin is not running, exit 1.
void test_without_collectd() {
  Live t;
  XM_REQUIRE(t.start());
  t.c.stop();
  for (const std::vector<std::string>& args : {std::vector<std::string>{"resend", "--all"}, {"test"}}) {
    const Run r = t.command(args);
    CU_ASSERT_EQUAL(r.status, 1);
    CU_ASSERT_TRUE(one_line(r.out));
    CU_ASSERT_TRUE(contains(r.out, "not running"));
  }
}

}  // namespace

int main(int argc, char** argv) {
  using xmtest::guarded;
  return xmtest::run(argc, argv,
                     {
                         {"resend",
                          {
                              {"resend_event_id_after_400", guarded<test_resend_event_id_after_400>},
                              {"resend_cleared_outage", guarded<test_resend_cleared_outage>},
                              {"resend_all", guarded<test_resend_all>},
                              {"resend_cut_short_by_kill", guarded<test_resend_cut_short_by_kill>},
                              {"resend_skipped_then_killed", guarded<test_resend_skipped_then_killed>},
                              {"clear_killed_before_it_left_the_spool",
                               guarded<test_clear_killed_before_it_left_the_spool>},
                              {"skipped_resends_rule", test_skipped_resends_rule},
                          }},
                         {"test",
                          {
                              {"test_pages_and_clears", guarded<test_test_pages_and_clears>},
                              {"test_failures", guarded<test_test_failures>},
                              {"test_cut_short_by_kill", guarded<test_test_cut_short_by_kill>},
                              {"test_does_not_block_shutdown", guarded<test_test_does_not_block_shutdown>},
                              {"401_pauses_until_test_delivers", guarded<test_401_pauses_until_test_delivers>},
                              {"test_through_a_proxy", guarded<test_test_through_a_proxy>},
                          }},
                         {"stopped",
                          {
                              {"without_collectd", guarded<test_without_collectd>},
                          }},
                     });
}
