// The configuration's values: collectd's config items, and what an
// integration and a maintenance window match.
#include "config/config.h"

#include <algorithm>
#include <utility>

#include "outage/outage.h"

namespace xmatters {

ConfigValue ConfigValue::of(std::string s) {
  ConfigValue v;
  v.type = Type::String;
  v.string = std::move(s);
  return v;
}

ConfigValue ConfigValue::of(double d) {
  ConfigValue v;
  v.type = Type::Number;
  v.number = d;
  return v;
}

ConfigValue ConfigValue::of(bool b) {
  ConfigValue v;
  v.type = Type::Boolean;
  v.boolean = b;
  return v;
}

bool IntegrationConfig::matches(const Notification& n) const {
  return (!host_filter || host_filter->matches(n.host)) && (!plugin_filter || plugin_filter->matches(n.plugin)) &&
         (!type_filter || type_filter->matches(n.type));
}

WindowSchedule MaintenanceConfig::schedule() const {
  return WindowSchedule(weekdays, times, time_zone.value_or(TimeZone::fixed(0, "UTC")));
}

bool MaintenanceConfig::matches(const std::string& integration, const OutageKey& key) const {
  if (!integrations.empty() && std::find(integrations.begin(), integrations.end(), integration) == integrations.end())
    return false;
  return (!host_filter || host_filter->matches(key.host)) && (!plugin_filter || plugin_filter->matches(key.plugin)) &&
         (!type_filter || type_filter->matches(key.type));
}

}  // namespace xmatters
