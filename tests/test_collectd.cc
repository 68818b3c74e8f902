// End to end in a real collectd (Debian's collectd-core): the plugin loaded
// from the build tree, values fed through the unixsock plugin, thresholds
// from collectd's threshold plugin, and the xMatters stand-in on loopback.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <ctime>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "collectd_harness.h"
#include "outage/outage.h"
#include "store/spool_dir.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::CollectdProcess;
using xmtest::guarded;

// The log line prefix of the plugin's errors, as collectd's logfile plugin
// writes them with PrintSeverity.
constexpr const char* kPluginError = "[error] xmatters plugin: ";

const std::string kTopSrcdir = TOP_SRCDIR;

// Shows collectd's log when an assertion fails, since CUnit only shows the
// expression.
void dump_log_on_failure(const CollectdProcess& c, bool ok, const char* what) {
  if (!ok) std::fprintf(stderr, "\n--- %s; collectd's log:\n%s---\n", what, c.log().c_str());
}

// the man page's example configuration, pointed at loopback, with the files
// it names created under dir.
std::string contract_example(const std::string& dir) {
  xmtest::write_file(dir + "/xmatters.secret", "s3cret-from-file\n");
  ::chmod((dir + "/xmatters.secret").c_str(), 0600);  // else a WARNING: others could read it
  xmtest::write_file(dir + "/outage.json", R"({"outage": "$outage_id", "severity": "$severity", "target": $target})");
  xmtest::write_file(dir + "/clear.json", R"({"clear": "$outage_id"})");
  xmtest::write_file(dir + "/cert.pem", "not used before a request\n");
  xmtest::write_file(dir + "/key.pem", "not used before a request\n");
  std::string text = R"(
LoadPlugin xmatters
<Plugin xmatters>
  SpoolDir   "@DIR@/spool"
  QueueLimit 100000
  ReportStats true
  <Integration "ops">
    OutageURL "http://127.0.0.1:9/api/integration/1/functions/UUID/triggers?apiKey=KEY"
    ClearURL  "http://127.0.0.1:9/api/integration/1/functions/UUID2/triggers?apiKey=KEY"
    User      "panopta"
    PasswordFile "@DIR@/xmatters.secret"
    Target    "ops-oncall" "dba-team"
    MinSeverity "warning"
    Host   "^db[0-9]+$"
    Plugin "^(mysql|postgresql)$"
    Type   "."
    SendClear true
    RenotifyInterval 0
    DetailsURL "https://grafana.example.com/d/host?var-host=$host"
    Template      "@DIR@/outage.json"
    ClearTemplate "@DIR@/clear.json"
    Header "X-Source: collectd"
    Timeout 10
    VerifyPeer true
    VerifyHost true
    CACert "/etc/ssl/certs/ca-certificates.crt"
    ClientCert "@DIR@/cert.pem"
    ClientKey  "@DIR@/key.pem"
    Proxy ""
    Connections 4
    RetryMaxAge 86400
  </Integration>
</Plugin>
)";
  for (std::size_t pos = text.find("@DIR@"); pos != std::string::npos; pos = text.find("@DIR@", pos + dir.size()))
    text.replace(pos, 5, dir);
  return text;
}

// --- configuration through a real collectd ------------------------------------

void test_contract_example_loads() {
  xmtest::TempDir files;
  CollectdProcess c(contract_example(files.path()));
  const bool started = c.start();
  dump_log_on_failure(c, started, "collectd did not reach its read-loop");
  CU_ASSERT_TRUE(started);
  CU_ASSERT_TRUE(c.wait_for_log("xmatters plugin: delivering to 1 integration(s)"));
  CU_ASSERT_EQUAL(c.log_lines({kPluginError}).size(), 0u);
  CU_ASSERT_EQUAL(c.log_lines({"[warning] xmatters plugin: "}).size(), 0u);
  CU_ASSERT_EQUAL(c.log().find("s3cret"), std::string::npos);
  struct stat st {};
  CU_ASSERT_TRUE(::stat((files / "spool").c_str(), &st) == 0 && (st.st_mode & 07777) == 0700);
  const auto status = c.stop();
  CU_ASSERT_TRUE(status.has_value());
  CU_ASSERT_EQUAL(c.exit_code(), 0);
  CU_ASSERT_TRUE(c.log().find("Exiting normally.") != std::string::npos);
}

// The example a packager ships, with every option uncommented: valid.
void test_shipped_example_config_is_valid() {
  std::string text = xmtest::read_file(kTopSrcdir + "/contrib/collectd.conf.d/xmatters.conf");
  XM_REQUIRE(text.find("#LoadPlugin xmatters") != std::string::npos);
  xmtest::TempDir files;
  contract_example(files.path());  // creates the secret, template and certificate files
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (std::size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
      text.replace(pos, from.size(), to);
  };
  // Uncommented: every line of the block loses its first '#'; the comments
  // inside stay comments.
  std::string uncommented;
  std::istringstream in(text);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "#LoadPlugin xmatters" || line == "#<Plugin xmatters>") inside = true;
    uncommented += (inside && !line.empty() && line[0] == '#' ? line.substr(1) : line) + "\n";
    if (line == "#</Plugin>") inside = false;
  }
  text = uncommented;
  replace_all("https://COMPANY.xmatters.com", "http://127.0.0.1:9");
  replace_all("/var/lib/collectd/xmatters", files / "spool");
  replace_all("/etc/collectd/xmatters.secret", files / "xmatters.secret");
  replace_all("/etc/collectd/xmatters/client.pem", files / "cert.pem");
  replace_all("/etc/collectd/xmatters/client.key", files / "key.pem");
  replace_all("/etc/collectd/xmatters/", files.path() + "/");
  CollectdProcess c(text);
  const bool started = c.start();
  dump_log_on_failure(c, started, "the uncommented example did not start");
  CU_ASSERT_TRUE(started);
  CU_ASSERT_TRUE(c.wait_for_log("xmatters plugin: delivering to 1 integration(s)"));
  CU_ASSERT_EQUAL(c.log_lines({kPluginError}).size(), 0u);
}

struct BadConfig {
  const char* name;
  std::string block;                  // inside <Plugin xmatters>
  std::vector<std::string> mentions;  // the ERROR line names each of these
  std::string secret;                 // must not appear anywhere in the log
};

std::string integration(const std::string& name, const std::string& body) {
  return "  <Integration \"" + name + "\">\n" + body + "  </Integration>\n";
}

std::string xmatters_block(const std::string& integrations, const std::string& plugin_extra = "") {
  return "LoadPlugin xmatters\n<Plugin xmatters>\n" + plugin_extra + integrations + "</Plugin>\n";
}

const std::string kUrl = "    OutageURL \"http://127.0.0.1:9/api/integration/1/functions/f/triggers?apiKey=KEY\"\n";

std::vector<BadConfig> bad_configs(const std::string& dir) {
  xmtest::write_file(dir + "/secret", "from-file\n");
  xmtest::write_file(dir + "/broken.json", "{\"id\": \"$outage_id\",\n");
  // Bug 7: 50 x $description (256 bytes, each escaped up to 6 times) could
  // expand past the 64 KiB a payload may have.
  std::string big = "{\"d\": \"";
  for (int i = 0; i < 50; ++i) big += "$description ";
  xmtest::write_file(dir + "/big.json", big + "\"}");
  // Issue 21 bug 9: the same through DetailsURL in the built-in body.
  std::string details = "https://grafana.example.com/d?";
  for (int i = 0; i < 100; ++i) details += "d=$description&";
  return {
      {"unknown option", integration("ops", kUrl + "    Bogus 1\n"), {"Bogus", "ops"}, ""},
      {"unknown plugin option", "  Frobnicate true\n" + integration("ops", kUrl), {"Frobnicate"}, ""},
      {"missing OutageURL", integration("ops", "    MinSeverity \"failure\"\n"), {"OutageURL", "ops"}, ""},
      {"bad URL scheme",
       integration("ops", "    OutageURL \"ftp://127.0.0.1/x\"\n"),
       {"OutageURL", "ops", "ftp://"},
       ""},
      {"bad regex", integration("ops", kUrl + "    Host \"([a-z\"\n"), {"Host", "ops", "([a-z"}, ""},
      {"Password with PasswordFile",
       integration("ops", kUrl + "    User \"u\"\n    Password \"hunter2-secret\"\n    PasswordFile \"" + dir +
                              "/secret\"\n"),
       {"Password", "PasswordFile", "ops"},
       "hunter2-secret"},
      {"unreadable PasswordFile", integration("ops", kUrl + "    PasswordFile \"" + dir + "/missing.secret\"\n"),
       {"PasswordFile", "ops", "missing.secret"},
       ""},
      {"bad MinSeverity",
       integration("ops", kUrl + "    MinSeverity \"critical\"\n"),
       {"MinSeverity", "ops", "critical"},
       ""},
      {"duplicate Integration names", integration("ops", kUrl) + integration("ops", kUrl), {"Integration", "ops"}, ""},
      {"no Integration", "  QueueLimit 10\n", {"Integration"}, ""},
      {"wrong value type", integration("ops", kUrl + "    Timeout \"ten\"\n"), {"Timeout", "ops"}, ""},
      {"invalid Template", integration("ops", kUrl + "    Template \"" + dir + "/broken.json\"\n"),
       {"Template", "ops", "broken.json"},
       ""},
      {"Template that could be too large", integration("ops", kUrl + "    Template \"" + dir + "/big.json\"\n"),
       {"Integration \"ops\": Template \"" + dir + "/big.json\": could expand to ", "65536 bytes"},
       ""},
      {"DetailsURL that could be too large", integration("ops", kUrl + "    DetailsURL \"" + details + "\"\n"),
       {"Integration \"ops\": DetailsURL \"https://grafana.example.com/d?", "could expand to"},
       ""},
  };
}

// Each mistake: the plugin's ERROR in collectd's log naming the option, and
// collectd 5.12 refuses to start ("Error: Parsing the config file failed!",
// exit status 1) before its read-loop. That is what an operator sees when
// systemd starts collectd. (collectd 5.12's `-t` does not read the
// configuration at all and exits 0, collectd/collectd#3216; `-T` does.)
void test_bad_configurations_refuse_to_start() {
  xmtest::TempDir files;
  for (const auto& bad : bad_configs(files.path())) {
    CollectdProcess c("LoadPlugin xmatters\n<Plugin xmatters>\n  SpoolDir \"" + files.path() + "/spool\"\n" +
                      bad.block + "</Plugin>\n");
    const bool started = c.start();
    const bool exited = c.wait_for_exit(10s);
    const auto errors = c.log_lines({kPluginError});
    bool named = errors.size() == 1;
    for (const auto& m : bad.mentions) named = named && errors[0].find(m) != std::string::npos;
    const bool refused = !started && exited && c.exit_code() == 1 &&
                         c.log().find("Error: Parsing the config file failed!") != std::string::npos &&
                         c.log().find(CollectdProcess::kReadLoop) == std::string::npos;
    const bool secret_kept = bad.secret.empty() || c.log().find(bad.secret) == std::string::npos;
    if (!named || !refused || !secret_kept)
      std::fprintf(stderr, "\n--- case \"%s\": named=%d refused=%d secret_kept=%d; log:\n%s---\n", bad.name, named,
                   refused, secret_kept, c.log().c_str());
    CU_ASSERT_TRUE(named);
    CU_ASSERT_TRUE(refused);
    CU_ASSERT_TRUE(secret_kept);
  }
}

// The pre-deploy check that works with collectd 5.12: `collectd -T` reads
// the configuration, runs every plugin's init and read once, and exits 1
// for the plugin's configuration error.
void test_config_check_with_capital_T() {
  CollectdProcess c("LoadPlugin xmatters\n<Plugin xmatters>\n" + integration("ops", "    OutageURL \"gopher://x\"\n") +
                    "</Plugin>\n");
  CU_ASSERT_EQUAL(c.check_config(), 1);
  CU_ASSERT_EQUAL(c.log_lines({kPluginError, "OutageURL", "gopher://x"}).size(), 1u);
  CU_ASSERT_TRUE(c.log().find("Error: Parsing the config file failed!") != std::string::npos);
}

