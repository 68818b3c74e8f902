// collectd.conf's syntax as collectd 5.12's scanner and parser read it (for
// the command, collectd-xmatters(1)): one file's text into a ConfigNode
// tree. Include and what collectd does with the items are conf_file.h's.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "config/config.h"

namespace xmatters {

// A syntax error: what() is one line, "FILE, line N near `TEXT': WHY".
class ConfSyntaxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One file's text parsed as collectd's parser does (its scanner's tokens,
// quoting and escapes, numbers, booleans, blocks, comments, line
// continuation), Include not followed: the root's children are the file's
// top-level items. Throws ConfSyntaxError where collectd's parser fails.
ConfigNode parse_conf_text(std::string_view text, const std::string& file);

}  // namespace xmatters
