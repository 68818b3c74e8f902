// The command's output (collectd-xmatters(1), OUTPUT): a JSON document, or
// its members as table cells (print_table, plugin_call.h).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "command/command.h"
#include "util/text.h"

namespace xmatters::command {

void print_json(const json_t* doc) {
  const DumpedJson text(json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
  std::printf("%s\n", text ? text.get() : "null");
}

std::string cell(const json_t* object, const char* key) {
  const json_t* v = json_object_get(object, key);
  if (json_is_string(v)) {
    const std::string s = one_printable_line(json_string_value(v));
    return s.empty() ? "-" : s;
  }
  if (json_is_integer(v)) return std::to_string(static_cast<std::int64_t>(json_integer_value(v)));
  if (json_is_true(v)) return "yes";
  if (json_is_false(v)) return "no";
  return "-";
}

}  // namespace xmatters::command