// What works but is probably a mistake starts, with a WARNING at start-up.
void test_warnings_do_not_stop_collectd() {
  CollectdProcess c(xmatters_block(integration(
      "ops", "    OutageURL \"http://xmatters.invalid/api/integration/1/functions/f/triggers?apiKey=KEY\"\n"
             "    VerifyPeer false\n")));
  const bool started = c.start();
  dump_log_on_failure(c, started, "collectd did not start");
  XM_REQUIRE(started);
  CU_ASSERT_TRUE(c.wait_for_log("xmatters plugin: delivering to 1 integration(s)"));
  CU_ASSERT_EQUAL(c.log_lines({"[warning] xmatters plugin: ", "ops", "http://xmatters.invalid"}).size(), 1u);
  CU_ASSERT_EQUAL(c.log_lines({"[warning] xmatters plugin: ", "ops", "VerifyPeer"}).size(), 1u);
  CU_ASSERT_EQUAL(c.log().find("apiKey=KEY"), std::string::npos);
  CU_ASSERT_EQUAL(c.log_lines({kPluginError}).size(), 0u);
}

// LoadPlugin without a <Plugin xmatters> block: the init callback fails with
// an ERROR; collectd 5.12 then unloads the plugin and runs on without it.
void test_missing_block_is_an_error() {
  CollectdProcess c("LoadPlugin xmatters\n");
  const bool started = c.start();
  dump_log_on_failure(c, started, "collectd did not start");
  CU_ASSERT_TRUE(started);
  const auto errors = c.log_lines({kPluginError, "<Plugin xmatters>"});
  CU_ASSERT_EQUAL(errors.size(), 1u);
  CU_ASSERT_FALSE(c.wait_for_log("xmatters plugin: delivering", 100ms));
}

// Every unusable SpoolDir is a configuration error: one ERROR naming
// SpoolDir and the directory, collectd does not start, and the directory is
// left as it was (never chmodded).
void test_unusable_spool_dirs_refuse_to_start() {
  xmtest::TempDir t;
  xmtest::write_file(t / "file", "x");
  ::mkdir((t / "shared").c_str(), 0700);
  ::chmod((t / "shared").c_str(), 01777);
  ::mkdir((t / "planted").c_str(), 0700);
  ::symlink((t / "file").c_str(), (t / "planted/lock").c_str());
  std::vector<std::string> warnings;
  const xmatters::SpoolDir held(t / "held", false, warnings);  // another process holds it
  struct Case {
    std::string dir, says;
  };
  std::vector<Case> cases = {
      {t / "file", "is not a directory"},
      {t / "missing/spool", "its parent directory does not exist"},
      {t / "shared", "writable by other users"},
      {t / "planted", "its file lock is a symbolic link"},
      {t / "held", "is in use by another process"},
  };
  if (::geteuid() == 0) {
    ::mkdir((t / "theirs").c_str(), 0700);
    ::chown((t / "theirs").c_str(), 65534, 65534);
    cases.push_back({t / "theirs", "is owned by uid 65534"});
    ::mkdir((t / "ro").c_str(), 0700);
    if (::mount("tmpfs", (t / "ro").c_str(), "tmpfs", MS_RDONLY, "size=64k,mode=0700") == 0)
      cases.push_back({t / "ro", "cannot be written: Read-only file system"});
  }
  for (const auto& bad : cases) {
    CollectdProcess c(xmatters_block(integration("ops", kUrl), "  SpoolDir \"" + bad.dir + "\"\n"));
    const bool started = c.start();
    const bool exited = c.wait_for_exit(10s);
    const bool named = c.log_lines({kPluginError, "SpoolDir \"" + bad.dir + "\": ", bad.says}).size() == 1 &&
                       c.log_lines({kPluginError}).size() == 1;
    const bool refused = !started && exited && c.exit_code() == 1 &&
                         c.log().find("Error: Parsing the config file failed!") != std::string::npos;
    if (!named || !refused) std::fprintf(stderr, "\n--- SpoolDir %s; log:\n%s---\n", bad.dir.c_str(), c.log().c_str());
    CU_ASSERT_TRUE(named);
    CU_ASSERT_TRUE(refused);
  }
  struct stat st {};
  CU_ASSERT_TRUE(::stat((t / "shared").c_str(), &st) == 0 && (st.st_mode & 07777) == 01777);
  CU_ASSERT_EQUAL(xmtest::read_file(t / "file"), "x");
  if (::geteuid() == 0) ::umount((t / "ro").c_str());
}


// --- end to end with the stand-in ----------------------------------------------

constexpr const char* kOutageFn = "outage-fn";
constexpr const char* kClearFn = "clear-fn";

// Thresholds on plugin "e2e" only, as an operator scopes them: a global
// <Type "gauge"> would watch the gauges of every plugin.
std::string threshold_block(const std::string& extra = "") {
  return "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"e2e\">\n    <Type \"gauge\">\n"
         "      DataSource \"value\"\n      WarningMax 80\n      FailureMax 90\n" +
         extra + "    </Type>\n  </Plugin>\n</Plugin>\n";
}

std::string ops_integration(const xmtest::Standin& xm, const std::string& extra = "") {
  return integration("ops", "    OutageURL \"" + xm.url(kOutageFn) + "\"\n    ClearURL \"" + xm.url(kClearFn) +
                                "\"\n    Timeout 5\n" + extra);
}

// One collectd with the threshold plugin and the plugin delivering to a
// stand-in; the common shape of these tests.
struct E2E {
  xmtest::Standin xm;
  CollectdProcess c;
  explicit E2E(const std::string& integration_extra = "", const std::string& threshold_extra = "",
               const std::string& global = "")
      : c(global + threshold_block(threshold_extra) + xmatters_block(ops_integration(xm, integration_extra))) {}
  bool start() {
    const bool ok = c.start();
    dump_log_on_failure(c, ok, "collectd did not start");
    return ok;
  }
};

struct Received {
  std::string function_id;
  int status = 0;
  std::map<std::string, std::string> headers;
  xmtest::JsonPtr body;
  std::string text;
  std::string str(const char* key) const { return xmtest::json_string_member(body.get(), key); }
};

// The requests the stand-in answered with a 2xx, in arrival order.
std::vector<Received> accepted(const xmtest::Standin& xm) {
  std::vector<Received> out;
  for (auto& r : xm.requests()) {
    if (r.status < 200 || r.status > 299) continue;
    out.push_back({r.function_id, r.status, r.headers, xmtest::parse_json(r.body), r.body});
  }
  return out;
}

void dump_requests(const xmtest::Standin& xm, bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "\n--- %s; the stand-in received:\n", what);
  for (const auto& r : xm.requests())
    std::fprintf(stderr, "%d %s %s\n", r.status, r.function_id.c_str(), r.body.c_str());
  std::fprintf(stderr, "---\n");
}

// Waits for n accepted requests for as long as requests keep coming: gives
// up after `stall` without a new one (the pace is the machine's).
bool wait_accepted(const xmtest::Standin& xm, std::size_t n, std::chrono::milliseconds stall = 20s) {
  const bool ok = xmtest::wait_while_progressing([&] { return xm.accepted_count() >= n; },
                                                 [&] { return xm.request_count(); }, stall, 300s);
  dump_requests(xm, ok, ("waiting for " + std::to_string(n) + " accepted requests").c_str());
  return ok;
}

// --- what enters and leaves the plugin ------------------------------------------

// Bug 3: a password with an unencoded '/' makes a URL libcurl can never use.
// collectd refuses to start, and neither the password nor the API key is in
// its log, whichever option holds the URL.
void test_malformed_url_with_password_refuses_start() {
  const std::string bad = "http://admin:PASSW0RD/X@127.0.0.1:9/api/integration/1/functions/f/triggers?apiKey=S3CRETKEY";
  for (const std::string option : {"OutageURL", "Proxy"}) {
    const std::string body = option == "OutageURL" ? "    OutageURL \"" + bad + "\"\n" : kUrl + "    Proxy \"" + bad + "\"\n";
    CollectdProcess c(xmatters_block(integration("ops", body)));
    const bool started = c.start();
    const bool exited = c.wait_for_exit(10s);
    const auto errors = c.log_lines({kPluginError, "Integration \"ops\": " + option + " \"***\": is not a URL"});
    const bool clean = c.log().find("PASSW0RD") == std::string::npos && c.log().find("S3CRETKEY") == std::string::npos;
    dump_log_on_failure(c, !started && exited && errors.size() == 1 && clean, option.c_str());
    CU_ASSERT_FALSE(started);
    CU_ASSERT_TRUE(exited && c.exit_code() == 1);
    CU_ASSERT_EQUAL(errors.size(), 1u);
    CU_ASSERT_TRUE(clean);
  }
}

// Bug 2: a reply that echoes a configured Header whose name does not look
// like a credential: its value reaches neither collectd's log (the retry
// WARNING, the dead-letter ERROR) nor dead-letter.jsonl.
void test_echoed_secret_never_logged() {
  const std::string secret = "sig-S3CRET/value";
  E2E t("    Header \"X-Sig: " + secret + "\"\n");
  xmtest::Standin::Reply unavailable, bad_request;
  unavailable.status = 503;
  unavailable.echo_headers = {"X-Sig"};
  bad_request.status = 400;
  bad_request.echo_headers = {"X-Sig"};
  t.xm.script({unavailable, bad_request});
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putnotif("failure", "host=myhost plugin=echo", "echo test"));
  XM_REQUIRE(t.xm.wait_for_requests(2, 30s));
  // The requests carried it, so the replies echoed it.
  for (const auto& r : t.xm.requests()) CU_ASSERT_EQUAL(r.headers.at("x-sig"), secret);
  const std::string dead = t.c.base_dir() + "/xmatters/dead-letter.jsonl";
  CU_ASSERT_TRUE(xmtest::wait_until([&] { return xmtest::file_exists(dead) && !xmtest::read_file(dead).empty(); }, 20s));
  CU_ASSERT_TRUE(t.c.wait_for_log("dead-lettered", 10s));
  CU_ASSERT_TRUE(t.c.log_lines({"[warning] xmatters plugin: ", "503"}).size() >= 1u);
  const std::string log = t.c.log(), letters = xmtest::read_file(dead);
  CU_ASSERT_EQUAL(log.find("S3CRET"), std::string::npos);
  CU_ASSERT_EQUAL(letters.find("S3CRET"), std::string::npos);
  CU_ASSERT_EQUAL(letters.find("test-key"), std::string::npos);
  // What is left of the echo shows it was there, masked.
  CU_ASSERT_TRUE(letters.find("***") != std::string::npos);
  dump_log_on_failure(t.c, log.find("S3CRET") == std::string::npos, "the echoed secret is in the log");
}

// Bug 6: a notification time collectd can carry but the payload cannot
// (year 2286, before 1970) becomes the time the plugin received it.
void test_absurd_times_become_receipt_time() {
  E2E t;
  XM_REQUIRE(t.start());
  const std::time_t before = std::time(nullptr);
  int n = 0;
  for (const char* time : {"9999999999", "-5"}) {
    const auto reply = t.c.unixsock().command(std::string("PUTNOTIF severity=failure time=") + time +
                                              " host=myhost plugin=time" + std::to_string(n++) +
                                              " message=\"absurd time\"");
    CU_ASSERT_TRUE(reply.ok());
  }
  XM_REQUIRE(wait_accepted(t.xm, 2));
  char earliest[32], latest[32];
  const std::time_t after = std::time(nullptr) + 1;
  std::strftime(earliest, sizeof earliest, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&before));
  std::strftime(latest, sizeof latest, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&after));
  for (const auto& r : accepted(t.xm)) {
    for (const char* key : {"timestamp", "start_time"}) {
      const std::string v = r.str(key);
      CU_ASSERT_TRUE(v >= earliest && v <= latest);
      if (!(v >= earliest && v <= latest)) std::fprintf(stderr, "\n  %s %s not in [%s, %s]\n", key, v.c_str(), earliest, latest);
    }
    CU_ASSERT_EQUAL(r.str("duration"), "0");
  }
}

