// collectd-xmatters status: health per integration, with the exit status of
// a Nagios plugin (collectd-xmatters(1), status), so that another system
// can watch the pager.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "command/command.h"
#include "command/plugin_call.h"
#include "control/health.h"

namespace xmatters::command {

namespace {

using control::Health;
using control::kNagiosNames;
using control::kNotRunning;
using control::kUnknown;

std::string summary(const json_t* doc, const Health& v) {
  if (!json_is_true(json_object_get(doc, "running")))
    return std::string(!v.problems.empty() && v.problems.front() == kNotRunning ? "" : "the plugin is not running; ") +
           "read from SpoolDir " +
           cell(doc, "spool_dir");
  return "the plugin is running since " + cell(doc, "since") + " (pid " + cell(doc, "pid") + ")";
}

void print_text(const json_t* doc, const Health& v) {
  std::string line = std::string("XMATTERS ") + kNagiosNames[v.state] + ": ";
  for (const auto& p : v.problems) line += p + "; ";
  std::printf("%s%s\n", line.c_str(), summary(doc, v).c_str());
  std::vector<std::vector<std::string>> rows = {{"INTEGRATION", "RUNNING", "QUEUED", "OLDEST_AGE", "OUTAGES",
                                                 "SILENCED", "FOLDED", "DEAD_LETTERS", "PAUSED", "FLOOD_USED",
                                                 "LAST_DELIVERY", "LAST_FAILURE"}};
  const json_t* integrations = json_object_get(doc, "integrations");
  for (std::size_t i = 0; i < json_array_size(integrations); ++i) {
    const json_t* it = json_array_get(integrations, i);
    const json_t* delivery = json_object_get(it, "last_delivery");
    const json_t* failure = json_object_get(it, "last_failure");
    const json_t* flood = json_object_get(it, "flood_used");
    const std::string limit = cell(it, "flood_limit");
    rows.push_back({cell(it, "name"), cell(it, "running"), cell(it, "queued"), cell(it, "oldest_queued_age"),
                    cell(it, "open_outages"), cell(it, "silenced"), cell(it, "folded"), cell(it, "dead_letters"),
                    cell(it, "paused"),
                    limit == "0" ? "-" : cell(flood, "outage") + "+" + cell(flood, "clear") + "/" + limit,
                    json_is_object(delivery) ? cell(delivery, "time") + " " + cell(delivery, "status") + " " + cell(delivery, "request_id")
                             : "-",
                    json_is_object(failure) ? cell(failure, "time") + " " + cell(failure, "reason") : "-"});
  }
  print_table(rows);
  const json_t* silences = json_object_get(doc, "active_silences");
  if (json_array_size(silences) == 0) return;
  std::vector<std::vector<std::string>> active = {{"ACTIVE_SILENCE", "UNTIL", "MATCHERS", "INTEGRATION", "AUTHOR", "COMMENT"}};
  for (std::size_t i = 0; i < json_array_size(silences); ++i) {
    const json_t* s = json_array_get(silences, i);
    std::string matchers;
    const json_t* list = json_object_get(s, "matchers");
    for (std::size_t m = 0; m < json_array_size(list); ++m)
      matchers += (m ? " " : "") + std::string(json_string_value(json_array_get(list, m)));
    const std::string integration = cell(s, "integration");
    active.push_back({cell(s, "id"), cell(s, "end"), matchers, integration == "-" ? "all" : integration,
                      cell(s, "author"), cell(s, "comment")});
  }
  std::printf("\n");
  print_table(active);
}

}  // namespace

int status(const Options& options, const Args& arguments) {
  Args args = arguments;
  control::Filter filter;
  filter.integration = take_integration(args);
  no_more_args(args);
  Json doc;
  Place place;
  try {
    place = locate(options, kUnknown);
    doc = fetch(place, "status", filter, kUnknown);
    if (!filter.integration.empty() && json_array_size(json_object_get(doc.get(), "integrations")) == 0)
      throw Failure(kUnknown, "no integration \"" + filter.integration + "\" is configured");
  } catch (const Failure& e) {
    if (options.json) throw;
    // A Nagios plugin's one line, on stdout.
    std::printf("XMATTERS UNKNOWN: %s\n", e.what());
    return kUnknown;
  }
  const Health v = control::judge_health(doc.get(), place.loads_plugin);
  if (options.json) {
    json_object_set_new(doc.get(), "status", json_string(kNagiosNames[v.state]));
    json_t* problems = json_array();
    for (const auto& p : v.problems) json_array_append_new(problems, json_string(p.c_str()));
    json_object_set_new(doc.get(), "problems", problems);
    json_object_set_new(doc.get(), "loads_plugin", json_boolean(place.loads_plugin));
    print_json(doc.get());
  } else {
    print_text(doc.get(), v);
  }
  return v.state;
}

}  // namespace xmatters::command
