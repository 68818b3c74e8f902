// collectd-xmatters check: what collectd's start would log about the
// plugin's configuration, in the same words, without changing anything
// (collectd-xmatters(1), check).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "command/command.h"
#include "config/conf_file.h"
#include "config/configure.h"
#include "util/json_writer.h"
#include "util/utf8.h"

namespace xmatters::command {

namespace {

// How the plugin's lines begin in collectd's log (the glue's prefix).
constexpr const char* kPluginPrefix = "xmatters plugin: ";

struct Line {
  bool error;
  std::string text;
};

}  // namespace

int check(const Options& options, const Args& args) {
  no_more_args(args);
  const CollectdConf conf = read_collectd_conf(options.config);
  std::vector<Line> lines;
  for (const auto& m : conf.messages) lines.push_back({m.error, m.text});

  std::vector<std::string> integrations;
  std::string spool_dir;
  if (!conf.failed()) {
    // As collectd calls the plugin: each block in turn, then init.
    for (std::size_t i = 0; i < conf.blocks.size(); ++i) {
      if (i > 0) {
        lines.push_back({true, std::string(kPluginPrefix) + kBlockGivenTwice});
        continue;
      }
      try {
        const PluginSetup setup = configure_plugin(conf.blocks[i].node, conf.blocks[i].base_dir, SpoolDirUse::Inspect);
        for (const auto& w : setup.config.warnings) lines.push_back({false, kPluginPrefix + w});
        for (const auto& ic : setup.config.integrations) integrations.push_back(ic.name);
        spool_dir = *setup.config.spool_dir;
      } catch (const ConfigError& e) {
        lines.push_back({true, kPluginPrefix + std::string(e.what())});
      } catch (const std::exception& e) {
        lines.push_back({true, kPluginPrefix + std::string("configuration: ") + e.what()});
      }
    }
    if (conf.loads_plugin && conf.blocks.empty()) lines.push_back({true, std::string(kPluginPrefix) + kNoBlock});
  }
  bool failed = false;
  for (const auto& l : lines) failed = failed || l.error;

  if (options.json) {
    JsonWriter w;
    w.begin_object().key("ok").boolean(!failed).key("loads_plugin").boolean(conf.loads_plugin);
    w.key("errors").begin_array();
    for (const auto& l : lines)
      if (l.error) w.string(sanitize_utf8(l.text));
    w.end_array().key("warnings").begin_array();
    for (const auto& l : lines)
      if (!l.error) w.string(sanitize_utf8(l.text));
    w.end_array().key("integrations").begin_array();
    for (const auto& name : integrations) w.string(name);
    w.end_array();
    if (!spool_dir.empty()) w.key("spool_dir").string(spool_dir);
    w.end_object();
    std::printf("%s\n", std::string(w.text()).c_str());
  } else {
    for (const auto& l : lines) std::printf("%s: %s\n", l.error ? "ERROR" : "WARNING", l.text.c_str());
    if (failed)
      std::printf("%s: collectd would not start with this configuration\n", options.config.c_str());
    else if (!conf.loads_plugin)
      std::printf("%s: OK, but it does not load the plugin (no LoadPlugin xmatters)\n", options.config.c_str());
    else
      std::printf("%s: OK: %zu integration(s), SpoolDir %s\n", options.config.c_str(), integrations.size(),
                  spool_dir.c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace xmatters::command
