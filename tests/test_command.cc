// collectd-xmatters, the operator's command (collectd-xmatters(1)), run as
// operators run it: the built binary against real collectd daemons, real
// configuration files and SpoolDirs.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <sstream>
#include <string>
#include <vector>

#include "collectd_harness.h"
#include "config/conf_file.h"
#include "control/health.h"
#include "control/views.h"
#include "store/spool.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::CollectdProcess;

using xmtest::Run;
using xmtest::run_command;
using xmtest::run_command_stdout;
using xmtest::shell_quote;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The plugin's lines, as "ERROR: message" / "WARNING: message", from
// collectd's log (logfile's "[time] [error] xmatters plugin: ...").
std::multiset<std::string> plugin_lines_of_collectd(const std::string& log) {
  std::multiset<std::string> out;
  for (const auto& line : lines_of(log)) {
    for (const auto& [tag, level] : {std::pair{"[error] ", "ERROR: "}, {"[warning] ", "WARNING: "}}) {
      const std::size_t at = line.find(std::string(tag) + "xmatters plugin: ");
      if (at != std::string::npos) out.insert(level + line.substr(at + std::strlen(tag)));
    }
  }
  return out;
}

std::multiset<std::string> plugin_lines_of_check(const std::string& out) {
  std::multiset<std::string> lines;
  for (const auto& line : lines_of(out))
    if (line.rfind("ERROR: xmatters plugin: ", 0) == 0 || line.rfind("WARNING: xmatters plugin: ", 0) == 0)
      lines.insert(line);
  return lines;
}

std::string join(const std::multiset<std::string>& s) {
  std::string out;
  for (const auto& l : s) out += "  " + l + "\n";
  return out;
}

std::string integration(const std::string& name, const std::string& body) {
  return "  <Integration \"" + name + "\">\n" + body + "  </Integration>\n";
}

const std::string kUrl = "    OutageURL \"http://127.0.0.1:9/api/integration/1/functions/f/triggers?apiKey=KEY\"\n";

struct Case {
  const char* name;
  std::string config;  // after the harness's own part
};

