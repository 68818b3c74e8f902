// The <Plugin xmatters> block read into a Config (collectd-xmatters(5),
// OPTIONS): one declarative option table drives the parsing, the checks of
// each value, doc/options.md's table and the man page's check.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace xmatters {

enum class OptionType {
  String,        // one string
  StringList,    // one or more strings; the option may repeat
  Boolean,
  Integer,       // a non-negative whole number
  Seconds,       // a non-negative number of seconds
  Severity,      // "warning" | "failure"
  Regex,         // a POSIX extended regular expression
  Url,           // http:// or https://
  Path,          // a file that must be readable at configuration time
  Block,         // <Integration "name"> or <Maintenance "name"> ... </...>
};

enum class OptionScope { Plugin, Integration, Maintenance };

struct OptionSpec {
  const char* name;          // CamelCase, matched case-insensitively
  OptionScope scope;
  OptionType type;
  const char* default_text;  // as documented; nullptr = unset
  const char* description;   // one line, for the docs
};

// Every option the plugin knows, in documentation order.
const std::vector<OptionSpec>& option_table();

// doc/options.md's table (between its <!-- options:begin --> and
// <!-- options:end --> markers), rendered from option_table().
std::string render_option_docs();

// Parses and validates the <Plugin xmatters> block (its children). Throws
// ConfigError at the first mistake. Reads the files that options name
// (PasswordFile, Template, ClearTemplate, CACert, ClientCert, ClientKey).
Config parse_config(const ConfigNode& plugin_block);

}  // namespace xmatters
