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
#include <sstream>
#include <string>
#include <vector>

#include "collectd_harness.h"
#include "conf_file.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmtest::CollectdProcess;

const std::string kCommand = COMMAND_BIN;

struct Run {
  int status = -1;
  std::string out;  // stdout and stderr together
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Run run_command(const std::vector<std::string>& args) {
  std::string cmd = shell_quote(kCommand);
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
                     });
}