// The plugin's configurations the other tests use, every mistake the
// plugin refuses, and odd syntax.
std::vector<Case> parity_cases(const std::string& dir) {
  xmtest::write_file(dir + "/secret", "from-file\n");
  xmtest::write_file(dir + "/broken.json", "{\"id\": \"$outage_id\",\n");
  std::string big = "{\"d\": \"";
  for (int i = 0; i < 50; ++i) big += "$description ";
  xmtest::write_file(dir + "/big.json", big + "\"}");
  xmtest::write_file(dir + "/file", "x");
  ::mkdir((dir + "/shared").c_str(), 0700);
  ::chmod((dir + "/shared").c_str(), 0777);
  ::mkdir((dir + "/listable").c_str(), 0750);
  ::mkdir((dir + "/planted").c_str(), 0700);
  ::symlink((dir + "/file").c_str(), (dir + "/planted/lock").c_str());
  const auto block = [&](const std::string& body) { return "LoadPlugin xmatters\n<Plugin xmatters>\n" + body + "</Plugin>\n"; };
  const auto spool = "  SpoolDir \"" + dir + "/spool\"\n";
  return {
      {"good", block(integration("ops", kUrl))},
      {"good, default SpoolDir", block(integration("ops", kUrl))},
      {"good, every option",
       block("  QueueLimit 1000\n  ReportStats false\n" +
             integration("ops", kUrl + "    ClearURL \"http://127.0.0.1:9/c\"\n    User \"u\"\n    PasswordFile \"" +
                                    dir + "/secret\"\n    Target \"a\" \"b\"\n    MinSeverity \"failure\"\n"
                                    "    Host \"^db\"\n    Plugin \".\"\n    Type \".\"\n    SendClear false\n"
                                    "    RenotifyInterval 0.5\n    Timeout 2.5\n    Connections 2\n"
                                    "    RetryMaxAge 60\n    GroupBy \"host\"\n    FloodLimit 4\n"
                                    "    Header \"X-A: b\"\n    Proxy \"\"\n") +
             integration("dba", kUrl))},
      {"warnings", block(integration("ops", "    OutageURL \"http://xmatters.invalid/x?apiKey=KEY\"\n"
                                            "    VerifyPeer false\n    VerifyHost false\n    Password \"p\"\n"))},
      {"unknown option", block(spool + integration("ops", kUrl + "    Bogus 1\n"))},
      {"unknown plugin option", block(spool + "  Frobnicate true\n" + integration("ops", kUrl))},
      {"missing OutageURL", block(spool + integration("ops", "    MinSeverity \"failure\"\n"))},
      {"bad URL scheme", block(spool + integration("ops", "    OutageURL \"ftp://127.0.0.1/x\"\n"))},
      {"bad regex", block(spool + integration("ops", kUrl + "    Host \"([a-z\"\n"))},
      {"Password with PasswordFile",
       block(spool + integration("ops", kUrl + "    User \"u\"\n    Password \"hunter2-secret\"\n    PasswordFile \"" +
                                            dir + "/secret\"\n"))},
      {"unreadable PasswordFile", block(spool + integration("ops", kUrl + "    PasswordFile \"" + dir + "/nope\"\n"))},
      {"bad MinSeverity", block(spool + integration("ops", kUrl + "    MinSeverity \"critical\"\n"))},
      {"duplicate Integration names", block(spool + integration("ops", kUrl) + integration("ops", kUrl))},
      {"no Integration", block(spool + "  QueueLimit 10\n")},
      {"wrong value type", block(spool + integration("ops", kUrl + "    Timeout \"ten\"\n"))},
      {"invalid Template", block(spool + integration("ops", kUrl + "    Template \"" + dir + "/broken.json\"\n"))},
      {"Template that could be too large", block(spool + integration("ops", kUrl + "    Template \"" + dir + "/big.json\"\n"))},
      {"SpoolDir a file", block("  SpoolDir \"" + dir + "/file\"\n" + integration("ops", kUrl))},
      {"SpoolDir without parent", block("  SpoolDir \"" + dir + "/missing/spool\"\n" + integration("ops", kUrl))},
      {"SpoolDir writable by others", block("  SpoolDir \"" + dir + "/shared\"\n" + integration("ops", kUrl))},
      {"SpoolDir listable", block("  SpoolDir \"" + dir + "/listable\"\n" + integration("ops", kUrl))},
      {"SpoolDir lock a symlink", block("  SpoolDir \"" + dir + "/planted\"\n" + integration("ops", kUrl))},
      // Syntax and collectd's own handling.
      {"string for a boolean", block(spool + "  ReportStats \"true\"\n" + integration("ops", kUrl))},
      {"capitalised boolean is a string", block(spool + "  ReportStats True\n" + integration("ops", kUrl))},
      {"yes and off", block(spool + "  ReportStats yes\n" + integration("ops", kUrl + "    SendClear off\n"))},
      {"hexadecimal and octal-looking numbers",
       block(spool + "  QueueLimit 0x10\n" + integration("ops", kUrl + "    Connections 010\n"))},
      {"exponent without sign", block(spool + "  QueueLimit 1e5\n" + integration("ops", kUrl))},
      {"float with exponent", block(spool + "  QueueLimit 1.5e+3\n" + integration("ops", kUrl))},
      {"negative number", block(spool + "  QueueLimit -1\n" + integration("ops", kUrl))},
      {"escapes in strings",
       block(spool + integration("ops", kUrl + "    Host \"^db\\\\.[0-9]+\\\"x\"\n    Target \"a\\tb\"\n"))},
      {"string continued over lines",
       block(spool + integration("ops", "    OutageURL \"http://127.0.0.1:9/api/\\\n        x?apiKey=KEY\"\n"))},
      {"line continuation", block(spool + integration("ops", "    OutageURL \\\n  \"http://127.0.0.1:9/x\"\n"))},
      {"comments and CRLF",
       block(spool + "  # a comment\r\n" + integration("ops", kUrl + "    Target \"x\" # trailing\r\n"))},
      {"unquoted string value", block(spool + integration("ops", kUrl + "    MinSeverity failure\n"))},
      {"dots dropped from an unquoted value", block(spool + integration("ops", kUrl + "    Target a.b\n"))},
      {"address as a value", block(spool + integration("ops", kUrl + "    Target 10.0.0.1:80\n"))},
      {"quoted plugin name", "LoadPlugin \"xmatters\"\n<Plugin \"xmatters\">\n" + spool + integration("ops", kUrl) + "</Plugin>\n"},
      {"plugin name in capitals", "LoadPlugin xmatters\n<Plugin XMatters>\n" + spool + integration("ops", kUrl) + "</Plugin>\n"},
      {"block before LoadPlugin", "<Plugin xmatters>\n" + spool + integration("ops", kUrl) + "</Plugin>\nLoadPlugin xmatters\n"},
      {"two blocks", block(spool + integration("ops", kUrl)) + "<Plugin xmatters>\n" + integration("dba", kUrl) + "</Plugin>\n"},
      {"LoadPlugin without a block", "LoadPlugin xmatters\n"},
      {"no LoadPlugin", "<Plugin xmatters>\n  Bogus 1\n</Plugin>\n"},
      {"Include inside the block", block(spool + "  Include \"/nonexistent\"\n" + integration("ops", kUrl))},
      {"empty block", "LoadPlugin xmatters\n<Plugin xmatters>\n</Plugin>\n"},
      {"block closed in other case", "LoadPlugin xmatters\n<Plugin xmatters>\n" + integration("ops", kUrl) + "</plugin>\n"},
      {"unclosed block", "LoadPlugin xmatters\n<Plugin xmatters>\n" + integration("ops", kUrl)},
      {"option without value", block(spool + integration("ops", kUrl + "    SendClear\n"))},
      {"no newline at the end", block(spool + integration("ops", kUrl)) + "Interval 1"},
      {"unterminated quote", block(spool + integration("ops", kUrl + "    Target \"abc\n"))},
      {"global option with two values", "Hostname \"a\" \"b\"\n" + block(spool + integration("ops", kUrl))},
      {"LoadPlugin with a number", "LoadPlugin 1\n"},
  };
}