// Bug 5: a 202 whose body then stalls past Timeout is delivered, once: the
// status line is the delivery.
void test_accepted_with_stalled_body_delivered_once() {
  E2E t;  // Timeout 5
  xmtest::Standin::Reply stalled;
  stalled.stall_body = 60s;
  t.xm.script({stalled});
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putnotif("failure", "host=myhost plugin=stall", "stalled reply"));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  const bool delivered = t.c.wait_for_log("[info] xmatters plugin: integration ops: delivered outage event", 20s);
  dump_log_on_failure(t.c, delivered, "the accepted event was not logged as delivered");
  CU_ASSERT_TRUE(delivered);
  // Whatever came after it shows no retry: once a second outage is
  // delivered too, the stand-in has had two requests, not three.
  CU_ASSERT_TRUE(t.c.putnotif("failure", "host=myhost plugin=after", "after the stall"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  CU_ASSERT_EQUAL(t.xm.request_count(), 2u);
  CU_ASSERT_EQUAL(t.c.log_lines({"not delivered"}).size(), 0u);
}

// Makes sure every notification collectd has logged so far went through the
// plugin: a PUTNOTIF for a fresh key must come out as one more request. The
// threshold plugin notifies from collectd's write threads, the logfile plugin
// logs each notification in the same dispatch as the plugin gets it, so
// callers wait for the log line of what they sent first.
void settle(E2E& t, std::size_t accepted_before, const std::string& key) {
  XM_REQUIRE(t.c.putnotif("failure", "host=testhost plugin=sentinel-" + key, "sentinel " + key));
  CU_ASSERT_TRUE(wait_accepted(t.xm, accepted_before + 1));
}

const std::regex kRfc3339("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$");
const std::regex kRfc3339Fraction("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$");
const std::regex kOutageId("^[A-Za-z0-9-]{1,64}$");

// The seconds since the epoch of an RFC 3339 UTC time without fraction.
long long epoch_of(const std::string& rfc3339) {
  std::tm tm{};
  if (strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return -1;
  return static_cast<long long>(timegm(&tm));
}

double json_number(const json_t* obj, const char* key) {
  const json_t* v = json_object_get(obj, key);
  return json_is_number(v) ? json_number_value(v) : -1e300;
}

// Collectd's start-up OKAY for every thresholded value list sends nothing.
void test_startup_okay_storm_sends_nothing() {
  E2E t;
  XM_REQUIRE(t.start());
  for (int i = 0; i < 50; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-storm" + std::to_string(i) + "/gauge", 50));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = OKAY", 20s, 50));
  settle(t, 0, "storm");
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got.size(), 1u);
  if (!got.empty()) CU_ASSERT_EQUAL(got[0].str("description"), "sentinel storm");
}

// A value over FailureMax: one outage event, the man page's PAYLOAD property by
// property; repeats (Persist true) send nothing more.
void test_failure_outage_payload() {
  E2E t("    Target \"ops-oncall\"\n    DetailsURL \"https://grafana.example.com/d/x?var-host=$host&svc=$services\"\n",
        "      Persist true\n");
  XM_REQUIRE(t.start());
  const std::time_t before = std::time(nullptr);
  CU_ASSERT_TRUE(t.c.putval("e2e-cpu/gauge-load", 50));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = OKAY"));
  CU_ASSERT_TRUE(t.c.putval("e2e-cpu/gauge-load", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  const std::time_t after = std::time(nullptr);
  const auto got = accepted(t.xm);
  const Received& e = got[0];
  XM_REQUIRE(e.body.get() != nullptr);
  CU_ASSERT_TRUE(json_is_object(e.body.get()));
  CU_ASSERT_EQUAL(e.function_id, kOutageFn);
  CU_ASSERT_TRUE(std::regex_match(e.str("outage_id"), kOutageId));
  CU_ASSERT_TRUE(e.str("event_id").size() > 0 && e.str("event_id") != "<absent>");
  CU_ASSERT_EQUAL(e.str("event_type"), "outage");
  CU_ASSERT_EQUAL(e.str("severity"), "critical");
  CU_ASSERT_EQUAL(e.str("name"), "testhost");
  CU_ASSERT_EQUAL(e.str("fqdn"), "testhost");
  CU_ASSERT_TRUE(e.str("description").find("above the failure threshold") != std::string::npos);
  CU_ASSERT_TRUE(e.str("description").find("95.0") != std::string::npos);
  CU_ASSERT_EQUAL(e.str("services"), "e2e-cpu/gauge-load");
  CU_ASSERT_EQUAL(e.str("items"), "value");
  const std::string reasons = e.str("reasons");
  CU_ASSERT_TRUE(reasons.find("95") != std::string::npos && reasons.find("90") != std::string::npos &&
                 reasons.find("above") != std::string::npos);
  CU_ASSERT_TRUE(std::regex_match(e.str("timestamp"), kRfc3339));
  CU_ASSERT_TRUE(std::regex_match(e.str("start_time"), kRfc3339));
  CU_ASSERT_EQUAL(e.str("start_time"), e.str("timestamp"));
  const long long ts = epoch_of(e.str("timestamp"));
  CU_ASSERT_TRUE(ts >= before - 1 && ts <= after + 1);
  CU_ASSERT_EQUAL(e.str("duration"), "0");
  CU_ASSERT_EQUAL(e.str("target"), "ops-oncall");
  CU_ASSERT_EQUAL(e.str("details_url"), "https://grafana.example.com/d/x?var-host=testhost&svc=e2e-cpu%2Fgauge-load");
  const json_t* cd = json_object_get(e.body.get(), "collectd");
  XM_REQUIRE(json_is_object(cd));
  CU_ASSERT_EQUAL(xmtest::json_string_member(cd, "host"), "testhost");
  CU_ASSERT_EQUAL(xmtest::json_string_member(cd, "plugin"), "e2e");
  CU_ASSERT_EQUAL(xmtest::json_string_member(cd, "plugin_instance"), "cpu");
  CU_ASSERT_EQUAL(xmtest::json_string_member(cd, "type"), "gauge");
  CU_ASSERT_EQUAL(xmtest::json_string_member(cd, "type_instance"), "load");
  CU_ASSERT_EQUAL(xmtest::json_string_member(cd, "severity"), "FAILURE");
  CU_ASSERT_TRUE(std::regex_match(xmtest::json_string_member(cd, "time"), kRfc3339Fraction));
  const json_t* meta = json_object_get(cd, "meta");
  XM_REQUIRE(json_is_object(meta));
  CU_ASSERT_EQUAL(xmtest::json_string_member(meta, "DataSource"), "value");
  CU_ASSERT_DOUBLE_EQUAL(json_number(meta, "CurrentValue"), 95.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(json_number(meta, "FailureMax"), 90.0, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(json_number(meta, "WarningMax"), 80.0, 1e-9);
  // Unset thresholds are NaN in collectd's meta: null in JSON.
  CU_ASSERT_TRUE(json_is_null(json_object_get(meta, "FailureMin")));
  // The request's headers (collectd-xmatters(5) DELIVERY).
  CU_ASSERT_EQUAL(e.headers.count("content-type") ? e.headers.at("content-type") : "", "application/json");
  CU_ASSERT_EQUAL(e.headers.count("idempotency-key") ? e.headers.at("idempotency-key") : "", e.str("event_id"));
  CU_ASSERT_EQUAL((e.headers.count("user-agent") ? e.headers.at("user-agent") : "").rfind("collectd-xmatters/", 0), 0u);

  // Persist true: collectd repeats the FAILURE on every value; nothing more is sent.
  for (int i = 0; i < 3; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-cpu/gauge-load", 96 + i));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = FAILURE, host = testhost, plugin = e2e", 10s, 4));
  settle(t, 1, "persist");
  CU_ASSERT_EQUAL(accepted(t.xm).size(), 2u);
}

// WARNING, then FAILURE (escalation, same outage_id), then back in range:
// a clear to ClearURL with the same outage_id and a plausible duration.
void test_escalation_and_clear() {
  E2E t;
  XM_REQUIRE(t.start());
  const auto t0 = std::chrono::steady_clock::now();
  CU_ASSERT_TRUE(t.c.putval("e2e-disk/gauge-used", 85));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(t.c.putval("e2e-disk/gauge-used", 95));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  // A second later, so that the duration has something to count.
  CU_ASSERT_TRUE(xmtest::wait_until([&] { return std::chrono::steady_clock::now() - t0 >= 1100ms; }, 2s));
  CU_ASSERT_TRUE(t.c.putval("e2e-disk/gauge-used", 40));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0);
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got.size(), 3u);
  CU_ASSERT_EQUAL(got[0].function_id, kOutageFn);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[0].str("severity"), "warning");
  CU_ASSERT_TRUE(got[0].str("reasons").find("warning") != std::string::npos);
  CU_ASSERT_EQUAL(got[1].function_id, kOutageFn);
  CU_ASSERT_EQUAL(got[1].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[1].str("severity"), "critical");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
  CU_ASSERT_EQUAL(got[1].str("start_time"), got[0].str("start_time"));
  CU_ASSERT_NOT_EQUAL(got[1].str("event_id"), got[0].str("event_id"));
  CU_ASSERT_EQUAL(got[2].function_id, kClearFn);
  CU_ASSERT_EQUAL(got[2].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[2].str("outage_id"), got[0].str("outage_id"));
  CU_ASSERT_EQUAL(got[2].str("severity"), "critical");  // the highest the outage reached
  CU_ASSERT_EQUAL(got[2].str("start_time"), got[0].str("start_time"));
  CU_ASSERT_EQUAL(xmtest::json_string_member(json_object_get(got[2].body.get(), "collectd"), "severity"), "OKAY");
  const long long duration = std::atoll(got[2].str("duration").c_str());
  CU_ASSERT_TRUE(duration >= 1 && duration <= elapsed.count() + 1);
  CU_ASSERT_EQUAL(std::to_string(duration), got[2].str("duration"));
  // Whole seconds of the exact times, against the difference of the
  // truncated ones: they differ by at most one.
  const long long shown = epoch_of(got[2].str("timestamp")) - epoch_of(got[2].str("start_time"));
  CU_ASSERT_TRUE(shown - duration >= -1 && shown - duration <= 1);
}

// A restart during an outage: no second page; the clear carries the
// original outage_id.
void test_restart_during_outage() {
  E2E t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-mem/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  XM_REQUIRE(t.c.restart());
  // The fresh threshold state fires the FAILURE again on the first value.
  CU_ASSERT_TRUE(t.c.putval("e2e-mem/gauge", 96));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = FAILURE, host = testhost, plugin = e2e"));
  settle(t, 1, "restart");
  CU_ASSERT_TRUE(t.c.putval("e2e-mem/gauge", 40));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  const auto got = accepted(t.xm);
  dump_requests(t.xm, got.size() == 3 && got[1].str("description") == "sentinel restart", "after the restart");
  dump_log_on_failure(t.c, got.size() == 3 && got[1].str("description") == "sentinel restart", "after the restart");
  XM_REQUIRE(got.size() == 3u);
  CU_ASSERT_EQUAL(got[1].str("description"), "sentinel restart");
  CU_ASSERT_EQUAL(got[2].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[2].function_id, kClearFn);
  CU_ASSERT_EQUAL(got[2].str("outage_id"), got[0].str("outage_id"));
  CU_ASSERT_EQUAL(got[2].str("start_time"), got[0].str("start_time"));
}

// A metric that recovered while collectd was down is cleared by the OKAY of
// its first value after the start.
void test_recovered_while_down() {
  E2E t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-net/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(t.c.stop().has_value());
  XM_REQUIRE(t.c.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-net/gauge", 40));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
}

// Filters decide what opens an outage, not what closes one: with the Host
// filter narrowed across a restart, db1's open outage is still cleared by
// its OKAY (issue 21, bug 5).
void test_narrowed_filter_still_clears() {
  E2E t("    Host \"^db\"\n");
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-x/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(t.c.stop().has_value());
  t.c.set_config(threshold_block() + xmatters_block(ops_integration(t.xm, "    Host \"^db0\"\n")));
  XM_REQUIRE(t.c.start());
  // db1 no longer matches: its FAILURE opens nothing, its OKAY clears.
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-y/gauge", 95));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = FAILURE, host = db1, plugin = e2e"));
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-x/gauge", 40));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
  CU_ASSERT_EQUAL(got[1].function_id, kClearFn);
  // A sentinel proves nothing else was sent.
  CU_ASSERT_TRUE(t.c.putnotif("failure", "host=db0 plugin=sentinel", "sentinel"));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  CU_ASSERT_EQUAL(accepted(t.xm).size(), 3u);
  CU_ASSERT_EQUAL(accepted(t.xm)[2].str("description"), "sentinel");
}

