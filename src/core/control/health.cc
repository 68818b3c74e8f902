#include "control/health.h"

#include <algorithm>
#include <utility>

#include "util/text.h"

namespace xmatters::control {

namespace {

// A string member as the status line shows it ("-" for none).
std::string shown(const json_t* object, const char* key) {
  const char* s = json_string_value(json_object_get(object, key));
  const std::string line = one_printable_line(s != nullptr ? s : "");
  return line.empty() ? "-" : line;
}

}  // namespace

void Health::raise(int to, std::string problem) {
  state = std::max(state, to);
  problems.push_back(std::move(problem));
}

Health judge_health(const json_t* doc, bool loads_plugin) {
  Health h;
  if (!json_is_true(json_object_get(doc, "running")) && loads_plugin) h.raise(kCritical, kNotRunning);
  const json_t* integrations = json_object_get(doc, "integrations");
  for (std::size_t i = 0; i < json_array_size(integrations); ++i) {
    const json_t* it = json_array_get(integrations, i);
    const std::string name = shown(it, "name");
    const json_int_t oldest = json_integer_value(json_object_get(it, "oldest_queued_age"));
    const json_int_t letters = json_integer_value(json_object_get(it, "dead_letters"));
    const json_int_t failing = json_integer_value(json_object_get(it, "failing_for"));
    if (oldest > kQueuedCritical)
      h.raise(kCritical, name + ": the oldest queued event is " + std::to_string(oldest) + " s old");
    if (letters > 0) h.raise(kWarning, name + ": " + std::to_string(letters) + " dead letter(s)");
    if (failing > kFailingWarning)
      h.raise(kWarning, name + ": deliveries failing for " + std::to_string(failing) + " s (" +
                            shown(json_object_get(it, "last_failure"), "reason") + ")");
  }
  return h;
}

}  // namespace xmatters::control
