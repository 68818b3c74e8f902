// collectd-xmatters outages, queue and dead-letters (collectd-xmatters(1)):
// a view's document, as JSON or as a table.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "command/command.h"
#include "command/plugin_call.h"

namespace xmatters::command {

namespace {

using Rows = std::vector<std::vector<std::string>>;

// One read-only verb: --integration, what else the verb takes (into
// filter), its document, then JSON or the table rows of its list.
template <typename RowOf>
int show(const Options& options, const Args& arguments, const char* verb, const char* list, bool matchers,
         Rows rows, RowOf row_of) {
  Args args = arguments;
  control::Filter filter;
  filter.integration = take_integration(args);
  if (matchers) {
    for (const auto& a : args) {
      if (a.size() > 1 && a[0] == '-') throw UsageError("unknown option '" + a + "'");
      try {
        filter.matchers.push_back(Matcher::parse(a));
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
    }
    args.clear();
  }
  no_more_args(args);
  constexpr int kFailed = 1;
  const Json doc = fetch(locate(options, kFailed), verb, filter, kFailed);
  if (options.json) {
    print_json(doc.get());
    return 0;
  }
  const json_t* items = json_object_get(doc.get(), list);
  for (std::size_t i = 0; i < json_array_size(items); ++i) rows.push_back(row_of(json_array_get(items, i)));
  print_table(rows);
  return 0;
}

std::string outage_key(const json_t* o) {
  const std::string kind = cell(o, "kind");
  const json_t* members = json_object_get(o, "members");
  if (kind == "value_list") return cell(o, "key");
  std::size_t failing = 0;
  for (std::size_t i = 0; i < json_array_size(members); ++i)
    failing += json_is_true(json_object_get(json_array_get(members, i), "failing"));
  return std::to_string(json_array_size(members)) + (kind == "flood" ? " outages listed" : " members") + " (" +
         std::to_string(failing) + " failing)";
}

}  // namespace

int outages(const Options& options, const Args& args) {
  return show(options, args, "outages", "outages", true,
              {{"OUTAGE_ID", "INTEGRATION", "KIND", "HOST", "KEY", "SEVERITY", "START", "LAST_PAGE", "STATE"}},
              [](const json_t* o) -> std::vector<std::string> {
                const std::string into = cell(o, "folded_into"), by = cell(o, "covered_by");
                return {cell(o, "outage_id"), cell(o, "integration"), cell(o, "kind"), cell(o, "host"),
                        outage_key(o), cell(o, "severity"), cell(o, "start"), cell(o, "last_page"),
                        cell(o, "state") + (into == "-" ? "" : " into " + into) + (by == "-" ? "" : " by " + by)};
              });
}

int queue(const Options& options, const Args& args) {
  return show(options, args, "queue", "events", false,
              {{"EVENT_ID", "OUTAGE_ID", "INTEGRATION", "TYPE", "AGE", "ATTEMPTS", "NEXT_ATTEMPT", "LAST_ERROR"}},
              [](const json_t* e) -> std::vector<std::string> {
                const bool in_flight = json_is_true(json_object_get(e, "in_flight"));
                return {cell(e, "event_id"), cell(e, "outage_id"), cell(e, "integration"), cell(e, "type"),
                        cell(e, "age"), cell(e, "attempts"), in_flight ? "in flight" : cell(e, "next_attempt"),
                        cell(e, "last_error")};
              });
}

int dead_letters(const Options& options, const Args& args) {
  return show(options, args, "dead-letters", "dead_letters", false,
              {{"EVENT_ID", "OUTAGE_ID", "INTEGRATION", "TYPE", "TIME", "STATUS", "CLEARED_BY", "REASON"}},
              [](const json_t* l) -> std::vector<std::string> {
                return {cell(l, "event_id"), cell(l, "outage_id"),  cell(l, "integration"), cell(l, "type"),
                        cell(l, "time"),     cell(l, "status"),     cell(l, "cleared_by"),  cell(l, "reason")};
              });
}

}  // namespace xmatters::command