// Issue 21 bug 4: FloodLimit's minute holds across a restart. FloodLimit 2:
// two outages, one paged on its own and the other folded into the flood outage,
// paged at once (the last of the minute is kept for it; collectd-xmatters(5)
// OUTAGES); a restart; two more outages within the minute join the flood
// outage, and its re-page waits in the spool for the minute's end instead
// of leaving as a third outage event in it. A clear, which has a budget
// of its own, still leaves at once.
void test_flood_minute_across_restart() {
  E2E t("    FloodLimit 2\n");
  XM_REQUIRE(t.start());
  for (const char* id : {"e2e-fm0/gauge", "e2e-fm1/gauge"}) CU_ASSERT_TRUE(t.c.putval(id, 95));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  // collectd's threads may hand the two over in either order: the one
  // paged on its own is the one whose clear goes below.
  std::string own;
  for (const auto& r : accepted(t.xm))
    if (r.str("name").rfind("flood:", 0) != 0) own = r.str("services");
  XM_REQUIRE(own == "e2e-fm0/gauge" || own == "e2e-fm1/gauge");
  XM_REQUIRE(t.c.restart());
  for (const char* id : {"e2e-fm2/gauge", "e2e-fm3/gauge"}) CU_ASSERT_TRUE(t.c.putval(id, 95));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = FAILURE, host = testhost, plugin = e2e", 10s, 2));
  // The flood outage holds fm1, fm2 and fm3; its re-page is queued, not sent.
  const std::string spool = t.c.base_dir() + "/xmatters";
  const auto flood_outages = [&] {
    std::uint32_t n = 0;
    for (const std::string& bytes : xmatters::read_spool(spool).changes) {
      // A fold is two records written together: the outage's, the flood's.
      namespace sf = xmatters::spool_format;
      sf::Record rec{};
      for (std::size_t offset = 0, size; offset < bytes.size(); offset += size) {
        if ((size = sf::parse_record(bytes, offset, &rec)) == 0) break;
        xmatters::Change c;
        if (!xmatters::decode_change(std::string_view(bytes).substr(offset, size), &c)) continue;
        if (c.key == xmatters::OutageKey{} && c.set) n = c.set->outages;
      }
    }
    return n;
  };
  const bool folded = xmtest::wait_until([&] { return flood_outages() == 3; }, 10s);
  dump_log_on_failure(t.c, folded, "no flood outage of three");
  if (!folded) std::fprintf(stderr, "flood outages: %u\n", flood_outages());
  CU_ASSERT_TRUE(folded);
  // A clear goes at once: and so would have any page due before it.
  CU_ASSERT_TRUE(t.c.putval(own, 40));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  const auto got = accepted(t.xm);
  dump_requests(t.xm, got.size() == 3, "after the restart");
  dump_log_on_failure(t.c, got.size() == 3, "after the restart");
  XM_REQUIRE(got.size() == 3u);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[1].str("event_type"), "outage");
  CU_ASSERT_TRUE(got[0].str("name").rfind("flood:", 0) == 0 || got[1].str("name").rfind("flood:", 0) == 0);
  CU_ASSERT_EQUAL(got[2].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[2].str("services"), own);
  std::size_t waiting = 0;
  for (const auto& p : xmatters::read_spool(spool).pending) waiting += p.event.type == xmatters::EventType::Outage;
  CU_ASSERT_EQUAL(waiting, 1u);  // the flood outage's re-page, for the minute's end
}

// Issue 21 bug 6: a storm that starts inside a partly used minute gets its
// flood page at once. FloodLimit 4: the first outage's page is answered 503
// and retried (two requests of the minute for one page); then a storm of
// six: what does not fit the minute is folded, and the flood outage's page
// leaves at once (before one budget, the lanes' pacing held it for the
// rest of the minute); no more than four outage requests in the minute.
void test_flood_page_at_once_in_a_used_minute() {
  E2E t("    FloodLimit 4\n");
  xmtest::Standin::Reply unavailable;
  unavailable.status = 503;
  t.xm.script({unavailable});
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-fs0/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_EQUAL(t.xm.request_count(), 2u);  // the 503, then the page
  for (int i = 1; i <= 6; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-fs" + std::to_string(i) + "/gauge", 95));
  const auto flood_paged = [&] {
    for (const auto& r : accepted(t.xm))
      if (r.str("name").rfind("flood:", 0) == 0) return true;
    return false;
  };
  const bool at_once = xmtest::wait_until(flood_paged, 20s);
  dump_requests(t.xm, at_once, "no flood page within 20 s");
  dump_log_on_failure(t.c, at_once, "no flood page within 20 s");
  CU_ASSERT_TRUE(at_once);
  std::size_t outage_requests = 0;
  for (const auto& r : t.xm.requests()) outage_requests += r.function_id == kOutageFn;
  CU_ASSERT_TRUE(outage_requests <= 4u);
}

std::size_t spool_segments(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename();
    if (name.rfind("spool-", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0) ++n;
  }
  return n;
}

// An integration renamed: its open outage is named at each start, kept
// through compaction, and its old name restored resumes it: its OKAY
// clears it (issue 21, bug 5).
void test_renamed_integration_keeps_outages() {
  E2E t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-x/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  const std::string id = accepted(t.xm)[0].str("outage_id");
  const std::string renamed = integration("renamed", "    OutageURL \"" + t.xm.url(kOutageFn) + "\"\n    ClearURL \"" +
                                                         t.xm.url(kClearFn) + "\"\n    Timeout 5\n");
  t.c.set_config(threshold_block() + xmatters_block(renamed));
  // Three starts without it (and no value: a value that stops would page
  // through "renamed"): the third start's compaction rewrites the table.
  for (int run = 0; run < 3; ++run) {
    CU_ASSERT_TRUE(t.c.stop().has_value());
    XM_REQUIRE(t.c.start());
    const auto named = t.c.log_lines({"[warning] xmatters plugin: integration ops is not configured: its open outage " +
                                      id + " (db1/e2e-x/gauge) is kept"});
    dump_log_on_failure(t.c, named.size() == 1, "the kept outage's WARNING");
    CU_ASSERT_EQUAL(named.size(), 1u);
  }
  // An outage of the new name wakes the spool's maintenance.
  CU_ASSERT_TRUE(t.c.putnotif("failure", "host=web1 plugin=sentinel", "sentinel"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  CU_ASSERT_TRUE(t.c.putnotif("okay", "host=web1 plugin=sentinel", "sentinel"));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  CU_ASSERT_TRUE(xmtest::wait_until([&] { return spool_segments(t.c.base_dir() + "/xmatters") <= 2; }));
  CU_ASSERT_TRUE(t.c.stop().has_value());
  t.c.set_config(threshold_block() + xmatters_block(ops_integration(t.xm)));
  XM_REQUIRE(t.c.start());
  CU_ASSERT_TRUE(t.c.putval("db1", "e2e-x/gauge", 40));
  XM_REQUIRE(wait_accepted(t.xm, 4));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got.size(), 4u);
  CU_ASSERT_EQUAL(got[3].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[3].str("outage_id"), id);
  CU_ASSERT_TRUE(t.c.log_lines({"is not configured"}).empty());
}

// A notification as a write thread or an aggregator may deliver it late:
// stamped `time` (seconds), whatever the time now.
bool putnotif_at(CollectdProcess& c, const char* severity, std::time_t time, const std::string& options) {
  return c.unixsock()
      .command(std::string("PUTNOTIF severity=") + severity + " time=" + std::to_string(time) + " " + options +
               " message=\"" + severity + " at " + std::to_string(time) + "\"")
      .ok();
}

// The events the stand-in accepted, as "type outage_id event_id" lines.
std::vector<std::string> event_lines(const xmtest::Standin& xm) {
  std::vector<std::string> out;
  for (const auto& r : accepted(xm))
    out.push_back(r.str("event_type") + " " + r.str("outage_id") + " " + r.str("event_id"));
  return out;
}

// Issue 21 bugs 1 and 2, value lists: a FAILURE stamped before its key's
// OKAY pages nothing, and a WARNING stamped inside a closed outage does not
// reopen it (it used to page again under the closed outage's id and -1).
// One connection: events leave in the order they were decided, so the
// sentinel's page comes after anything the stale ones would have sent.
void test_stale_notifications_through_collectd() {
  E2E t("    Connections 1\n");
  XM_REQUIRE(t.start());
  const std::time_t now = std::time(nullptr);
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now, "host=h1 plugin=early"));
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now - 30, "host=h1 plugin=early"));  // stale: nothing
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now, "host=h1 plugin=closed"));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now + 5, "host=h1 plugin=closed"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  CU_ASSERT_TRUE(putnotif_at(t.c, "warning", now, "host=h1 plugin=closed"));  // stale: nothing
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now + 6, "host=h1 plugin=sentinel"));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  const auto got = accepted(t.xm);
  dump_requests(t.xm, got.size() == 3 && got[2].str("services") == "sentinel", "stale notifications paged");
  XM_REQUIRE(got.size() == 3u);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
  CU_ASSERT_EQUAL(got[2].str("services"), "sentinel");
}

// Issue 21 bugs 1 and 2, GroupBy host: x fails at t and recovers at t+5;
// y's FAILURE stamped t (the same read cycle) opens a second host outage
// with an outage_id and event_ids of its own (they used to repeat x's);
// z joins it and recovers, and z's FAILURE stamped before that OKAY (a
// write thread that lagged) does not make it fail again, so y's OKAY
// clears it (the stale FAILURE used to keep it open for ever).
void test_host_outage_reordered_through_collectd() {
  E2E t("    GroupBy \"host\"\n    Connections 1\n");
  XM_REQUIRE(t.start());
  const std::time_t now = std::time(nullptr);
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now, "host=h2 plugin=x"));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now + 5, "host=h2 plugin=x"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now, "host=h2 plugin=y"));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now + 10, "host=h2 plugin=z"));  // joins
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now + 12, "host=h2 plugin=z"));      // leaves
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now + 11, "host=h2 plugin=z"));   // stale: ignored
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now + 13, "host=h2 plugin=y"));
  const bool cleared = wait_accepted(t.xm, 4);
  const auto lines = event_lines(t.xm);
  dump_requests(t.xm, cleared && lines.size() == 4, "the second host outage did not clear");
  XM_REQUIRE(lines.size() == 4u);
  const auto got = accepted(t.xm);
  const std::string first = got[0].str("outage_id"), second = got[2].str("outage_id");
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), first);
  CU_ASSERT_EQUAL(got[2].str("event_type"), "outage");
  CU_ASSERT_NOT_EQUAL(second, first);
  CU_ASSERT_EQUAL(got[3].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[3].str("outage_id"), second);
  std::set<std::string> event_ids;
  for (const auto& r : got) CU_ASSERT_TRUE(event_ids.insert(r.str("event_id")).second);
}

// Issue 21 bug 3: a host outage's member limit counts failing members. One
// value list stays failing while 999 others fail and recover (container
// churn); a new failure is still tracked: the stuck one's recovery does not
// clear the host outage, the new one's does.
void test_host_member_limit_counts_failing_through_collectd() {
  E2E t("    GroupBy \"host\"\n    Connections 1\n");
  XM_REQUIRE(t.start());
  const std::time_t now = std::time(nullptr);
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now, "host=h3 plugin=stuck"));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  for (int i = 0; i < 999; ++i) {
    const std::string vl = "host=h3 plugin=churn" + std::to_string(i);
    XM_REQUIRE(putnotif_at(t.c, "failure", now, vl));
    XM_REQUIRE(putnotif_at(t.c, "okay", now + 1, vl));
  }
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now + 2, "host=h3 plugin=new"));
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now + 3, "host=h3 plugin=stuck"));  // new still fails: no clear
  CU_ASSERT_TRUE(putnotif_at(t.c, "failure", now + 3, "host=h4 plugin=sentinel"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  auto got = accepted(t.xm);
  dump_requests(t.xm, got.size() == 2 && got[1].str("name") == "h4", "the host outage cleared with a member failing");
  XM_REQUIRE(got.size() == 2u);
  CU_ASSERT_EQUAL(got[1].str("name"), "h4");
  CU_ASSERT_TRUE(t.c.log_lines({"are not tracked"}).empty());
  CU_ASSERT_TRUE(putnotif_at(t.c, "okay", now + 4, "host=h3 plugin=new"));
  XM_REQUIRE(wait_accepted(t.xm, 3));
  got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[2].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[2].str("outage_id"), got[0].str("outage_id"));
}

