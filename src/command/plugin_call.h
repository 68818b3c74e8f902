// What the verbs that act through the running plugin (resend, test) share:
// where its SpoolDir is, and a request over the channel whose every failure
// is one line (collectd-xmatters(1), THE CHANNEL).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "command/command.h"
#include "config/config.h"
#include "util/resources.h"

namespace xmatters::command {

struct PluginPlace {
  std::string spool_dir;
  // The configuration, when it could be read (with --spool-dir it need
  // not be).
  std::optional<Config> config;
};

// SpoolDir from --spool-dir or the configuration. Throws Failure (1) when
// neither gives one.
PluginPlace locate_plugin(const Options& options);

// The plugin's answer to verb. Throws Failure (1) with one line when the
// plugin is not running, refuses, cannot be reached, or answers an error.
Json call_plugin(const PluginPlace& place, const std::string& verb, const json_t* args,
                 std::chrono::milliseconds timeout);

// A table's rows, aligned: each column as wide as its widest cell (the
// last column is not padded).
void print_table(const std::vector<std::vector<std::string>>& rows);

// A string member of a JSON object ("" when absent).
std::string member(const json_t* object, const char* name);

}  // namespace xmatters::command
