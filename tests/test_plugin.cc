// The glue, called through the fake collectd host as collectd would call
// it, delivering over real loopback HTTP to the xMatters stand-in.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fake_collectd.h"
#include "store/spool_dir.h"
#include "standin.h"
#include "testing.h"

extern "C" void module_register(void);

namespace {

using xmatters::ConfigNode;
using xmatters::ConfigValue;

ConfigNode opt(const std::string& key, std::vector<ConfigValue> values, std::vector<ConfigNode> children = {}) {
  return ConfigNode{key, std::move(values), std::move(children)};
}

ConfigNode plugin_block(std::vector<ConfigNode> children) {
  return opt("Plugin", {ConfigValue::of("xmatters")}, std::move(children));
}

ConfigNode integration(const std::string& name, const std::string& outage_url, const std::string& clear_url) {
  return opt("Integration", {ConfigValue::of(name)},
             {opt("OutageURL", {ConfigValue::of(outage_url)}), opt("ClearURL", {ConfigValue::of(clear_url)}),
              opt("Timeout", {ConfigValue::of(2.0)})});
}

cdtime_t at(double seconds) { return DOUBLE_TO_CDTIME_T(seconds); }

// Each test starts from a freshly registered plugin and ends with collectd's shutdown.
struct Session {
  xmtest::TempDir base;
  Session() {
    fake_collectd::reset();
    fake_collectd::set_global_option("BaseDir", base.path());
    module_register();
  }
  ~Session() { fake_collectd::call_shutdown(); }
};

// The plugin started with config, as collectd's start-up does; a failure
// ends the test.
void configure_and_init(const ConfigNode& config) {
  fake_collectd::OConfig ci(config);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
}

void test_registers_config_init_shutdown_only() {
  Session s;
  CU_ASSERT_FALSE(fake_collectd::has_notification_callback());
  CU_ASSERT_FALSE(fake_collectd::has_read_callback());
  CU_ASSERT_EQUAL(fake_collectd::call_init(), -1);  // no <Plugin xmatters> block
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "xmatters plugin: no <Plugin xmatters> block"), 1u);
}

void test_bad_configuration_stops_the_plugin() {
  Session s;
  fake_collectd::OConfig ci(plugin_block({integration("ops", "ftp://127.0.0.1/x?apiKey=KEY123", "")}));
  CU_ASSERT_EQUAL(fake_collectd::call_config(ci.item()), -1);
  const auto errors = fake_collectd::count_log(LOG_ERR, "xmatters plugin: ");
  CU_ASSERT_EQUAL(errors, 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "OutageURL"), 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "KEY123"), 0u);
  CU_ASSERT_EQUAL(fake_collectd::call_init(), -1);
  CU_ASSERT_FALSE(fake_collectd::has_notification_callback());
}