// Issue 21 bugs 7 and 8: FloodLimit defaults to 4, xMatters' own filter: a
// storm of 30 outages (the integration configured without FloodLimit) makes
// at most 4 outage requests in its minute, one of them the flood outage's
// page; members without a data source (a PUTNOTIF carries no meta) are not
// listed as empty items.
void test_default_flood_limit_through_collectd() {
  E2E t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-storm/gauge", 95));  // one with a data source: "value"
  for (int i = 0; i < 29; ++i) CU_ASSERT_TRUE(t.c.putnotif("failure", "host=storm" + std::to_string(i) + " plugin=p", "down"));
  const auto flood_page = [&]() -> std::optional<Received> {
    for (auto& r : accepted(t.xm))
      if (r.str("name").rfind("flood:", 0) == 0) return std::move(r);
    return std::nullopt;
  };
  const bool paged = xmtest::wait_until([&] { return flood_page().has_value(); }, 20s);
  dump_requests(t.xm, paged, "no flood page");
  XM_REQUIRE(paged);
  const std::string items = flood_page()->str("items");
  CU_ASSERT_EQUAL(items.find(", ,"), std::string::npos);
  CU_ASSERT_TRUE(items.rfind(", ", 0) != 0 && items.rfind(" and", 0) != 0);
  if (items.find(", ,") != std::string::npos) std::fprintf(stderr, "\n  items: %s\n", items.c_str());
  std::size_t outage_requests = 0;
  for (const auto& r : t.xm.requests()) outage_requests += r.function_id == kOutageFn;
  CU_ASSERT_TRUE(outage_requests <= 4u);
}

// A value that stops arriving: collectd's missing-value FAILURE (Timeout 2
// with Interval 1) opens an outage; the value's return clears it.
void test_missing_value() {
  E2E t("", "", "Timeout 2\n");
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-feed/gauge", 50));
  XM_REQUIRE(wait_accepted(t.xm, 1, 20s));
  auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[0].str("services"), "e2e-feed/gauge");
  CU_ASSERT_TRUE(got[0].str("description").find("has not been updated") != std::string::npos);
  CU_ASSERT_TRUE(got[0].str("reasons").rfind("no data for ", 0) == 0);
  // The value comes back once per interval, as it would. (The first one can
  // land before collectd drops the expired entry from its cache, right after
  // dispatching the missing-value FAILURE, and then notifies nothing.)
  bool cleared = false;
  for (int i = 0; i < 10 && !cleared; ++i) {
    CU_ASSERT_TRUE(t.c.putval("e2e-feed/gauge", 50));
    cleared = t.xm.wait_for_accepted(2, 1s);
  }
  dump_log_on_failure(t.c, cleared, "no clear after the value came back");
  XM_REQUIRE(cleared);
  got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
}

// The endpoint down for a while, then up: every event arrives, in order per
// outage.
void test_endpoint_down_then_up() {
  E2E t("    FloodLimit 0\n");  // five outages and their retries at once
  XM_REQUIRE(t.start());
  t.xm.stop();
  constexpr int kOutages = 5;
  for (int i = 0; i < kOutages; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-down" + std::to_string(i) + "/gauge", 95));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = FAILURE", 10s, kOutages));
  for (int i = 0; i < kOutages; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-down" + std::to_string(i) + "/gauge", 40));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = OKAY", 10s, kOutages));
  // A failed attempt is logged (collectd-xmatters(5) SECURITY: the URL's query values as ***).
  CU_ASSERT_TRUE(t.c.wait_for_log("apiKey=***", 10s));
  t.xm.restart();
  XM_REQUIRE(wait_accepted(t.xm, 2 * kOutages, 60s));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got.size(), 2u * kOutages);
  std::map<std::string, std::vector<std::string>> by_outage;  // outage_id -> event types in arrival order
  std::set<std::string> event_ids, services;
  for (const auto& r : got) {
    by_outage[r.str("outage_id")].push_back(r.str("event_type"));
    event_ids.insert(r.str("event_id"));
    services.insert(r.str("services"));
  }
  CU_ASSERT_EQUAL(by_outage.size(), static_cast<std::size_t>(kOutages));
  CU_ASSERT_EQUAL(event_ids.size(), 2u * kOutages);
  CU_ASSERT_EQUAL(services.size(), static_cast<std::size_t>(kOutages));
  for (const auto& [id, types] : by_outage) CU_ASSERT_TRUE((types == std::vector<std::string>{"outage", "clear"}));
  CU_ASSERT_EQUAL(t.c.log().find("test-key"), std::string::npos);
}

// collectd killed with SIGKILL in the middle of a burst of hundreds of
// outages: after a restart every one of them arrives.
void test_kill9_during_burst() {
  E2E t("    FloodLimit 0\n");  // every one of the burst paged on its own
  XM_REQUIRE(t.start());
  xmtest::Standin::Reply slow;
  slow.delay = 100ms;
  t.xm.set_default_reply(slow);
  constexpr int kOutages = 300;
  for (int i = 0; i < kOutages; ++i) CU_ASSERT_TRUE(t.c.putval("e2e-burst/gauge-" + std::to_string(i), 95));
  CU_ASSERT_TRUE(t.c.wait_for_log("Notification: severity = FAILURE", 30s, kOutages));
  CU_ASSERT_TRUE(t.xm.wait_for_requests(10, 20s));
  t.c.kill9();
  const std::size_t before_kill = t.xm.accepted_count();
  CU_ASSERT_TRUE(before_kill < static_cast<std::size_t>(kOutages));
  t.xm.set_default_reply({});
  XM_REQUIRE(t.c.start());
  std::set<std::string> services;
  std::map<std::string, std::set<std::string>> outage_ids;  // services -> outage_ids seen
  const bool all = xmtest::wait_until(
      [&] {
        services.clear();
        for (const auto& r : accepted(t.xm)) services.insert(r.str("services"));
        return services.size() >= static_cast<std::size_t>(kOutages);
      },
      90s);
  dump_log_on_failure(t.c, all, "not every outage arrived after the restart");
  CU_ASSERT_TRUE(all);
  for (const auto& r : accepted(t.xm)) {
    CU_ASSERT_EQUAL(r.str("event_type"), "outage");
    outage_ids[r.str("services")].insert(r.str("outage_id"));
  }
  // Duplicates only for events in flight at the crash: the same event again.
  for (const auto& [svc, ids] : outage_ids) CU_ASSERT_EQUAL(ids.size(), 1u);
  std::printf("(%zu of %d delivered before the kill, %zu requests in all) ", before_kill, kOutages,
              t.xm.request_count());
}

// The bytes of SpoolDir's segments (spool-*.log).
std::uint64_t spool_segments_bytes(const std::string& spool) {
  std::uint64_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(spool))
    if (entry.path().filename().string().rfind("spool-", 0) == 0) n += entry.file_size();
  return n;
}

// A tmpfs mounted for the test's lifetime (needs root).
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& path, const std::string& size) : path_(path) {
    ::mkdir(path.c_str(), 0700);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size + ",mode=0700").c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  bool mounted() const { return mounted_; }
  std::uint64_t used() const {
    struct statvfs st {};
    if (::statvfs(path_.c_str(), &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.f_blocks - st.f_bfree) * st.f_frsize;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

// SpoolDir on a small tmpfs, filled with xMatters down: outage events are
// refused with a throttled ERROR, clears still go in; once xMatters is back
// everything accepted is delivered once, the space comes back, a later
// outage and clear page without a restart, and a restart sends nothing again.
// On 2 MiB the open outages' table is small; on 16 MiB it is over 1 MiB
// (about 15,000 outages), and the reserve must grow with it for the
// compaction that gives the space back.
void full_spool_dir(const char* size, int most) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "\nfull_spool_dir: SKIPPED, mounting a tmpfs needs root\n");
    CU_FAIL("not run: needs root to mount a tmpfs");
    return;
  }
  xmtest::TempDir mnt;
  const std::string spool = mnt / "spool";
  SmallTmpfs fs(spool, size);
  XM_REQUIRE(fs.mounted());
  xmtest::Standin xm;
  CollectdProcess c(xmatters_block(ops_integration(xm, "    FloodLimit 0\n"), "  SpoolDir \"" + spool + "\"\n"));
  XM_REQUIRE(c.start());
  xm.stop();
  // Fill it: distinct outages until the plugin refuses them (the log looked
  // at every 100: reading it after each would cost more than the fill).
  int sent = 0;
  for (; sent < most && (sent % 100 != 0 || c.log().find("cannot take new outage events") == std::string::npos); ++sent)
    XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=fill-" + std::to_string(sent), "filling " + std::to_string(sent)));
  XM_REQUIRE(sent < most);
  for (int i = 0; i < 200; ++i)  // more refusals: still one ERROR per 10 s
    XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=more-" + std::to_string(i), "refused " + std::to_string(i)));
  CU_ASSERT(c.log_lines({"cannot take new outage events"}).size() <= 2u);
  // Clears of outages accepted before the disk filled are never lost.
  constexpr int kClears = 10;
  XM_REQUIRE(sent > 2 * kClears);
  for (int i = 0; i < kClears; ++i)
    XM_REQUIRE(c.putnotif("okay", "host=testhost plugin=fill-" + std::to_string(i), "back " + std::to_string(i)));

  xm.restart();
  // Every accepted event is delivered and its space reclaimed: the spool is
  // back to its reserve (given up when the disk filled, taken back once
  // there was room) and the table of the outages still open (about 120
  // bytes each), where the events had filled the rest of the disk.
  // Waited for as long as the drain goes on (deliveries, compactions): its
  // speed is the machine's, under sanitizers several times slower.
  const auto segments_bytes = [&] { return spool_segments_bytes(spool); };
  const bool drained = xmtest::wait_while_progressing(
      [&] {
        return xmtest::file_exists(spool + "/reserve") &&
               segments_bytes() < 4096 + static_cast<std::uint64_t>(sent) * 128;
      },
      [&] { return xm.request_count() + segments_bytes(); }, 30s, 300s);
  if (!drained) {
    std::fprintf(stderr, "\nthe spool did not shrink back: %d outages sent, %zu requests, %llu bytes used\n", sent,
                 xm.request_count(), static_cast<unsigned long long>(fs.used()));
    for (const auto& entry : std::filesystem::directory_iterator(spool))
      if (entry.is_regular_file())
        std::fprintf(stderr, "  %s %llu\n", entry.path().filename().c_str(),
                     static_cast<unsigned long long>(entry.file_size()));
  }
  CU_ASSERT(drained);
  // Failed compactions (the disk full) leave no empty segments behind.
  std::size_t segments = 0;
  for (const auto& entry : std::filesystem::directory_iterator(spool))
    segments += entry.path().filename().string().rfind("spool-", 0) == 0;
  CU_ASSERT(segments <= 3u);
  // The clears may have been held in memory (the disk full) and go out
  // after the spool has shrunk: waited for, so that a lost one still fails
  // below but a late one does not.
  xmtest::wait_while_progressing(
      [&] {
        std::size_t clears = 0;
        for (const auto& r : accepted(xm)) clears += r.str("event_type") == "clear";
        return clears >= static_cast<std::size_t>(kClears);
      },
      [&] { return xm.request_count(); }, 30s, 300s);
  const auto got = accepted(xm);
  std::set<std::string> event_ids;
  std::map<std::string, std::vector<std::string>> by_service;  // services -> event types in order
  for (const auto& r : got) {
    CU_ASSERT(event_ids.insert(r.str("event_id")).second);  // each event once
    by_service[r.str("services")].push_back(r.str("event_type"));
  }
  CU_ASSERT(by_service.size() > static_cast<std::size_t>(2 * kClears));
  for (int i = 0; i < kClears; ++i)
    CU_ASSERT((by_service["fill-" + std::to_string(i)] == std::vector<std::string>{"outage", "clear"}));
  // What was accepted is the fills before the first refusal, every one of
  // them delivered: no gap.
  int delivered_fills = 0;
  while (by_service.count("fill-" + std::to_string(delivered_fills))) ++delivered_fills;
  for (int i = delivered_fills; i < sent; ++i) CU_ASSERT_EQUAL(by_service.count("fill-" + std::to_string(i)), 0u);
  CU_ASSERT(c.log().find("refused") != std::string::npos);
  for (const auto& [service, types] : by_service) CU_ASSERT(service.rfind("more-", 0) != 0);  // refused ones

  // Paging resumes by itself: a later outage and its clear.
  std::size_t before = xm.accepted_count();
  XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=later", "later failure"));
  XM_REQUIRE(wait_accepted(xm, before + 1));
  XM_REQUIRE(c.putnotif("okay", "host=testhost plugin=later", "later recovery"));
  XM_REQUIRE(wait_accepted(xm, before + 2));
  // A restart re-sends nothing: the next request is the sentinel's.
  XM_REQUIRE(c.restart());
  before = xm.request_count();
  XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=sentinel", "after the restart"));
  XM_REQUIRE(xm.wait_for_requests(before + 1, 20s));
  const auto after = xm.requests();
  CU_ASSERT_EQUAL(after.size(), before + 1);
  if (!after.empty()) CU_ASSERT(after.back().body.find("sentinel") != std::string::npos);
}