// collectd -T (the configuration read, the plugin's init run once) and
// check agree on every case: the verdict and the plugin's ERROR and
// WARNING lines, word for word.
void test_check_parity_with_collectd() {
  xmtest::TempDir files;
  int disagreements = 0, refused = 0, with_lines = 0;
  for (const auto& c : parity_cases(files.path())) {
    CollectdProcess collectd(c.config);
    const std::string conf = collectd.write_config();
    const Run mine = run_command({"--config", conf, "check"});  // first: collectd -T creates SpoolDir
    const int theirs = collectd.check_config();
    const auto their_lines = plugin_lines_of_collectd(collectd.log());
    const auto my_lines = plugin_lines_of_check(mine.out);
    const bool same_verdict = (theirs == 0) == (mine.status == 0) && (mine.status == 0 || mine.status == 1);
    refused += theirs != 0;
    with_lines += !their_lines.empty();
    if (std::getenv("XM_TEST_VERBOSE") != nullptr)
      std::fprintf(stderr, "case \"%s\": collectd -T %d, check %d\n%s", c.name, theirs, mine.status, join(my_lines).c_str());
    if (!same_verdict || their_lines != my_lines) {
      ++disagreements;
      std::fprintf(stderr, "\n--- case \"%s\": collectd -T %d, check %d\ncollectd:\n%scheck:\n%s(check's output:\n%s)\n",
                   c.name, theirs, mine.status, join(their_lines).c_str(), join(my_lines).c_str(), mine.out.c_str());
    }
  }
  CU_ASSERT_EQUAL(disagreements, 0);
  // The comparison compared something: most cases are refused, with words.
  CU_ASSERT_TRUE(refused >= 20);
  CU_ASSERT_TRUE(with_lines >= 25);
}

// The package's layout: collectd.conf includes conf.d, whose *.conf files
// hold the plugin's block; other files there are not read.
void test_check_through_conf_d_include() {
  xmtest::TempDir t;
  ::mkdir((t / "conf.d").c_str(), 0755);
  xmtest::write_file(t / "collectd.conf", "BaseDir \"" + t.path() + "/base\"\n<Include \"" + t.path() +
                                              "/conf.d\">\n  Filter \"*.conf\"\n</Include>\n");
  xmtest::write_file(t / "conf.d/10-load.conf", "LoadPlugin xmatters\n");
  xmtest::write_file(t / "conf.d/xmatters.conf", "<Plugin xmatters>\n" + integration("ops", kUrl) + "</Plugin>\n");
  xmtest::write_file(t / "conf.d/xmatters.conf.dpkg-old", "<Plugin xmatters>\n  Bogus 1\n</Plugin>\n");
  Run r = run_command({"--config", t / "collectd.conf", "check"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(r.out.find("OK: 1 integration(s), SpoolDir " + t.path() + "/base/xmatters") != std::string::npos);
  CU_ASSERT_FALSE(xmtest::file_exists(t / "base"));  // check creates nothing

  xmtest::write_file(t / "conf.d/xmatters.conf",
                     "<Plugin xmatters>\n" + integration("ops", "    OutageURL \"ftp://x/y?apiKey=SECRET\"\n") + "</Plugin>\n");
  r = run_command({"--config", t / "collectd.conf", "check"});
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_TRUE(r.out.find("ERROR: xmatters plugin: Integration \"ops\": OutageURL") != std::string::npos);
  CU_ASSERT_TRUE(r.out.find("SECRET") == std::string::npos);

  const Run json = run_command({"--json", "--config", t / "collectd.conf", "check"});
  const auto doc = xmtest::parse_json(json.out);
  XM_REQUIRE(doc != nullptr);
  CU_ASSERT_TRUE(json_is_false(json_object_get(doc.get(), "ok")));
  CU_ASSERT_EQUAL(json_array_size(json_object_get(doc.get(), "errors")), 1u);
}

// check on the configuration a collectd is running with: its SpoolDir is
// held (collectd -T would refuse it), and that is fine.
void test_check_while_collectd_runs() {
  CollectdProcess c("LoadPlugin xmatters\n<Plugin xmatters>\n" + integration("ops", kUrl) + "</Plugin>\n");
  const bool started = c.start();
  XM_REQUIRE(started);
  const Run r = run_command({"--config", c.config_path(), "check"});
  if (r.status != 0) std::fprintf(stderr, "\n--- check:\n%s", r.out.c_str());
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_EQUAL(c.check_config(), 1);  // collectd's own check cannot do this
}

void test_usage_errors_exit_2() {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"--bogus", "check"}, {"--config"}, {"--config", "", "check"}, {"check", "extra"},
           {"--spool-dir"}}) {
    const Run r = run_command(args);
    CU_ASSERT_EQUAL(r.status, 2);
    CU_ASSERT_EQUAL(lines_of(r.out).size(), 1u);
    CU_ASSERT_TRUE(r.out.rfind("collectd-xmatters: ", 0) == 0);
  }
}

