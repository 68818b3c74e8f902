// The command's output (collectd-xmatters(1), OUTPUT): a JSON document, or
// its members as table cells (print_table, plugin_call.h).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "command/command.h"

namespace xmatters::command {

void print_json(const json_t* doc) {
  const DumpedJson text(json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
  std::printf("%s\n", text ? text.get() : "null");
}

std::string cell(const json_t* object, const char* key) {
  const json_t* v = json_object_get(object, key);
  if (json_is_string(v)) {
    // One row per line, and no terminal control: a line break in a reason
    // or a silence's comment would start another row, an escape sequence
    // would reach the operator's terminal.
    std::string s = json_string_value(v);
    std::replace_if(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }, ' ');
    return s.empty() ? "-" : s;
  }
  if (json_is_integer(v)) return std::to_string(static_cast<std::int64_t>(json_integer_value(v)));
  if (json_is_true(v)) return "yes";
  if (json_is_false(v)) return "no";
  return "-";
}

}  // namespace xmatters::command
