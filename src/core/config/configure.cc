#include "config/configure.h"

#include "config/options.h"

namespace xmatters {

PluginSetup configure_plugin(const ConfigNode& block, const std::string& base_dir, SpoolDirUse use) {
  PluginSetup setup{parse_config(block), std::nullopt};
  Config& config = setup.config;
  // Checked now, so that an unusable SpoolDir stops collectd from starting.
  // The default's parent is collectd's BaseDir, which collectd creates
  // itself, only after reading the configuration.
  const bool default_dir = !config.spool_dir;
  if (default_dir) config.spool_dir = base_dir + "/xmatters";
  if (use == SpoolDirUse::Take) {
    setup.spool_dir.emplace(*config.spool_dir, default_dir, config.warnings);
    config.spool_dir = setup.spool_dir->path();
  } else {
    config.spool_dir = SpoolDir::inspect(*config.spool_dir, default_dir, config.warnings);
  }
  return setup;
}

}  // namespace xmatters