// --- status, outages, queue, dead-letters ------------------------------------------

// The secrets of the views' configuration, which no output may show.
const char* const kApiKey = "Api-K3y-View-Secret";
const char* const kHeaderValue = "Hdr-V4lue-Secret";

struct Views {
  xmtest::Standin xm{[] {
    xmtest::StandinOptions o;
    o.api_key = kApiKey;
    return o;
  }()};
  CollectdProcess collectd{
      "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"e2e\">\n    <Type \"gauge\">\n"
      "      DataSource \"value\"\n      FailureMax 90\n    </Type>\n  </Plugin>\n</Plugin>\n"
      "LoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"" +
      xm.url("outage-fn") + "\"\n    ClearURL \"" + xm.url("clear-fn") + "\"\n    Timeout 5\n    Header \"X-Token: " +
      kHeaderValue + "\"\n  </Integration>\n</Plugin>\n"};
  std::vector<std::string> outputs;  // every output of the command, for the secrets check

  std::string spool_dir() const { return collectd.base_dir() + "/xmatters"; }

  Run run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", collectd.config_path()});
    Run r = run_command(args);
    outputs.push_back(r.out);
    return r;
  }
  // The JSON document of a verb (stdout only: the note on stderr aside).
  xmtest::JsonPtr json(std::vector<std::string> args, int* status = nullptr) {
    args.insert(args.begin(), {"--config", collectd.config_path(), "--json"});
    const Run r = run_command_stdout(args);
    if (status != nullptr) *status = r.status;
    outputs.push_back(r.out);
    return xmtest::parse_json(r.out);
  }
  bool start() {
    const bool ok = collectd.start();
    if (!ok) std::fprintf(stderr, "\n--- collectd did not start; its log:\n%s---\n", collectd.log().c_str());
    return ok;
  }
  void assert_no_secret() {
    for (const auto& out : outputs) {
      CU_ASSERT_TRUE(out.find(kApiKey) == std::string::npos);
      CU_ASSERT_TRUE(out.find(kHeaderValue) == std::string::npos);
    }
    CU_ASSERT_TRUE(outputs.size() >= 5);
  }
};

// The member names of an object, sorted: the offline document must have
// the live one's.
std::set<std::string> keys_of(const json_t* object) {
  std::set<std::string> out;
  const char* key;
  const json_t* value;
  json_object_foreach(const_cast<json_t*>(object), key, value) out.insert(key);
  return out;
}

const json_t* first(const json_t* doc, const char* list) { return json_array_get(json_object_get(doc, list), 0); }

// SpoolDir's files, sizes and modification times: reading it with
// collectd stopped changes none of them.
std::map<std::string, std::string> listing(const std::string& dir) {
  std::map<std::string, std::string> out;
  const std::string text = xmtest::run_shell("ls -la --time-style=full-iso " + shell_quote(dir) + " 2>&1").out;
  for (const auto& line : lines_of(text)) out[line] = line;
  return out;
}

// The request the stand-in received to an outage function, as JSON.
xmtest::JsonPtr outage_request(const xmtest::Standin& xm) {
  for (const auto& r : xm.requests())
    if (r.function_id == "outage-fn") return xmtest::parse_json(r.body);
  return nullptr;
}

