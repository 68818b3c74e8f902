// A fake collectd host for the unit tests of the glue: it implements the
// collectd functions the plugin calls, records what the plugin registers
// and logs, and lets a test call the callbacks as collectd would.
#pragma once

extern "C" {
#include "collectd.h"
#include "plugin.h"
}

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace fake_collectd {

struct LogLine {
  int level;  // LOG_ERR ...
  std::string text;
};

// Forgets registrations, log lines, dispatched values and global options.
void reset();

std::vector<LogLine> log_lines();
// Lines at that level containing needle.
std::size_t count_log(int level, const std::string& needle = "");
std::string dump_log();
// Forgets the log lines kept so far (a long bench run logs one per event).
void clear_log();

void set_global_option(const std::string& name, const std::string& value);

// The registered callbacks, called like collectd calls them; -1 when the
// plugin did not register one.
int call_config(const oconfig_item_t& ci);
int call_init();
int call_notification(const notification_t& n);
int call_read();
int call_shutdown();
bool has_notification_callback();
bool has_read_callback();

struct DispatchedValue {
  std::string plugin, plugin_instance, type, type_instance;
  double value;  // gauge or derive, as a number
};
std::vector<DispatchedValue> dispatched_values();

// An oconfig_item_t tree that owns its memory, made from a ConfigNode.
class OConfig {
 public:
  explicit OConfig(const xmatters::ConfigNode& node);
  ~OConfig();
  OConfig(const OConfig&) = delete;
  OConfig& operator=(const OConfig&) = delete;
  const oconfig_item_t& item() const { return *root_; }

 private:
  oconfig_item_t* root_;
};

// A notification_t whose meta list is built with the host's
// plugin_notification_meta_add_* and freed with plugin_notification_meta_free,
// as collectd does.
class Notif {
 public:
  Notif(int severity, const std::string& host, const std::string& plugin, const std::string& type,
        const std::string& message, cdtime_t time);
  ~Notif();
  Notif(const Notif&) = delete;
  Notif& operator=(const Notif&) = delete;
  Notif& type_instance(const std::string& s);
  Notif& plugin_instance(const std::string& s);
  Notif& meta(const char* name, const char* value);
  Notif& meta(const char* name, double value);
  const notification_t& get() const { return n_; }

 private:
  notification_t n_;
};

}  // namespace fake_collectd
