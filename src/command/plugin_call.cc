#include "command/plugin_call.h"

#include <algorithm>
#include <cstdio>
#include <exception>

#include "config/conf_file.h"
#include "config/configure.h"
#include "control/channel.h"

namespace xmatters::command {

PluginPlace locate_plugin(const Options& options) {
  PluginPlace place;
  place.spool_dir = options.spool_dir;
  std::string why;
  const CollectdConf conf = read_collectd_conf(options.config);
  if (conf.failed()) {
    for (const auto& m : conf.messages)
      if (m.error && why.empty()) why = m.text;
  } else if (conf.blocks.empty()) {
    why = "it has no <Plugin xmatters> block";
  } else {
    try {
      place.config = configure_plugin(conf.blocks.front().node, conf.blocks.front().base_dir, SpoolDirUse::Inspect).config;
    } catch (const std::exception& e) {
      why = e.what();
    }
  }
  if (place.spool_dir.empty() && place.config) place.spool_dir = place.config->spool_dir.value_or("");
  if (place.spool_dir.empty())
    throw Failure(1, "cannot find SpoolDir in " + options.config + ": " + why + " (see 'collectd-xmatters check')");
  return place;
}

Json call_plugin(const PluginPlace& place, const std::string& verb, const json_t* args,
                 std::chrono::milliseconds timeout) {
  control::CallResult r = control::call(place.spool_dir, verb, args, timeout);
  switch (r.status) {
    case control::CallResult::Status::Ok:
      return std::move(r.result);
    case control::CallResult::Status::NotRunning:
      // One line: that it is not running, and why the command thinks so.
      if (r.message.rfind("the plugin is not running", 0) != 0)
        r.message = "the plugin is not running (" + r.message + ")";
      throw Failure(1, r.message + "; " + verb + " needs it: start collectd");
    default:
      throw Failure(1, r.message);
  }
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    std::printf("%s\n", line.c_str());
  }
}

std::string member(const json_t* object, const char* name) {
  const char* s = json_string_value(json_object_get(object, name));
  return s != nullptr ? s : "";
}

}  // namespace xmatters::command