void test_full_spool_dir() { full_spool_dir("2m", 5000); }
void test_full_spool_dir_large_table() { full_spool_dir("16m", 60000); }

// Issue 20 item 7: on a SpoolDir file system of 256 KiB (less than the
// 1 MiB the reserve used to take at least: none was accepted), 1,500
// outages with xMatters down
// are accepted as far as the room allows, the rest refused with a throttled
// ERROR; the accepted ones are delivered once xMatters is back, and once
// their space is reclaimed a later outage and its clear page.
void test_small_spool_dir() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "\nsmall_spool_dir: SKIPPED, mounting a tmpfs needs root\n");
    CU_FAIL("not run: needs root to mount a tmpfs");
    return;
  }
  xmtest::TempDir mnt;
  const std::string spool = mnt / "spool";
  SmallTmpfs fs(spool, "256k");
  XM_REQUIRE(fs.mounted());
  xmtest::Standin xm;
  CollectdProcess c(xmatters_block(ops_integration(xm, "    FloodLimit 0\n"), "  SpoolDir \"" + spool + "\"\n"));
  XM_REQUIRE(c.start());
  xm.stop();
  constexpr int kOutages = 1500;
  for (int i = 0; i < kOutages; ++i)
    XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=small-" + std::to_string(i), "small " + std::to_string(i)));
  CU_ASSERT(!c.log_lines({"cannot take new outage events"}).empty());
  xm.restart();
  // Delivered, and the space reclaimed: the segments hold the open
  // outages' table only (about 120 bytes each), the reserve is back.
  const auto segments_bytes = [&] { return spool_segments_bytes(spool); };
  const bool drained = xmtest::wait_while_progressing(
      [&] {
        return xm.accepted_count() > 0 && xmtest::file_exists(spool + "/reserve") &&
               segments_bytes() < 4096 + xm.accepted_count() * 160;
      },
      [&] { return xm.request_count() + segments_bytes(); }, 30s, 300s);
  dump_log_on_failure(c, drained, "the spool did not drain");
  CU_ASSERT(drained);
  const auto got = accepted(xm);
  std::set<std::string> event_ids, services;
  for (const auto& r : got) {
    CU_ASSERT(event_ids.insert(r.str("event_id")).second);  // each event once
    CU_ASSERT(services.insert(r.str("services")).second);   // each outage once
    CU_ASSERT_EQUAL(r.str("event_type"), "outage");
  }
  std::fprintf(stderr, "(%zu of %d accepted and delivered) ", got.size(), kOutages);
  CU_ASSERT(got.size() >= 100u);
  CU_ASSERT(got.size() < static_cast<std::size_t>(kOutages));

  // Paging resumes: "later" pages, then clears. A page of the storm still in
  // flight when the spool looked drained may arrive meanwhile: it must be
  // one not delivered before.
  const std::size_t before = xm.accepted_count();
  const auto later_types = [&] {
    std::vector<std::string> types;
    for (const auto& r : accepted(xm))
      if (r.str("services") == "later") types.push_back(r.str("event_type"));
    return types;
  };
  XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=later", "later failure"));
  XM_REQUIRE(xmtest::wait_until([&] { return !later_types().empty(); }, 20s));
  XM_REQUIRE(c.putnotif("okay", "host=testhost plugin=later", "later recovery"));
  XM_REQUIRE(xmtest::wait_until([&] { return later_types().size() >= 2; }, 20s));
  CU_ASSERT((later_types() == std::vector<std::string>{"outage", "clear"}));
  const auto after = accepted(xm);
  for (std::size_t i = before; i < after.size(); ++i) {
    if (after[i].str("services") == "later") continue;
    CU_ASSERT(after[i].str("services").rfind("small-", 0) == 0);
    CU_ASSERT(event_ids.insert(after[i].str("event_id")).second);
    CU_ASSERT(services.insert(after[i].str("services")).second);
  }
  CU_ASSERT_EQUAL(xm.request_count(), xm.accepted_count());  // nothing sent twice
}

// Writes path until the file system has no byte left (down to the last
// page: a tmpfs allocates whole pages). Returns false when it could not
// write at all for another reason than a full file system.
bool fill_file_system(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const std::string chunk(64 * 1024, 'x');
  bool full = false;
  for (std::size_t size : {chunk.size(), std::size_t{4096}, std::size_t{1}}) {
    for (;;) {
      const ssize_t n = ::write(fd, chunk.data(), size);
      if (n > 0) continue;
      full = n < 0 && errno == ENOSPC;
      break;
    }
    if (!full) break;
  }
  ::close(fd);
  return full;
}

// Issue 11 item 2: clears that the spool cannot take (the file system full,
// the reserve given up and used up too) are held in memory and delivered
// from there, each after its outage's page, once; collectd runs on, and
// once there is room again paging resumes by itself.
void test_clear_held_in_memory_when_disk_full() {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "\nclear_held_in_memory_when_disk_full: SKIPPED, mounting a tmpfs needs root\n");
    CU_FAIL("not run: needs root to mount a tmpfs");
    return;
  }
  xmtest::TempDir mnt;
  const std::string fs_root = mnt / "fs";
  SmallTmpfs fs(fs_root, "4m");
  XM_REQUIRE(fs.mounted());
  const std::string spool = fs_root + "/spool";  // the fillers go beside it, on the same file system
  XM_REQUIRE(::mkdir(spool.c_str(), 0700) == 0);
  xmtest::Standin xm;
  CollectdProcess c(xmatters_block(ops_integration(xm, "    FloodLimit 0\n"), "  SpoolDir \"" + spool + "\"\n"));
  XM_REQUIRE(c.start());
  XM_REQUIRE(xmtest::file_exists(spool + "/reserve"));
  xm.stop();
  // Outages accepted while xMatters is down: they page later. (A PUTNOTIF's
  // reply comes after the plugin's notification callback has returned.)
  constexpr int kOutages = 10;
  for (int i = 0; i < kOutages; ++i)
    XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=held-" + std::to_string(i), "down " + std::to_string(i)));
  XM_REQUIRE(c.log_lines({"cannot take new outage events"}).empty());

  // The disk fills from outside. The first write of the plugin that then
  // finds it full gives the reserve up; that space goes to a filler too.
  int fillers = 0;
  XM_REQUIRE(fill_file_system(fs_root + "/filler-" + std::to_string(fillers++)));
  bool reserve_held = true;
  for (int i = 0; i < kOutages; ++i) {
    XM_REQUIRE(c.putnotif("okay", "host=testhost plugin=held-" + std::to_string(i), "back " + std::to_string(i)));
    const bool held_now = xmtest::file_exists(spool + "/reserve");  // maintenance may take it back meanwhile
    if (reserve_held && !held_now) XM_REQUIRE(fill_file_system(fs_root + "/filler-" + std::to_string(fillers++)));
    reserve_held = held_now;
  }
  CU_ASSERT_TRUE(fillers >= 2);  // the reserve was given up, and taken by a filler
  const auto held = c.log_lines({kPluginError, "integration ops: the spool cannot take a clear", "held in memory"});
  dump_log_on_failure(c, !held.empty(), "no clear was held in memory");
  CU_ASSERT_TRUE(!held.empty());
  CU_ASSERT_TRUE(c.running());

  xm.restart();
  const bool all = wait_accepted(xm, 2 * kOutages, 60s);
  dump_log_on_failure(c, all, "not every page and clear delivered");
  CU_ASSERT_TRUE(all);
  std::set<std::string> event_ids;
  std::map<std::string, std::vector<std::string>> by_service;  // services -> event types in arrival order
  for (const auto& r : accepted(xm)) {
    CU_ASSERT(event_ids.insert(r.str("event_id")).second);  // each event once
    by_service[r.str("services")].push_back(r.str("event_type"));
  }
  CU_ASSERT_EQUAL(by_service.size(), static_cast<std::size_t>(kOutages));
  for (int i = 0; i < kOutages; ++i)
    CU_ASSERT((by_service["held-" + std::to_string(i)] == std::vector<std::string>{"outage", "clear"}));
  CU_ASSERT_TRUE(c.running());

  // Room again: the plugin takes its reserve back and pages a later outage
  // and its clear, without a restart.
  for (int i = 0; i < fillers; ++i) CU_ASSERT_EQUAL(::unlink((fs_root + "/filler-" + std::to_string(i)).c_str()), 0);
  CU_ASSERT_TRUE(c.wait_for_log("there is room in " + spool + " again", 30s));
  const std::size_t before = xm.accepted_count();
  XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=later", "later failure"));
  XM_REQUIRE(wait_accepted(xm, before + 1));
  XM_REQUIRE(c.putnotif("okay", "host=testhost plugin=later", "later recovery"));
  XM_REQUIRE(wait_accepted(xm, before + 2));
  const auto got = accepted(xm);
  CU_ASSERT_EQUAL(got.size(), 2u * kOutages + 2);
  if (got.size() == 2u * kOutages + 2) {
    CU_ASSERT_EQUAL(got[2 * kOutages].str("services"), "later");
    CU_ASSERT_EQUAL(got[2 * kOutages].str("event_type"), "outage");
    CU_ASSERT_EQUAL(got[2 * kOutages + 1].str("event_type"), "clear");
  }
  CU_ASSERT_EQUAL(xm.request_count(), xm.accepted_count());  // nothing sent twice
  CU_ASSERT_TRUE(c.running());
  CU_ASSERT_EQUAL(c.log().find("test-key"), std::string::npos);
}

