// collectd.conf as collectd 5.12 reads it, for the command
// (collectd-xmatters(1)): each file through conf_syntax.h, Include
// followed, and the few global decisions that reach the plugin's block
// (BaseDir, LoadPlugin, AutoLoadPlugin), so that the command hands
// parse_config the tree collectd would hand the plugin.
#pragma once

#include <string>
#include <vector>

#include "config/conf_syntax.h"
#include "config/config.h"

namespace xmatters {

// What collectd's reading of the whole configuration gives the plugin.
struct CollectdConf {
  // A line collectd itself (not the plugin) would log while reading.
  struct Message {
    bool error;  // ERROR (collectd does not start) or WARNING
    std::string text;
  };
  // Each <Plugin xmatters> block collectd would hand the plugin's
  // configuration callback, in order, with BaseDir as it was set then.
  struct PluginBlock {
    ConfigNode node;
    std::string base_dir;
  };

  bool loads_plugin = false;  // LoadPlugin xmatters (or AutoLoadPlugin and a block)
  std::vector<PluginBlock> blocks;
  std::string base_dir;  // at the end of the configuration
  std::vector<Message> messages;

  bool failed() const;  // an ERROR among messages: collectd would not start
};

// collectd's BaseDir when the configuration sets none (Debian's build).
inline constexpr const char* kCollectdDefaultBaseDir = "/var/lib/collectd";

// Reads path (a file, a directory or a glob) as collectd 5.12's
// configuration reader does: Include of files, directories and globs
// (wordexp, without command substitution), <Include "dir"> Filter "*.conf"
// </Include>, 8 levels deep at most; then walks the top-level items as
// collectd dispatches them. Never throws for a bad configuration: what
// collectd would log is in messages.
CollectdConf read_collectd_conf(const std::string& path);

}  // namespace xmatters