// A healthy plugin is OK; an opened outage is listed with the outage_id the
// stand-in received, through matchers; with collectd stopped the status is
// CRITICAL, and the outage is read from SpoolDir (unchanged) with the same
// fields as the running plugin's.
void test_status_and_outages_live_and_offline() {
  Views v;
  XM_REQUIRE(v.start());
  Run r = v.run({"status"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(r.out.rfind("XMATTERS OK: the plugin is running since ", 0) == 0);
  CU_ASSERT_TRUE(r.out.find("\nINTEGRATION ") != std::string::npos);

  CU_ASSERT_TRUE(v.collectd.putval("e2e-a/gauge", 95));
  XM_REQUIRE(v.xm.wait_for_accepted(1, 30s));
  const auto sent = outage_request(v.xm);
  XM_REQUIRE(sent != nullptr);
  const std::string outage_id = xmtest::json_string_member(sent.get(), "outage_id");

  int status = -1;
  auto live = v.json({"outages"}, &status);
  XM_REQUIRE(live != nullptr);
  CU_ASSERT_EQUAL(status, 0);
  CU_ASSERT_TRUE(json_is_true(json_object_get(live.get(), "running")));
  XM_REQUIRE(json_array_size(json_object_get(live.get(), "outages")) == 1);
  const json_t* o = first(live.get(), "outages");
  CU_ASSERT_EQUAL(xmtest::json_string_member(o, "outage_id"), outage_id);
  CU_ASSERT_EQUAL(xmtest::json_string_member(o, "integration"), "ops");
  CU_ASSERT_EQUAL(xmtest::json_string_member(o, "host"), CollectdProcess::kHost);
  CU_ASSERT_EQUAL(xmtest::json_string_member(o, "key"), std::string(CollectdProcess::kHost) + "/e2e-a/gauge");
  CU_ASSERT_EQUAL(xmtest::json_string_member(o, "severity"), "FAILURE");
  CU_ASSERT_EQUAL(xmtest::json_string_member(o, "state"), "paged");
  r = v.run({"outages"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(r.out.find(outage_id) != std::string::npos);
  for (const auto& [matchers, count] : std::vector<std::pair<std::vector<std::string>, std::size_t>>{
           {{"host=testhost", "plugin_instance=a"}, 1}, {{"plugin=~e2.*"}, 1}, {{"host=other"}, 0},
           {{"--integration", "dba"}, 0}, {{"--integration", "ops", "type=gauge"}, 1}}) {
    std::vector<std::string> args = {"outages"};
    args.insert(args.end(), matchers.begin(), matchers.end());
    const auto doc = v.json(args);
    XM_REQUIRE(doc != nullptr);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(doc.get(), "outages")), count);
  }
  CU_ASSERT_EQUAL(v.run({"outages", "hostname=x"}).status, 2);

  auto live_status = v.json({"status"}, &status);
  XM_REQUIRE(live_status != nullptr);
  CU_ASSERT_EQUAL(status, 0);
  CU_ASSERT_EQUAL(xmtest::json_string_member(live_status.get(), "status"), "OK");
  const json_t* ops = first(live_status.get(), "integrations");
  XM_REQUIRE(ops != nullptr);
  CU_ASSERT_EQUAL(xmtest::json_string_member(ops, "name"), "ops");
  CU_ASSERT_TRUE(json_is_true(json_object_get(ops, "running")));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ops, "open_outages")), 1);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ops, "dead_letters")), 0);
  const json_t* last = json_object_get(ops, "last_delivery");
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(last, "status")), 202);
  CU_ASSERT_EQUAL(xmtest::json_string_member(last, "outage_id"), outage_id);
  for (const char* field : {"name", "running", "queued", "oldest_queued_age", "open_outages", "dead_letters",
                            "last_delivery", "last_failure"})
    CU_ASSERT_TRUE(json_object_get(ops, field) != nullptr);

  // collectd stopped, its configuration still loading the plugin.
  XM_REQUIRE(v.collectd.stop().has_value());
  const auto before = listing(v.spool_dir());
  r = v.run({"status"});
  CU_ASSERT_EQUAL(r.status, 2);
  CU_ASSERT_TRUE(r.out.find("XMATTERS CRITICAL: the plugin is not running") != std::string::npos);
  const auto offline_status = v.json({"status"}, &status);
  XM_REQUIRE(offline_status != nullptr);
  CU_ASSERT_EQUAL(status, 2);
  CU_ASSERT_TRUE(json_is_false(json_object_get(offline_status.get(), "running")));
  CU_ASSERT_TRUE(keys_of(offline_status.get()) == keys_of(live_status.get()));
  const json_t* offline_ops = first(offline_status.get(), "integrations");
  XM_REQUIRE(offline_ops != nullptr);
  CU_ASSERT_TRUE(keys_of(offline_ops) == keys_of(ops));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(offline_ops, "open_outages")), 1);

  r = v.run({"outages"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(r.out.find("the plugin is not running") != std::string::npos);
  const auto offline = v.json({"outages"});
  XM_REQUIRE(offline != nullptr);
  XM_REQUIRE(json_array_size(json_object_get(offline.get(), "outages")) == 1);
  CU_ASSERT_TRUE(keys_of(offline.get()) == keys_of(live.get()));
  CU_ASSERT_TRUE(keys_of(first(offline.get(), "outages")) == keys_of(o));
  CU_ASSERT_EQUAL(xmtest::json_string_member(first(offline.get(), "outages"), "outage_id"), outage_id);
  CU_ASSERT_TRUE(listing(v.spool_dir()) == before);
  v.assert_no_secret();
}

// While xMatters is down, queue shows the undelivered event, its attempts
// and last error; with collectd stopped, the same event is read from
// SpoolDir, and status is CRITICAL.
void test_queue_while_xmatters_is_down() {
  Views v;
  v.xm.stop();
  XM_REQUIRE(v.start());
  CU_ASSERT_TRUE(v.collectd.putval("e2e-q/gauge", 95));
  xmtest::JsonPtr live;
  const bool failed_once = xmtest::wait_until(
      [&] {
        live = v.json({"queue"});
        const json_t* e = live ? first(live.get(), "events") : nullptr;
        return e != nullptr && json_integer_value(json_object_get(e, "attempts")) >= 1 &&
               !xmtest::json_string_member(e, "last_error").empty();
      },
      30s);
  XM_REQUIRE(failed_once);
  const json_t* e = first(live.get(), "events");
  const std::string event_id = xmtest::json_string_member(e, "event_id");
  CU_ASSERT_EQUAL(xmtest::json_string_member(e, "type"), "outage");
  CU_ASSERT_EQUAL(xmtest::json_string_member(e, "integration"), "ops");
  CU_ASSERT_EQUAL(event_id.rfind(xmtest::json_string_member(e, "outage_id") + "-", 0), 0u);
  Run r = v.run({"queue"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(r.out.find(event_id) != std::string::npos);
  CU_ASSERT_EQUAL(lines_of(r.out).size(), 2u);
  auto st = v.json({"status"});
  XM_REQUIRE(st != nullptr);
  const json_t* ops = first(st.get(), "integrations");
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ops, "queued")), 1);
  CU_ASSERT_TRUE(json_is_integer(json_object_get(ops, "oldest_queued_age")));
  CU_ASSERT_TRUE(json_is_object(json_object_get(ops, "last_failure")));
  CU_ASSERT_TRUE(json_is_string(json_object_get(ops, "failing_since")));

  XM_REQUIRE(v.collectd.stop().has_value());
  const auto before = listing(v.spool_dir());
  const auto offline = v.json({"queue"});
  XM_REQUIRE(offline != nullptr);
  XM_REQUIRE(json_array_size(json_object_get(offline.get(), "events")) == 1);
  const json_t* oe = first(offline.get(), "events");
  CU_ASSERT_EQUAL(xmtest::json_string_member(oe, "event_id"), event_id);
  CU_ASSERT_TRUE(json_is_null(json_object_get(oe, "attempts")));
  CU_ASSERT_TRUE(keys_of(oe) == keys_of(e));
  CU_ASSERT_TRUE(keys_of(offline.get()) == keys_of(live.get()));
  int status = -1;
  st = v.json({"status"}, &status);
  CU_ASSERT_EQUAL(status, 2);
  XM_REQUIRE(st != nullptr);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(first(st.get(), "integrations"), "queued")), 1);
  CU_ASSERT_TRUE(listing(v.spool_dir()) == before);

  // What was queued goes out once both are back.
  v.xm.restart();
  XM_REQUIRE(v.start());
  CU_ASSERT_TRUE(v.xm.wait_for_accepted(1, 30s));
  CU_ASSERT_TRUE(xmtest::wait_until([&] {
    const auto q = v.json({"queue"});
    return q != nullptr && json_array_size(json_object_get(q.get(), "events")) == 0;
  }));
  v.assert_no_secret();
}