void test_second_plugin_block_is_an_error() {
  Session s;
  xmtest::Standin standin;
  fake_collectd::OConfig ci(plugin_block({integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL(fake_collectd::call_config(ci.item()), -1);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "more than once"), 1u);
  CU_ASSERT_EQUAL(fake_collectd::call_init(), -1);
}

void test_default_spool_dir_is_private_under_basedir() {
  Session s;
  xmtest::Standin standin;
  fake_collectd::OConfig ci(plugin_block({integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(::stat((s.base / "xmatters").c_str(), &st), 0);
  CU_ASSERT(S_ISDIR(st.st_mode));
  CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
  CU_ASSERT(fake_collectd::has_notification_callback());
}

// Found while the configuration is read, so that collectd does not start.
void test_unusable_spool_dir_fails_the_configuration() {
  Session s;
  xmtest::Standin standin;
  xmtest::write_file(s.base / "file", "not a directory");
  fake_collectd::OConfig ci(plugin_block({opt("SpoolDir", {ConfigValue::of(s.base / "file/spool")}),
                                          integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL(fake_collectd::call_config(ci.item()), -1);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "xmatters plugin: SpoolDir \"" + (s.base / "file/spool") + "\""), 1u);
  CU_ASSERT_EQUAL(fake_collectd::call_init(), -1);
  CU_ASSERT_FALSE(fake_collectd::has_notification_callback());
}

void test_second_process_on_the_spool_dir_is_refused() {
  Session s;
  xmtest::Standin standin;
  // What another collectd would hold; a flock is per open file, so this
  // process's own second open stands for it.
  std::vector<std::string> warnings;
  xmatters::SpoolDir other(s.base.path(), false, warnings);
  fake_collectd::OConfig ci(plugin_block({opt("SpoolDir", {ConfigValue::of(s.base.path())}),
                                          integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL(fake_collectd::call_config(ci.item()), -1);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "is in use by another process"), 1u);
  CU_ASSERT_EQUAL(fake_collectd::call_init(), -1);
  CU_ASSERT_FALSE(fake_collectd::has_notification_callback());
}

void test_threshold_failure_and_okay_page_and_clear() {
  Session s;
  xmtest::Standin standin;
  fake_collectd::OConfig ci(plugin_block({integration("ops", standin.url("outage-fn"), standin.url("clear-fn"))}));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);

  fake_collectd::Notif failure(NOTIF_FAILURE, "db1", "cpu", "percent",
                               "Host db1, plugin cpu (instance 0) type percent (instance user): Data source \"value\" "
                               "is currently 95.000000. That is above the failure threshold of 90.000000.",
                               at(1795866465.25));
  failure.plugin_instance("0").type_instance("user");
  failure.meta("DataSource", "value").meta("CurrentValue", 95.0).meta("WarningMin", NAN).meta("WarningMax", 80.0);
  failure.meta("FailureMin", NAN).meta("FailureMax", 90.0);
  CU_ASSERT_EQUAL(fake_collectd::call_notification(failure.get()), 0);
  CU_ASSERT_FATAL(standin.wait_for_accepted(1, std::chrono::seconds(10)));

  auto requests = standin.requests();
  CU_ASSERT_EQUAL(requests[0].function_id, "outage-fn");
  auto body = xmtest::parse_json(requests[0].body);
  CU_ASSERT_FATAL(body != nullptr);
  CU_ASSERT_EQUAL(xmtest::json_string_member(body.get(), "event_type"), "outage");
  CU_ASSERT_EQUAL(xmtest::json_string_member(body.get(), "name"), "db1");
  CU_ASSERT_EQUAL(xmtest::json_string_member(body.get(), "services"), "cpu-0/percent-user");
  CU_ASSERT_EQUAL(xmtest::json_string_member(body.get(), "items"), "value");
  CU_ASSERT_EQUAL(xmtest::json_string_member(body.get(), "timestamp"), "2026-11-28T11:47:45Z");
  const json_t* meta = json_object_get(json_object_get(body.get(), "collectd"), "meta");
  CU_ASSERT(json_is_null(json_object_get(meta, "WarningMin")));
  CU_ASSERT_EQUAL(json_real_value(json_object_get(meta, "CurrentValue")), 95.0);
  const std::string outage_id = xmtest::json_string_member(body.get(), "outage_id");

  // collectd repeats the FAILURE (Persist true): nothing more is sent.
  fake_collectd::Notif again(NOTIF_FAILURE, "db1", "cpu", "percent", "still failing", at(1795866466));
  again.plugin_instance("0").type_instance("user");
  CU_ASSERT_EQUAL(fake_collectd::call_notification(again.get()), 0);

  fake_collectd::Notif okay(NOTIF_OKAY, "db1", "cpu", "percent", "back to normal", at(1795866525.5));
  okay.plugin_instance("0").type_instance("user");
  CU_ASSERT_EQUAL(fake_collectd::call_notification(okay.get()), 0);
  CU_ASSERT_FATAL(standin.wait_for_accepted(2, std::chrono::seconds(10)));
  requests = standin.requests();
  CU_ASSERT_EQUAL(requests.size(), 2u);
  CU_ASSERT_EQUAL(requests[1].function_id, "clear-fn");
  auto clear = xmtest::parse_json(requests[1].body);
  CU_ASSERT_FATAL(clear != nullptr);
  CU_ASSERT_EQUAL(xmtest::json_string_member(clear.get(), "event_type"), "clear");
  CU_ASSERT_EQUAL(xmtest::json_string_member(clear.get(), "outage_id"), outage_id);
  CU_ASSERT_EQUAL(xmtest::json_string_member(clear.get(), "duration"), "60");
}

void test_unterminated_fields_give_valid_json() {
  Session s;
  xmtest::Standin standin;
  fake_collectd::OConfig ci(plugin_block({integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
  fake_collectd::Notif n(NOTIF_FAILURE, "h", "p", "t", "m", at(1795866465));
  notification_t raw = n.get();
  std::memset(raw.host, '\xff', sizeof raw.host);  // no NUL, and not UTF-8
  std::memset(raw.message, '"', sizeof raw.message);
  CU_ASSERT_EQUAL(fake_collectd::call_notification(raw), 0);
  CU_ASSERT_FATAL(standin.wait_for_accepted(1, std::chrono::seconds(10)));
  auto body = xmtest::parse_json(standin.requests()[0].body);
  CU_ASSERT_FATAL(body != nullptr);
  const std::string host = xmtest::json_string_member(body.get(), "name");
  CU_ASSERT_EQUAL(host.size(), sizeof raw.host * 3);  // every byte became U+FFFD
  CU_ASSERT_EQUAL(xmtest::json_string_member(body.get(), "description"), std::string(sizeof raw.message, '"'));
}

void test_read_callback_dispatches_statistics() {
  Session s;
  xmtest::Standin standin;
  fake_collectd::OConfig ci(plugin_block({integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
  fake_collectd::Notif n(NOTIF_FAILURE, "h", "load", "load", "has not been updated for 12.000 seconds.", at(1795866465));
  CU_ASSERT_EQUAL(fake_collectd::call_notification(n.get()), 0);
  CU_ASSERT_FATAL(standin.wait_for_accepted(1, std::chrono::seconds(10)));
  CU_ASSERT_FATAL(xmtest::wait_until([] {
    fake_collectd::call_read();
    for (const auto& v : fake_collectd::dispatched_values())
      if (v.type_instance == "delivered" && v.value == 1) return true;
    return false;
  }));
  bool queue = false, open = false;
  for (const auto& v : fake_collectd::dispatched_values()) {
    CU_ASSERT_EQUAL(v.plugin, "xmatters");
    CU_ASSERT_EQUAL(v.plugin_instance, "ops");
    if (v.type == "queue_length") queue = true;
    if (v.type_instance == "open_outages" && v.value == 1) open = true;
  }
  CU_ASSERT(queue);
  CU_ASSERT(open);
}

// FloodLimit 1: the second outage of the minute is folded into the flood
// outage (which pages), and ReportStats counts it as total_events-folded.
void test_read_callback_counts_folded_outages() {
  Session s;
  xmtest::Standin standin;
  ConfigNode ops = integration("ops", standin.url("o"), standin.url("c"));
  ops.children.push_back(opt("FloodLimit", {ConfigValue::of(1.0)}));
  fake_collectd::OConfig ci(plugin_block({ops}));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
  fake_collectd::Notif a(NOTIF_FAILURE, "h", "load", "load", "has not been updated for 12.000 seconds.", at(1795866465));
  fake_collectd::Notif b(NOTIF_FAILURE, "h2", "load", "load", "has not been updated for 12.000 seconds.", at(1795866465));
  CU_ASSERT_EQUAL(fake_collectd::call_notification(a.get()), 0);
  CU_ASSERT_EQUAL(fake_collectd::call_notification(b.get()), 0);
  CU_ASSERT(xmtest::wait_until([] {
    fake_collectd::call_read();
    for (const auto& v : fake_collectd::dispatched_values())
      if (v.type == "total_events" && v.type_instance == "folded" && v.value == 1) return true;
    return false;
  }));
}

void test_report_stats_false_registers_no_read() {
  Session s;
  xmtest::Standin standin;
  fake_collectd::OConfig ci(plugin_block({opt("ReportStats", {ConfigValue::of(false)}),
                                          integration("ops", standin.url("o"), standin.url("c"))}));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
  CU_ASSERT_FALSE(fake_collectd::has_read_callback());
}

void test_shutdown_unregisters_and_keeps_the_spool() {
  xmtest::TempDir base;
  xmtest::Standin standin;
  standin.stop();  // xMatters unreachable: the event must wait in the spool
  const auto config = plugin_block({opt("SpoolDir", {ConfigValue::of(base / "spool")}),
                                    integration("ops", standin.url("o"), standin.url("c"))});
  {
    Session s;
    fake_collectd::OConfig ci(config);
    CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
    CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
    fake_collectd::Notif n(NOTIF_FAILURE, "h", "p", "t", "m", at(1795866465));
    CU_ASSERT_EQUAL(fake_collectd::call_notification(n.get()), 0);
    CU_ASSERT_EQUAL(fake_collectd::call_shutdown(), 0);
    CU_ASSERT_FALSE(fake_collectd::has_notification_callback());
  }
  standin.restart();
  Session s;
  configure_and_init(config);
  CU_ASSERT(standin.wait_for_accepted(1, std::chrono::seconds(10)));
}

// collectd killed (kill -9) the moment the callback returned, before the
// event could be sent: the event and its outage both come back from the
// spool, so the restarted plugin pages once, treats collectd's re-sent
// FAILURE as the same outage and clears it under the same outage_id.
void test_kill9_after_the_callback_pages_once() {
  xmtest::TempDir base;
  xmtest::Standin standin;
  standin.stop();  // down while the first collectd runs: the event stays spooled
  const auto config = plugin_block({opt("SpoolDir", {ConfigValue::of(base / "spool")}),
                                    integration("ops", standin.url("outage-fn"), standin.url("clear-fn"))});
  auto notify = [](int severity, double time) {
    fake_collectd::Notif n(severity, "db1", "cpu", "percent", "m", at(time));
    n.meta("DataSource", "value").meta("CurrentValue", severity == NOTIF_OKAY ? 50.0 : 95.0).meta("FailureMax", 90.0);
    return fake_collectd::call_notification(n.get());
  };
  const pid_t child = ::fork();
  CU_ASSERT_FATAL(child >= 0);
  if (child == 0) {
    fake_collectd::reset();
    fake_collectd::set_global_option("BaseDir", base.path());
    module_register();
    fake_collectd::OConfig ci(config);
    if (fake_collectd::call_config(ci.item()) != 0 || fake_collectd::call_init() != 0) ::_exit(1);
    notify(NOTIF_FAILURE, 1795866465);
    ::kill(::getpid(), SIGKILL);
    ::_exit(2);
  }
  int status = 0;
  CU_ASSERT_FATAL(::waitpid(child, &status, 0) == child);
  CU_ASSERT_FATAL(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  standin.restart();
  Session s;
  configure_and_init(config);
  CU_ASSERT_FATAL(standin.wait_for_accepted(1, std::chrono::seconds(10)));
  CU_ASSERT_EQUAL(notify(NOTIF_FAILURE, 1795866475), 0);  // collectd re-sends it after its restart
  CU_ASSERT_EQUAL(notify(NOTIF_OKAY, 1795866485), 0);
  CU_ASSERT_FATAL(standin.wait_for_accepted(2, std::chrono::seconds(10)));
  const auto requests = standin.requests();
  CU_ASSERT_EQUAL_FATAL(requests.size(), 2u);
  auto page = xmtest::parse_json(requests[0].body);
  auto clear = xmtest::parse_json(requests[1].body);
  CU_ASSERT_FATAL(page != nullptr && clear != nullptr);
  CU_ASSERT_EQUAL(xmtest::json_string_member(page.get(), "event_type"), "outage");
  CU_ASSERT_EQUAL(xmtest::json_string_member(clear.get(), "event_type"), "clear");
  CU_ASSERT_EQUAL(xmtest::json_string_member(clear.get(), "outage_id"),
                  xmtest::json_string_member(page.get(), "outage_id"));
}

// A delivery client that libcurl cannot set up (a User over its 8 MB string
// limit: a real collectd's parser takes minutes over such a line, hence
// here) fails init with an ERROR naming the integration, and nothing is
// registered, instead of a delivery thread ending after one ERROR while
// events keep being spooled.
void test_client_that_cannot_be_made_fails_init() {
  Session s;
  ConfigNode ops = integration("ops", "http://127.0.0.1:9/f?apiKey=KEY123", "http://127.0.0.1:9/f?apiKey=KEY123");
  ops.children.push_back(opt("User", {ConfigValue::of(std::string(8000001, 'u'))}));
  ops.children.push_back(opt("Password", {ConfigValue::of("PASSW0RD")}));
  fake_collectd::OConfig ci(plugin_block({ops}));
  const bool refused = fake_collectd::call_config(ci.item()) != 0 || fake_collectd::call_init() != 0;
  CU_ASSERT(refused);
  // One ERROR, naming the integration (the refusal may come from the
  // configuration check, once that knows libcurl's limits, or from init).
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "xmatters plugin: "), 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "ops"), 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "PASSW0RD"), 0u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "KEY123"), 0u);
  CU_ASSERT_FALSE(fake_collectd::has_notification_callback());
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {{"glue",
                       {{"registers_config_init_shutdown_only", test_registers_config_init_shutdown_only},
                        {"bad_configuration_stops_the_plugin", test_bad_configuration_stops_the_plugin},
                        {"second_plugin_block_is_an_error", test_second_plugin_block_is_an_error},
                        {"default_spool_dir_is_private_under_basedir", test_default_spool_dir_is_private_under_basedir},
                        {"unusable_spool_dir_fails_the_configuration", test_unusable_spool_dir_fails_the_configuration},
                        {"second_process_on_the_spool_dir_is_refused", test_second_process_on_the_spool_dir_is_refused},
                        {"threshold_failure_and_okay_page_and_clear", test_threshold_failure_and_okay_page_and_clear},
                        {"unterminated_fields_give_valid_json", test_unterminated_fields_give_valid_json},
                        {"read_callback_dispatches_statistics", test_read_callback_dispatches_statistics},
                        {"read_callback_counts_folded_outages", test_read_callback_counts_folded_outages},
                        {"report_stats_false_registers_no_read", test_report_stats_false_registers_no_read},
                        {"shutdown_unregisters_and_keeps_the_spool", test_shutdown_unregisters_and_keeps_the_spool},
                        {"kill9_after_the_callback_pages_once", test_kill9_after_the_callback_pages_once},
                        {"client_that_cannot_be_made_fails_init", test_client_that_cannot_be_made_fails_init}}}});
}