// Issue 12: a redirect (307, 301) is not followed (no CURLOPT_FOLLOWLOCATION;
// the credentials would go wherever it points). reply.cc classifies a 3xx
// like "any other 4xx" of collectd-xmatters(5) DELIVERY: not retried, dead-lettered with one
// ERROR naming the status. The redirect's target receives nothing, and the
// URL's password and API key are in neither the log nor the dead letters.
void test_redirect_not_followed() {
  xmtest::StandinOptions so;
  so.api_key = "Api-K3y-Secret";
  so.user = "svc";
  so.password = "PassW0rd-Secret";
  xmtest::Standin xm(so);
  const std::string url = "http://svc:PassW0rd-Secret@" + xm.url(kOutageFn).substr(std::string("http://").size());
  CollectdProcess c(xmatters_block(integration("ops", "    OutageURL \"" + url + "\"\n    Timeout 5\n")));
  XM_REQUIRE(c.start());
  std::size_t errors = 0;
  for (const int status : {307, 301}) {
    xmtest::Standin::Reply redirect;
    redirect.status = status;
    redirect.location = xm.url("redirect-target");
    xm.script({redirect});
    const std::string service = "redirect-" + std::to_string(status);
    XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=" + service, "redirected " + service));
    XM_REQUIRE(c.wait_for_log(kPluginError, 20s, ++errors));
    const auto lines = c.log_lines({kPluginError, "integration ops: ", " dead-lettered: HTTP " + std::to_string(status)});
    dump_log_on_failure(c, lines.size() == 1, ("no dead-letter ERROR for " + service).c_str());
    CU_ASSERT_EQUAL(lines.size(), 1u);
  }
  // Whatever a followed redirect sent would have come before this.
  XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=sentinel", "after the redirects"));
  XM_REQUIRE(wait_accepted(xm, 1));
  const auto reqs = xm.requests();
  CU_ASSERT_EQUAL(reqs.size(), 3u);
  for (const auto& r : reqs) CU_ASSERT_EQUAL(r.function_id, kOutageFn);
  CU_ASSERT_EQUAL(c.log_lines({kPluginError}).size(), 2u);
  const std::string dead = xmtest::read_file(c.base_dir() + "/xmatters/dead-letter.jsonl");
  CU_ASSERT_TRUE(dead.find("\"status\":307") != std::string::npos);
  CU_ASSERT_TRUE(dead.find("\"status\":301") != std::string::npos);
  for (const std::string& text : {c.log(), dead}) {
    CU_ASSERT_EQUAL(text.find("PassW0rd-Secret"), std::string::npos);
    CU_ASSERT_EQUAL(text.find("Api-K3y-Secret"), std::string::npos);
  }
}

// Bug 8: a PasswordFile that group or others can read is probably a
// mistake, not an error: one WARNING at start, and collectd runs and
// delivers with the password it holds.
void test_password_file_readable_by_others_warns() {
  xmtest::StandinOptions so;
  so.user = "svc";
  so.password = "PassW0rd-From-File";
  xmtest::Standin xm(so);
  xmtest::TempDir files;
  const std::string secret = files / "xmatters.secret";
  xmtest::write_file(secret, "PassW0rd-From-File\n");
  XM_REQUIRE(::chmod(secret.c_str(), 0644) == 0);
  CollectdProcess c(xmatters_block(integration("ops", "    OutageURL \"" + xm.url(kOutageFn, false) +
                                                          "\"\n    User \"svc\"\n    PasswordFile \"" + secret +
                                                          "\"\n")));
  XM_REQUIRE(c.start());
  const auto warnings = c.log_lines({"[warning] xmatters plugin: "});
  dump_log_on_failure(c, warnings.size() == 1, "not one WARNING");
  CU_ASSERT_EQUAL(warnings.size(), 1u);
  if (!warnings.empty()) {
    CU_ASSERT_TRUE(warnings[0].find("Integration \"ops\": PasswordFile \"" + secret + "\": ") != std::string::npos);
    CU_ASSERT_TRUE(warnings[0].find("readable by group or others") != std::string::npos);
  }
  XM_REQUIRE(c.putnotif("failure", "host=testhost plugin=pwfile", "password from a file"));
  XM_REQUIRE(wait_accepted(xm, 1));
  CU_ASSERT_EQUAL(xm.request_count(), 1u);  // accepted at once: the basic auth was right
  CU_ASSERT_TRUE(c.running());
  CU_ASSERT_EQUAL(c.log_lines({kPluginError}).size(), 0u);
  CU_ASSERT_EQUAL(c.log().find("PassW0rd-From-File"), std::string::npos);
}

// Two integrations routed by Host filter, one with a Template.
void test_routing_and_template() {
  xmtest::Standin xm;
  xmtest::TempDir files;
  xmtest::write_file(files / "outage.json",
                     R"({"id": "$outage_id", "kind": "$event_type", "host": "$host", "value": "$current_value",)"
                     R"( "who": $target, "why": "$reasons"})");
  CollectdProcess c(
      threshold_block() +
      xmatters_block(integration("web", "    OutageURL \"" + xm.url("web-fn") + "\"\n    Host \"^web\"\n") +
                     integration("db", "    OutageURL \"" + xm.url("db-fn") + "\"\n    Host \"^db[0-9]+$\"\n"
                                       "    Template \"" + files / "outage.json" + "\"\n"
                                       "    Target \"dba\" \"oncall\"\n")));
  const bool started = c.start();
  dump_log_on_failure(c, started, "collectd did not start");
  XM_REQUIRE(started);
  CU_ASSERT_TRUE(c.unixsock().command("PUTVAL \"web1/e2e-x/gauge\" interval=1 N:95").ok());
  CU_ASSERT_TRUE(c.unixsock().command("PUTVAL \"db7/e2e-x/gauge\" interval=1 N:97").ok());
  CU_ASSERT_TRUE(c.unixsock().command("PUTVAL \"mail1/e2e-x/gauge\" interval=1 N:99").ok());
  CU_ASSERT_TRUE(c.wait_for_log("Notification: severity = FAILURE", 10s, 3));
  XM_REQUIRE(xm.wait_for_accepted(2, 20s));
  // The clear goes through the template too (ClearTemplate defaults to Template).
  CU_ASSERT_TRUE(c.unixsock().command("PUTVAL \"db7/e2e-x/gauge\" interval=1 N:10").ok());
  XM_REQUIRE(xm.wait_for_accepted(3, 20s));
  // Nothing for mail1: a sentinel that web would take proves it is all.
  CU_ASSERT_TRUE(c.putnotif("failure", "host=web2 plugin=sentinel", "sentinel"));
  XM_REQUIRE(xm.wait_for_accepted(4, 20s));
  const auto got = accepted(xm);
  CU_ASSERT_EQUAL(got.size(), 4u);
  std::vector<const Received*> web, db;
  for (const auto& r : got) (r.function_id == "web-fn" ? web : db).push_back(&r);
  XM_REQUIRE(web.size() == 2u);
  XM_REQUIRE(db.size() == 2u);
  CU_ASSERT_EQUAL(web[0]->str("name"), "web1");
  CU_ASSERT_EQUAL(web[1]->str("name"), "web2");
  for (const auto* r : db) CU_ASSERT_EQUAL(r->function_id, "db-fn");
  // The template's own shape, with the macros expanded.
  const json_t* first = db[0]->body.get();
  XM_REQUIRE(first != nullptr);
  CU_ASSERT_EQUAL(json_object_size(first), 6u);
  CU_ASSERT_TRUE(std::regex_match(db[0]->str("id"), kOutageId));
  CU_ASSERT_EQUAL(db[0]->str("kind"), "outage");
  CU_ASSERT_EQUAL(db[0]->str("host"), "db7");
  CU_ASSERT_EQUAL(db[0]->str("value").rfind("97", 0), 0u);
  CU_ASSERT_TRUE(db[0]->str("why").find("97") != std::string::npos);
  const json_t* who = json_object_get(first, "who");
  CU_ASSERT_TRUE(json_is_array(who) && json_array_size(who) == 2 &&
                 std::string(json_string_value(json_array_get(who, 0))) == "dba" &&
                 std::string(json_string_value(json_array_get(who, 1))) == "oncall");
  CU_ASSERT_EQUAL(db[1]->str("kind"), "clear");
  CU_ASSERT_EQUAL(db[1]->str("id"), db[0]->str("id"));
}

// The operator's test outage (Panopta's "Outage Simulator"): PUTNOTIF
// through the unixsock, failure then okay, gives an outage and its clear.
void test_putnotif_test_outage() {
  E2E t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putnotif("failure", "host=myhost plugin=test", "test outage"));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(t.c.putnotif("okay", "host=myhost plugin=test", "test outage over"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[0].function_id, kOutageFn);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[0].str("severity"), "critical");
  CU_ASSERT_EQUAL(got[0].str("name"), "myhost");
  CU_ASSERT_EQUAL(got[0].str("services"), "test");
  CU_ASSERT_EQUAL(got[0].str("items"), "");
  CU_ASSERT_EQUAL(got[0].str("description"), "test outage");
  CU_ASSERT_EQUAL(got[1].function_id, kClearFn);
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
}

// The same through the Perl client that Debian's collectd-core ships
// (collectd 5.12's collectdctl has no putnotif command).
void test_putnotif_with_perl_client() {
  E2E t;
  XM_REQUIRE(t.start());
  auto send = [&](const char* severity, const char* message) {
    const std::string cmd = "perl -MCollectd::Unixsock -e 'Collectd::Unixsock->new(\"" + t.c.socket_path() +
                            "\")->putnotif(severity => \"" + severity +
                            "\", host => \"myhost\", plugin => \"test\", message => \"" + message +
                            "\") or exit 1' >>" + t.c.dir() + "/perl.out 2>&1";
    return std::system(cmd.c_str()) == 0;
  };
  CU_ASSERT_TRUE(send("failure", "test outage"));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  CU_ASSERT_TRUE(send("okay", "test outage over"));
  XM_REQUIRE(wait_accepted(t.xm, 2));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[1].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
}

