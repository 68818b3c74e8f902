// collectd's notification as a value type: the glue copies it out of
// collectd's notification_t (which is freed when the callback returns), so
// every later stage owns its data and needs no collectd header.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace xmatters {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Ordered by urgency, so that "at or above MinSeverity" is a comparison.
enum class Severity { Okay = 0, Warning = 1, Failure = 2 };

// collectd's spelling: "OKAY", "WARNING", "FAILURE".
const char* severity_name(Severity s);

using MetaValue = std::variant<std::string, std::int64_t, std::uint64_t, double, bool>;

struct MetaItem {
  std::string name;
  MetaValue value;
};

struct Notification {
  Severity severity = Severity::Okay;
  TimePoint time;
  std::string message;
  std::string host;
  std::string plugin;
  std::string plugin_instance;
  std::string type;
  std::string type_instance;
  std::vector<MetaItem> meta;  // in collectd's order

  // The first meta item of that name, or nullptr.
  const MetaItem* find_meta(std::string_view name) const;

  // collectd's "has not been updated for N seconds" FAILURE (the threshold
  // plugin's missing-value check; it carries no meta).
  bool is_missing_value() const;
};

}  // namespace xmatters