// An event xMatters refuses (400) is a dead letter: listed with its
// event_id, and status is a WARNING; read from SpoolDir once collectd stops.
void test_dead_letter_is_a_warning() {
  Views v;
  xmtest::Standin::Reply refuse;
  refuse.status = 400;
  v.xm.set_default_reply(refuse);
  XM_REQUIRE(v.start());
  CU_ASSERT_TRUE(v.collectd.putval("e2e-d/gauge", 95));
  XM_REQUIRE(v.xm.wait_for_requests(1, 30s));
  const auto sent = outage_request(v.xm);
  XM_REQUIRE(sent != nullptr);
  xmtest::JsonPtr live;
  XM_REQUIRE(xmtest::wait_until([&] {
    live = v.json({"dead-letters"});
    return live != nullptr && json_array_size(json_object_get(live.get(), "dead_letters")) == 1;
  }));
  const json_t* l = first(live.get(), "dead_letters");
  CU_ASSERT_EQUAL(xmtest::json_string_member(l, "event_id"), xmtest::json_string_member(sent.get(), "event_id"));
  CU_ASSERT_EQUAL(xmtest::json_string_member(l, "outage_id"), xmtest::json_string_member(sent.get(), "outage_id"));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(l, "status")), 400);
  CU_ASSERT_TRUE(json_is_null(json_object_get(l, "cleared_by")));
  Run r = v.run({"dead-letters"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(r.out.find(xmtest::json_string_member(sent.get(), "event_id")) != std::string::npos);

  r = v.run({"status"});
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_TRUE(r.out.rfind("XMATTERS WARNING: ops: 1 dead letter(s)", 0) == 0);
  int status = -1;
  const auto st = v.json({"status"}, &status);
  CU_ASSERT_EQUAL(status, 1);
  XM_REQUIRE(st != nullptr);
  CU_ASSERT_EQUAL(xmtest::json_string_member(st.get(), "status"), "WARNING");
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(first(st.get(), "integrations"), "dead_letters")), 1);

  XM_REQUIRE(v.collectd.stop().has_value());
  const auto offline = v.json({"dead-letters"});
  XM_REQUIRE(offline != nullptr);
  XM_REQUIRE(json_array_size(json_object_get(offline.get(), "dead_letters")) == 1);
  CU_ASSERT_TRUE(keys_of(first(offline.get(), "dead_letters")) == keys_of(l));
  CU_ASSERT_EQUAL(v.run({"status"}).status, 2);  // stopped: CRITICAL outranks the WARNING
  v.assert_no_secret();
}