// A 400 is not retried: the event is dead-lettered with an ERROR, the
// outage stays open, and its clear still goes out when the OKAY comes.
void test_dead_letter_keeps_outage_open() {
  E2E t;
  XM_REQUIRE(t.start());
  xmtest::Standin::Reply bad_request;
  bad_request.status = 400;
  t.xm.script({bad_request});
  CU_ASSERT_TRUE(t.c.putval("e2e-dl/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_requests(1, 20s));
  CU_ASSERT_TRUE(t.c.wait_for_log("[error] xmatters plugin: ", 10s));
  const std::string outage_id =
      xmtest::json_string_member(xmtest::parse_json(t.xm.requests()[0].body).get(), "outage_id");
  const auto errors = t.c.log_lines({kPluginError, "400", outage_id});
  CU_ASSERT_EQUAL(errors.size(), 1u);
  if (!errors.empty()) CU_ASSERT_TRUE(errors[0].find("ops") != std::string::npos);
  const std::string dead = t.c.base_dir() + "/xmatters/dead-letter.jsonl";
  CU_ASSERT_TRUE(xmtest::wait_until([&] { return xmtest::read_file(dead).find(outage_id) != std::string::npos; }, 10s));
  CU_ASSERT_EQUAL(xmtest::read_file(dead).find("test-key"), std::string::npos);
  CU_ASSERT_TRUE(t.c.putval("e2e-dl/gauge", 40));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[0].str("event_type"), "clear");
  CU_ASSERT_EQUAL(got[0].str("outage_id"), outage_id);
  CU_ASSERT_EQUAL(t.xm.request_count(), 2u);  // not retried
}

// RenotifyInterval: an outage still failing is paged again, same outage_id.
void test_renotify_interval() {
  E2E t("    RenotifyInterval 1\n", "      Persist true\n");
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-re/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  // The value keeps failing, once per interval, as collectd would see it.
  bool repaged = false;
  for (int i = 0; i < 10 && !repaged; ++i) {
    CU_ASSERT_TRUE(t.c.putval("e2e-re/gauge", 95));
    repaged = t.xm.wait_for_accepted(2, 1s);
  }
  XM_REQUIRE(repaged);
  const auto got = accepted(t.xm);
  CU_ASSERT_EQUAL(got[1].str("event_type"), "outage");
  CU_ASSERT_EQUAL(got[1].str("outage_id"), got[0].str("outage_id"));
  CU_ASSERT_NOT_EQUAL(got[1].str("event_id"), got[0].str("event_id"));
  CU_ASSERT_TRUE(std::atoll(got[1].str("duration").c_str()) >= 1);
}

// HTTPS to a server whose certificate is checked against CACert.
void test_https_with_ca_cert() {
  xmtest::TempDir certs;
  XM_REQUIRE(xmtest::make_test_certificates(certs.path()));
  xmtest::StandinOptions options;
  options.tls_cert_file = certs / "server.pem";
  options.tls_key_file = certs / "server.key";
  xmtest::Standin xm(options);
  CU_ASSERT_EQUAL(xm.url("f").rfind("https://", 0), 0u);
  CollectdProcess c(threshold_block() +
                    xmatters_block(integration("tls", "    OutageURL \"" + xm.url("f") + "\"\n    CACert \"" +
                                                          certs / "ca.pem" + "\"\n")));
  const bool started = c.start();
  dump_log_on_failure(c, started, "collectd did not start");
  XM_REQUIRE(started);
  CU_ASSERT_TRUE(c.putval("e2e-tls/gauge", 95));
  XM_REQUIRE(wait_accepted(xm, 1));
  CU_ASSERT_EQUAL(accepted(xm)[0].str("event_type"), "outage");
}

// ReportStats: the plugin's own values are in collectd.
void test_own_statistics() {
  E2E t;
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-stat/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
  const std::vector<std::string> wanted = {
      "testhost/xmatters-ops/queue_length",          "testhost/xmatters-ops/count-open_outages",
      "testhost/xmatters-ops/total_events-delivered", "testhost/xmatters-ops/total_events-retried",
      "testhost/xmatters-ops/total_events-dead_lettered", "testhost/xmatters-ops/total_events-dropped",
      "testhost/xmatters-ops/latency-delivery"};
  std::string listing;
  const bool listed = xmtest::wait_until(
      [&] {
        listing.clear();
        for (const auto& l : t.c.unixsock().command("LISTVAL").lines) listing += l + "\n";
        for (const auto& w : wanted)
          if (listing.find(" " + w + "\n") == std::string::npos) return false;
        return true;
      },
      10s);
  if (!listed) std::fprintf(stderr, "\n--- LISTVAL:\n%s---\n", listing.c_str());
  CU_ASSERT_TRUE(listed);
  bool one_open = xmtest::wait_until(
      [&] {
        const auto r = t.c.unixsock().command("GETVAL \"testhost/xmatters-ops/count-open_outages\"");
        return r.ok() && r.lines.size() == 1 && r.lines[0] == "value=1.000000e+00";
      },
      10s);
  CU_ASSERT_TRUE(one_open);
}
// --- delivery engine ------------------------------------------------------------

// A 429 asking to wait for years pauses the integration for the 5-minute
// backoff ceiling, not for RetryMaxAge, and says so in one WARNING.
void test_retry_after_bounded() {
  E2E t;
  xmtest::Standin::Reply busy;
  busy.status = 429;
  busy.retry_after = "99999999999";
  t.xm.script({busy});
  XM_REQUIRE(t.start());
  CU_ASSERT_TRUE(t.c.putval("e2e-ra/gauge", 95));
  XM_REQUIRE(t.xm.wait_for_requests(1, 20s));
  // (Longer than a century is read as a century.)
  const bool warned = t.c.wait_for_log("Retry-After asks to wait 3153600000 s", 10s);
  dump_log_on_failure(t.c, warned, "no WARNING about the Retry-After");
  CU_ASSERT_TRUE(warned);
  const auto lines = t.c.log_lines({"[warning] xmatters plugin: ", "integration ops", "delivery paused for 300.00 s"});
  CU_ASSERT_EQUAL(lines.size(), 1u);
  CU_ASSERT_EQUAL(t.c.log().find("test-key"), std::string::npos);
}

// The plugin's threads (named xm-*) of a running collectd, with the
// voluntary context switches (sleeps) each has made so far.
std::map<std::string, long long> plugin_thread_sleeps(pid_t pid) {
  std::map<std::string, long long> out;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(tasks.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string task = tasks + "/" + e->d_name;
    std::string comm = xmtest::read_file(task + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    if (comm.rfind("xm-", 0) != 0) continue;
    std::istringstream status(xmtest::read_file(task + "/status"));
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
        out[comm + "/" + e->d_name] = std::atoll(line.c_str() + sizeof "voluntary_ctxt_switches:");
  }
  closedir(d);
  return out;
}

// An idle plugin sleeps: its threads (named for top -H) do not wake while
// nothing is queued and nobody uses the control channel; before, each
// integration's watcher woke 50 times a second. A page still goes out as soon as it is made.
void test_idle_plugin_sleeps() {
  E2E t("    Connections 3\n");
  XM_REQUIRE(t.start());
  std::map<std::string, long long> before;
  // Until the threads have started and gone to sleep.
  XM_REQUIRE(xmtest::wait_until([&] { return (before = plugin_thread_sleeps(t.c.pid())).size() == 5; }, 10s));
  std::set<std::string> names;
  for (const auto& [task, n] : before) names.insert(task.substr(0, task.find('/')));
  CU_ASSERT_TRUE((names == std::set<std::string>{"xm-ops", "xm-sync", "xm-control"}));
  // Watching for a while is the point here: what is counted is what happens
  // in it.
  std::this_thread::sleep_for(3s);
  const auto after = plugin_thread_sleeps(t.c.pid());
  long long woken = 0;
  for (const auto& [task, n] : after) woken += n - before[task];
  if (woken > 3) std::fprintf(stderr, "\nthe idle plugin's threads woke %lld times in 3 s\n", woken);
  CU_ASSERT_TRUE(woken <= 3);
  CU_ASSERT_TRUE(t.c.putval("e2e-sleep/gauge", 95));
  XM_REQUIRE(wait_accepted(t.xm, 1));
}

// xMatters down, RenotifyInterval 1, QueueLimit 10: three failing values
// re-paged every second for six seconds (18 pages, which used to fill the
// queue and refuse new outages) keep one page each queued. A new outage is
// still taken, and when xMatters is back each outage gets its latest page,
// then its clear.
void test_repages_merged_while_down() {
  xmtest::Standin xm;
  CollectdProcess c("Timeout 1000\n" + threshold_block("      Persist true\n") +
                    xmatters_block(ops_integration(xm, "    RenotifyInterval 1\n    FloodLimit 0\n"), "  QueueLimit 10\n"));
  const bool started = c.start();
  dump_log_on_failure(c, started, "collectd did not start");
  XM_REQUIRE(started);
  xm.stop();
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < 3; ++i) CU_ASSERT_TRUE(c.putval("e2e-rp" + std::to_string(i) + "/gauge", 95));
    XM_REQUIRE(c.wait_for_log("Notification: severity = FAILURE", 10s, 3 * (round + 1)));
    // RenotifyInterval is time: a re-page needs a second since the last.
    std::this_thread::sleep_for(1100ms);
  }
  CU_ASSERT_TRUE(c.putval("e2e-rp3/gauge", 95));
  XM_REQUIRE(c.wait_for_log("Notification: severity = FAILURE", 10s, 3 * kRounds + 1));
  for (int i = 0; i < 4; ++i) CU_ASSERT_TRUE(c.putval("e2e-rp" + std::to_string(i) + "/gauge", 40));
  XM_REQUIRE(c.wait_for_log("Notification: severity = OKAY", 10s, 4));
  CU_ASSERT_TRUE(c.log_lines({kPluginError}).empty());  // nothing refused
  xm.restart();
  const bool cleared = xmtest::wait_while_progressing(
      [&] {
        std::size_t clears = 0;
        for (const auto& r : accepted(xm)) clears += r.str("event_type") == "clear";
        return clears == 4;
      },
      [&] { return xm.request_count(); }, 30s, 300s);
  dump_requests(xm, cleared, "waiting for 4 clears");
  XM_REQUIRE(cleared);
  std::map<std::string, std::vector<std::string>> by_outage;
  std::map<std::string, long long> paged_duration;
  for (const auto& r : accepted(xm)) {
    by_outage[r.str("outage_id")].push_back(r.str("event_type"));
    if (r.str("event_type") == "outage") paged_duration[r.str("services")] = std::atoll(r.str("duration").c_str());
  }
  CU_ASSERT_EQUAL(by_outage.size(), 4u);
  // Its page and its clear; a page in flight when a re-page came (a
  // millisecond's window each second) is not replaced, and goes first.
  for (const auto& [id, types] : by_outage)
    CU_ASSERT_TRUE(types == (std::vector<std::string>{"outage", "clear"}) ||
                   types == (std::vector<std::string>{"outage", "outage", "clear"}));
  // The page sent is the latest re-page, not the first one.
  for (int i = 0; i < 3; ++i) CU_ASSERT_TRUE(paged_duration["e2e-rp" + std::to_string(i) + "/gauge"] >= kRounds - 2);
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {
                         {"collectd_inputs",
                          {
                              {"malformed_url_with_password_refuses_start",
                               guarded<test_malformed_url_with_password_refuses_start>},
                              {"echoed_secret_never_logged", guarded<test_echoed_secret_never_logged>},
                              {"accepted_with_stalled_body_delivered_once",
                               guarded<test_accepted_with_stalled_body_delivered_once>},
                              {"absurd_times_become_receipt_time", guarded<test_absurd_times_become_receipt_time>},
                          }},
                         {"collectd_config",
                          {
                              {"contract_example_loads", guarded<test_contract_example_loads>},
                              {"shipped_example_config_is_valid", guarded<test_shipped_example_config_is_valid>},
                              {"bad_configurations_refuse_to_start", guarded<test_bad_configurations_refuse_to_start>},
                              {"config_check_with_capital_T", test_config_check_with_capital_T},
                              {"warnings_do_not_stop_collectd", guarded<test_warnings_do_not_stop_collectd>},
                              {"password_file_readable_by_others_warns",
                               guarded<test_password_file_readable_by_others_warns>},
                              {"missing_block_is_an_error", guarded<test_missing_block_is_an_error>},
                              {"unusable_spool_dirs_refuse_to_start", guarded<test_unusable_spool_dirs_refuse_to_start>},
                          }},
                         {"collectd_e2e",
                          {
                              {"startup_okay_storm_sends_nothing", guarded<test_startup_okay_storm_sends_nothing>},
                              {"failure_outage_payload", guarded<test_failure_outage_payload>},
                              {"escalation_and_clear", guarded<test_escalation_and_clear>},
                              {"restart_during_outage", guarded<test_restart_during_outage>},
                              {"recovered_while_down", guarded<test_recovered_while_down>},
                              {"narrowed_filter_still_clears", guarded<test_narrowed_filter_still_clears>},
                              {"flood_minute_across_restart", guarded<test_flood_minute_across_restart>},
                              {"flood_page_at_once_in_a_used_minute", guarded<test_flood_page_at_once_in_a_used_minute>},
                              {"renamed_integration_keeps_outages", guarded<test_renamed_integration_keeps_outages>},
                              {"stale_notifications_through_collectd",
                               guarded<test_stale_notifications_through_collectd>},
                              {"host_outage_reordered_through_collectd",
                               guarded<test_host_outage_reordered_through_collectd>},
                              {"host_member_limit_counts_failing_through_collectd",
                               guarded<test_host_member_limit_counts_failing_through_collectd>},
                              {"default_flood_limit_through_collectd", guarded<test_default_flood_limit_through_collectd>},
                              {"missing_value", guarded<test_missing_value>},
                              {"endpoint_down_then_up", guarded<test_endpoint_down_then_up>},
                              {"kill9_during_burst", guarded<test_kill9_during_burst>},
                              {"full_spool_dir", guarded<test_full_spool_dir>},
                              {"full_spool_dir_large_table", guarded<test_full_spool_dir_large_table>},
                              {"small_spool_dir", guarded<test_small_spool_dir>},
                              {"clear_held_in_memory_when_disk_full",
                               guarded<test_clear_held_in_memory_when_disk_full>},
                              {"redirect_not_followed", guarded<test_redirect_not_followed>},
                              {"routing_and_template", guarded<test_routing_and_template>},
                              {"putnotif_test_outage", guarded<test_putnotif_test_outage>},
                              {"putnotif_with_perl_client", guarded<test_putnotif_with_perl_client>},
                              {"dead_letter_keeps_outage_open", guarded<test_dead_letter_keeps_outage_open>},
                              {"renotify_interval", guarded<test_renotify_interval>},
                              {"https_with_ca_cert", guarded<test_https_with_ca_cert>},
                              {"own_statistics", guarded<test_own_statistics>},
                              {"retry_after_bounded", guarded<test_retry_after_bounded>},
                              {"idle_plugin_sleeps", guarded<test_idle_plugin_sleeps>},
                              {"repages_merged_while_down", guarded<test_repages_merged_while_down>},
                          }},
                     });
}
