// collectd-xmatters resend: dead letters handed back to the running plugin,
// which delivers them again with their event_id (collectd-xmatters(1),
// RESEND).
#include <cstdio>
#include <string>

#include "command/command.h"
#include "command/plugin_call.h"
#include "util/json_writer.h"

namespace xmatters::command {

namespace {

// The spool's sync and the dead-letter file's rewrite; a disk that takes
// longer than this is reported as a failure (what was queued stays queued).
constexpr std::chrono::seconds kResendTimeout{120};

}  // namespace

int resend(const Options& options, const Args& given) {
  Args args = given;
  const std::string integration = take_integration(args);
  bool all = false, include_cleared = false;
  Json ids(json_array());
  for (const std::string& a : args) {
    if (a == "--all")
      all = true;
    else if (a == "--include-cleared")
      include_cleared = true;
    else if (a.size() > 1 && a[0] == '-')
      throw UsageError("resend: unknown option '" + a + "'");
    else
      json_array_append_new(ids.get(), json_string(a.c_str()));
  }
  if (all && json_array_size(ids.get()) > 0) throw UsageError("resend: give EVENT_IDs or --all, not both");
  if (!all && json_array_size(ids.get()) == 0) throw UsageError("resend needs EVENT_ID... or --all");

  Json request(json_object());
  if (all)
    json_object_set_new(request.get(), "all", json_true());
  else
    json_object_set(request.get(), "event_ids", ids.get());
  if (!integration.empty()) json_object_set_new(request.get(), "integration", json_string(integration.c_str()));
  json_object_set_new(request.get(), "include_cleared", json_boolean(include_cleared));

  const PluginPlace place = locate_plugin(options);
  const Json answer = call_plugin(place, "resend", request.get(), kResendTimeout);
  const json_t* resent = json_object_get(answer.get(), "resent");
  const json_t* skipped = json_object_get(answer.get(), "skipped");
  const bool rewritten = !json_is_false(json_object_get(answer.get(), "dead_letter_file_rewritten"));

  if (options.json) {
    const DumpedJson text(json_dumps(answer.get(), JSON_COMPACT));
    std::printf("%s\n", text ? text.get() : "{}");
  } else if (json_array_size(resent) + json_array_size(skipped) == 0) {
    std::printf("no dead letters to resend\n");
  } else {
    std::vector<std::vector<std::string>> rows = {{"RESULT", "EVENT_ID", "INTEGRATION", "TYPE", "REASON"}};
    std::size_t i;
    const json_t* e;
    json_array_foreach(resent, i, e) {
      rows.push_back({"queued", member(e, "event_id"), member(e, "integration"), member(e, "event_type"), ""});
    }
    json_array_foreach(skipped, i, e) {
      rows.push_back({"skipped", member(e, "event_id"), member(e, "integration"), member(e, "event_type"),
                      member(e, "reason")});
    }
    print_table(rows);
  }
  if (!rewritten)
    throw Failure(1, "the events were queued again, but the dead-letter file could not be rewritten: they are still "
                     "listed there (the next start of collectd removes them); do not resend them");
  return 0;
}

}  // namespace xmatters::command