// status's CRITICAL for a page that is late: a SpoolDir whose oldest queued
// event is 16 minutes old is CRITICAL, one 14 minutes old is OK; read with
// no collectd running, from a configuration that does not load the plugin
// (so that "not running" is no problem of its own).
void test_status_late_event_is_critical() {
  for (const int minutes : {14, 16}) {
    xmtest::TempDir t;
    const std::string dir = t / "spool";
    {
      xmtest::CapturingLogger log;
      xmatters::Spool spool(dir, log);
      xmatters::Event e;
      e.event_id = "late-1";
      e.integration = "ops";
      e.outage_id = "late";
      e.created = xmatters::Clock::now() - std::chrono::minutes(minutes);
      e.body = "{}";
      spool.append(e, xmatters::Spool::Room::Free);
    }
    const std::string conf = t / "collectd.conf";
    xmtest::write_file(conf,
                       "<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"https://xm.example/api\"\n"
                       "  </Integration>\n</Plugin>\n");
    const Run r = run_command_stdout({"--config", conf, "--spool-dir", dir, "status"});
    const std::vector<std::string> lines = lines_of(r.out);
    XM_REQUIRE(!lines.empty());
    if (minutes == 14) {
      CU_ASSERT_EQUAL(r.status, 0);
      CU_ASSERT_TRUE(lines[0].rfind("XMATTERS OK: ", 0) == 0);
    } else {
      CU_ASSERT_EQUAL(r.status, 2);
      CU_ASSERT_TRUE(lines[0].rfind("XMATTERS CRITICAL: ops: the oldest queued event is 96", 0) == 0);
    }
    if (lines[0].find(minutes == 14 ? "OK" : "is 96") == std::string::npos) std::fprintf(stderr, "\n--- status, %d min:\n%s", minutes, r.out.c_str());
  }
}

// outages shows an outage whose page waits for FloodLimit's pacing: with
// FloodLimit 1 a WARNING's page takes the minute's one outage request, and
// the FAILURE that follows (an escalation) waits for the next minute: its
// outage is waiting_for_flood_limit, in --json and in text, while xMatters
// has had only the first page.
void test_outages_waiting_for_flood_limit() {
  xmtest::Live t("    FloodLimit 1\n");
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-f/gauge", 85));  // WARNING: paged
  XM_REQUIRE(t.xm.wait_for_accepted(1, 20s));
  CU_ASSERT_TRUE(t.c.putval("e2e-f/gauge", 95));  // FAILURE: its escalation waits
  const std::string key = std::string(CollectdProcess::kHost) + "/e2e-f/gauge";
  std::string state;
  const bool waiting = xmtest::wait_until([&] {
    const auto o = t.outage(key);
    state = o ? xmtest::json_string_member(o.get(), "state") : "<no outage>";
    return state == "waiting_for_flood_limit";
  }, 20s);
  if (!waiting) std::fprintf(stderr, "\n--- the outage's state: %s\n", state.c_str());
  CU_ASSERT_TRUE(waiting);
  CU_ASSERT_EQUAL(t.xm.request_count(), 1u);
  const Run r = t.command({"outages"});
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_TRUE(xmtest::contains(r.out, "waiting_for_flood_limit"));
}

// status's WARNING for deliveries failing over 5 minutes (collectd-xmatters(1)
// EXIT STATUS), judged as the command judges the running plugin's status
// document, whose ages count to the `now` the test gives it: failing for
// 300 s is no problem; for 301 s, one WARNING naming the integration and
// the last failure's reason (on one line); none once nothing waits to be
// delivered, however old the failure; the quiet integration never.
void test_status_failing_warning() {
  using xmatters::IntegrationStatus;
  namespace control = xmatters::control;
  const xmatters::TimePoint since = xmatters::Clock::now();
  IntegrationStatus ops;
  ops.name = "ops";
  ops.queued = 1;
  ops.oldest_queued = since;
  ops.failing_since = since;
  ops.last_failure = IntegrationStatus::Failure{since, "HTTP 503\nfrom the gateway"};
  IntegrationStatus quiet;
  quiet.name = "quiet";
  const auto judge = [&](std::chrono::seconds failing_for) {
    const control::Source source{true, since, 1234L, "/var/lib/collectd/xmatters", since + failing_for};
    const auto doc = xmtest::parse_json(control::status_document(source, {ops, quiet}, {}, control::Filter{}));
    return control::judge_health(doc.get(), true);
  };
  control::Health h = judge(300s);
  CU_ASSERT_EQUAL(h.state, control::kOk);
  CU_ASSERT_TRUE(h.problems.empty());
  h = judge(301s);
  CU_ASSERT_EQUAL(h.state, control::kWarning);
  XM_REQUIRE(h.problems.size() == 1u);
  CU_ASSERT_EQUAL(h.problems[0], "ops: deliveries failing for 301 s (HTTP 503 from the gateway)");
  ops.queued = 0;  // its last event dead-lettered: nothing is late any more
  ops.oldest_queued.reset();
  h = judge(3600s);
  CU_ASSERT_EQUAL(h.state, control::kOk);
  CU_ASSERT_TRUE(h.problems.empty());
}

