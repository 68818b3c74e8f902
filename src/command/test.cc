// collectd-xmatters test: a test outage, then its clear, through the
// running plugin's own path, and xMatters' first answer to each
// (collectd-xmatters(1), TEST).
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "command/command.h"
#include "command/plugin_call.h"

namespace xmatters::command {

namespace {

// Who sends the test, as its description names them: the user behind sudo,
// else the one running the command.
std::string sender() {
  for (const char* name : {"SUDO_USER", "USER"})
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return v;
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) return pw->pw_name;
  return "uid " + std::to_string(::getuid());
}

// The plugin waits for each answer up to the integration's Timeout and 5 s,
// the outage's then the clear's; the command a little longer. Without the
// configuration, the longest Timeout the plugin accepts bounds it.
std::chrono::milliseconds call_timeout(const PluginPlace& place, const std::string& integration) {
  std::chrono::milliseconds longest{std::chrono::minutes(5)};
  if (place.config) {
    longest = std::chrono::milliseconds(0);
    for (const auto& i : place.config->integrations)
      if (integration.empty() || i.name == integration) longest = std::max(longest, i.timeout);
  }
  return 2 * (longest + std::chrono::seconds(5)) + std::chrono::seconds(15);
}

std::string result_text(const json_t* answer) {
  if (json_is_true(json_object_get(answer, "delivered"))) return "delivered";
  return "not delivered: " + member(answer, "reason");
}

}  // namespace

int test(const Options& options, const Args& given) {
  Args args = given;
  const std::string integration = take_integration(args);
  bool clear = true;
  for (const std::string& a : args) {
    if (a == "--no-clear")
      clear = false;
    else if (a.size() > 1 && a[0] == '-')
      throw UsageError("test: unknown option '" + a + "'");
    else
      throw UsageError("test: unexpected argument '" + a + "'");
  }
  Json request(json_object());
  if (!integration.empty()) json_object_set_new(request.get(), "integration", json_string(integration.c_str()));
  json_object_set_new(request.get(), "clear", json_boolean(clear));
  json_object_set_new(request.get(), "user", json_string(sender().c_str()));

  const PluginPlace place = locate_plugin(options);
  const Json answer = call_plugin(place, "test", request.get(), call_timeout(place, integration));
  const json_t* integrations = json_object_get(answer.get(), "integrations");

  // collectd began stopping: the plugin waited for no answer, sent no clear.
  const bool stopping = json_is_true(json_object_get(answer.get(), "stopping"));
  bool ok = json_array_size(integrations) > 0 && !stopping;
  std::vector<std::vector<std::string>> rows = {{"INTEGRATION", "EVENT", "STATUS", "REQUEST_ID", "RESULT"}};
  std::size_t i;
  const json_t* it;
  json_array_foreach(integrations, i, it) {
    const std::string name = member(it, "name");
    for (const char* event : {"outage", "clear"}) {
      const json_t* a = json_object_get(it, event);
      if (!json_is_object(a)) {
        if (clear && std::string(event) == "clear") {
          ok = false;
          rows.push_back({name, event, "-", "-",
                          stopping ? "not sent: the plugin is stopping (collectd is shutting down)"
                                   : "not sent: the test outage event was not delivered"});
        }
        continue;
      }
      ok = ok && json_is_true(json_object_get(a, "delivered"));
      const json_int_t status = json_integer_value(json_object_get(a, "status"));
      const std::string request_id = member(a, "request_id");
      rows.push_back({name, event, status > 0 ? std::to_string(status) : "-", request_id.empty() ? "-" : request_id,
                      result_text(a)});
    }
  }
  if (options.json) {
    const DumpedJson text(json_dumps(answer.get(), JSON_COMPACT));
    std::printf("%s\n", text ? text.get() : "{}");
  } else {
    print_table(rows);
  }
  return ok ? 0 : 1;
}

}  // namespace xmatters::command
