// The plugin's configuration-time work in one place, so that collectd's
// start (the glue's configuration callback) and collectd-xmatters check
// cannot disagree: the <Plugin xmatters> block through parse_config, then
// SpoolDir's checks (collectd-xmatters(5), OPTIONS and SECURITY).
#pragma once

#include <optional>
#include <string>

#include "config/config.h"
#include "store/spool_dir.h"

namespace xmatters {

// The ERRORs the plugin logs about the block itself (the glue, at
// configuration and at init), in the words check repeats.
inline constexpr const char* kBlockGivenTwice = "the <Plugin xmatters> block is given more than once";
inline constexpr const char* kNoBlock = "no <Plugin xmatters> block: there is nothing to deliver to";

enum class SpoolDirUse {
  Take,     // the plugin: create SpoolDir if missing and lock it
  Inspect,  // check: judge it without changing anything; held by collectd is fine
};

struct PluginSetup {
  Config config;                      // spool_dir resolved; warnings to log as WARNING
  std::optional<SpoolDir> spool_dir;  // with SpoolDirUse::Take
};

// block: the <Plugin xmatters> block; base_dir: collectd's BaseDir as the
// block is read (SpoolDir's default is <BaseDir>/xmatters). Throws
// ConfigError, the one ERROR line; nothing else is to be logged then.
PluginSetup configure_plugin(const ConfigNode& block, const std::string& base_dir, SpoolDirUse use);

}  // namespace xmatters