// A user who may not read SpoolDir gets one line saying to run it as root
// or as collectd's user: status UNKNOWN (3), the other verbs 1.
void test_unreadable_spool_dir() {
  if (::geteuid() != 0) return;  // needs another user to be
  Views v;
  XM_REQUIRE(v.start());
  for (const bool running : {true, false}) {
    if (!running) XM_REQUIRE(v.collectd.stop().has_value());
    for (const auto& [verb, expected] : std::vector<std::pair<std::string, int>>{
             {"status", 3}, {"queue", 1}, {"outages", 1}, {"dead-letters", 1}}) {
      xmtest::CommandOptions as_nobody;
      as_nobody.prefix = "setpriv --reuid=nobody --regid=nogroup --clear-groups ";
      const Run r = run_command({"--config", v.collectd.config_path(), "--spool-dir", v.spool_dir(), verb}, as_nobody);
      CU_ASSERT_EQUAL(r.status, expected);
      CU_ASSERT_EQUAL(lines_of(r.out).size(), 1u);
      CU_ASSERT_TRUE(r.out.find("run this as root or as collectd's user") != std::string::npos);
      if (r.status != expected)
        std::fprintf(stderr, "\n--- %s as nobody (%s): %d\n%s", verb.c_str(), running ? "running" : "stopped",
                     r.status, r.out.c_str());
    }
  }
}

// --- the reader alone ---------------------------------------------------------

void test_reader_values_and_blocks() {
  const auto root = xmatters::parse_conf_text(
      "A \"x\\\"y\\\\z\" 1.5 -2 0x10 010 true off yes 1.2.3.4 ::1 foo_1\n"
      "<B \"n\">\n  C \"multi\\\n     line\"\n</B>\n"
      "D \\\n 3 # comment\n",
      "t.conf");
  XM_REQUIRE(root.children.size() == 3);
  const auto& a = root.children[0];
  XM_REQUIRE(a.values.size() == 11);
  CU_ASSERT_EQUAL(a.values[0].string, "x\"y\\z");
  CU_ASSERT_EQUAL(a.values[1].number, 1.5);
  CU_ASSERT_EQUAL(a.values[2].number, -2);
  CU_ASSERT_EQUAL(a.values[3].number, 16);
  CU_ASSERT_EQUAL(a.values[4].number, 10);
  CU_ASSERT_TRUE(a.values[5].type == xmatters::ConfigValue::Type::Boolean && a.values[5].boolean);
  CU_ASSERT_TRUE(a.values[6].type == xmatters::ConfigValue::Type::Boolean && !a.values[6].boolean);
  CU_ASSERT_TRUE(a.values[7].boolean);
  CU_ASSERT_EQUAL(a.values[8].string, "1.2.3.4");
  CU_ASSERT_EQUAL(a.values[9].string, "::1");
  CU_ASSERT_EQUAL(a.values[10].string, "foo_1");
  const auto& b = root.children[1];
  CU_ASSERT_EQUAL(b.key, "B");
  XM_REQUIRE(b.children.size() == 1);
  CU_ASSERT_EQUAL(b.children[0].values[0].string, "multiline");
  CU_ASSERT_EQUAL(root.children[2].values[0].number, 3);
}

void test_reader_errors_are_one_line_without_secrets() {
  for (const char* text : {"A 1", "<A>\n</a>\n", "<A>\n", "\"x\"\n", "A\n", "Password \"hunter2\" <\n"}) {
    try {
      xmatters::parse_conf_text(text, "t.conf");
      CU_FAIL("no syntax error");
    } catch (const xmatters::ConfSyntaxError& e) {
      const std::string what = e.what();
      CU_ASSERT_TRUE(what.find('\n') == std::string::npos);
      CU_ASSERT_TRUE(what.find("t.conf") != std::string::npos);
      CU_ASSERT_TRUE(what.find("hunter2") == std::string::npos);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {
                         {"reader",
                          {
                              {"reader_values_and_blocks", test_reader_values_and_blocks},
                              {"reader_errors_are_one_line_without_secrets", test_reader_errors_are_one_line_without_secrets},
                          }},
                         {"check",
                          {
                              {"usage_errors_exit_2", xmtest::guarded<test_usage_errors_exit_2>},
                              {"check_through_conf_d_include", xmtest::guarded<test_check_through_conf_d_include>},
                              {"check_parity_with_collectd", xmtest::guarded<test_check_parity_with_collectd>},
                              {"check_while_collectd_runs", xmtest::guarded<test_check_while_collectd_runs>},
                          }},
                         {"views",
                          {
                              {"status_and_outages_live_and_offline",
                               xmtest::guarded<test_status_and_outages_live_and_offline>},
                              {"queue_while_xmatters_is_down", xmtest::guarded<test_queue_while_xmatters_is_down>},
                              {"dead_letter_is_a_warning", xmtest::guarded<test_dead_letter_is_a_warning>},
                              {"unreadable_spool_dir", xmtest::guarded<test_unreadable_spool_dir>},
                              {"status_late_event_is_critical", xmtest::guarded<test_status_late_event_is_critical>},
                              {"status_failing_warning", test_status_failing_warning},
                              {"outages_waiting_for_flood_limit", xmtest::guarded<test_outages_waiting_for_flood_limit>},
                          }},
                     });
}
