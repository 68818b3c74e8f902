// The plugin's configuration as values: collectd's config tree as plain C++
// (so it is testable without collectd) and the immutable, validated result.
// options.h turns the one into the other.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "outage/notification.h"
#include "util/posix_regex.h"
#include "silence/window_schedule.h"

namespace xmatters {

// --- collectd's oconfig_item_t, as values -----------------------------------

struct ConfigValue {
  enum class Type { String, Number, Boolean };
  Type type = Type::String;
  std::string string;
  double number = 0;
  bool boolean = false;

  static ConfigValue of(std::string s);
  static ConfigValue of(const char* s) { return of(std::string(s)); }
  static ConfigValue of(double d);
  static ConfigValue of(bool b);
};

struct ConfigNode {
  std::string key;
  std::vector<ConfigValue> values;
  std::vector<ConfigNode> children;
};

// --- the validated configuration ---------------------------------------------

// What one outage is (collectd-xmatters(5) OUTAGES): a value list's, or a host's.
enum class GroupBy { ValueList, Host };

struct IntegrationConfig {
  std::string name;
  std::string outage_url;
  std::string clear_url;  // = outage_url unless ClearURL is given
  std::optional<std::string> user;
  std::optional<std::string> password;  // from Password or PasswordFile
  std::vector<std::string> targets;
  Severity min_severity = Severity::Warning;
  std::optional<Regex> host_filter;
  std::optional<Regex> plugin_filter;
  std::optional<Regex> type_filter;
  bool send_clear = true;
  std::chrono::seconds renotify_interval{0};
  std::optional<std::string> details_url;
  std::optional<std::string> outage_template;  // file contents
  std::optional<std::string> clear_template;   // = outage_template unless ClearTemplate
  std::vector<std::string> headers;            // "Name: value"
  std::chrono::milliseconds timeout{10000};
  bool verify_peer = true;
  bool verify_host = true;
  std::optional<std::string> ca_cert;
  std::optional<std::string> client_cert;
  std::optional<std::string> client_key;
  std::optional<std::string> proxy;  // "" = no proxy at all
  int connections = 4;
  std::chrono::seconds retry_max_age{86400};
  GroupBy group_by = GroupBy::ValueList;
  unsigned flood_limit = 4;  // outage (and clear) events per minute at most (xMatters' default filter); 0 = no limit

  // All of Host / Plugin / Type that are set match.
  bool matches(const Notification& n) const;
};

struct OutageKey;

// A <Maintenance "name"> block (collectd-xmatters(5) MAINTENANCE): a recurring
// window during which the outages it matches page nobody.
struct MaintenanceConfig {
  std::string name;
  std::optional<Regex> host_filter;
  std::optional<Regex> plugin_filter;
  std::optional<Regex> type_filter;
  Weekdays weekdays = kEveryDay;
  std::vector<TimeRange> times;  // empty: the whole day
  std::optional<TimeZone> time_zone;  // unset: the system's, loaded by parse_config
  std::vector<std::string> integrations;  // empty: every integration

  // The window's occurrences; valid once parse_config returned it.
  WindowSchedule schedule() const;
  // Whether it holds back integration's outages of key (its filters, as an
  // Integration's, and its Integration list).
  bool matches(const std::string& integration, const OutageKey& key) const;
};

struct Config {
  std::optional<std::string> spool_dir;  // unset: <BaseDir>/xmatters, resolved by the glue
  std::size_t queue_limit = 100000;
  bool report_stats = true;
  std::size_t dead_letter_limit = std::size_t{64} << 20;  // bytes of SpoolDir/dead-letter.jsonl at most
  std::vector<IntegrationConfig> integrations;
  std::vector<MaintenanceConfig> maintenance;
  // Things that work but are probably mistakes; the glue logs them as WARNING.
  std::vector<std::string> warnings;
};

// A configuration mistake. what() is the one ERROR line: it names the
// option, the integration and the bad value, never a secret.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace xmatters
