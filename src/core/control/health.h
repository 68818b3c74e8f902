// The health verdict of collectd-xmatters(1) status, as a Nagios plugin's
// exit status (collectd-xmatters(1), EXIT STATUS), judged from the status
// document (views.h), whose ages are counted at its Source's `now`: a test
// gives that time, and so the thresholds are tested without waiting.
#pragma once

#include <jansson.h>

#include <cstdint>
#include <string>
#include <vector>

namespace xmatters::control {

enum Nagios { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
inline constexpr const char* kNagiosNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

// Deliveries failing longer than this are a WARNING; an event queued
// longer than this is CRITICAL (its page is late). Seconds.
inline constexpr std::int64_t kFailingWarning = 5 * 60;
inline constexpr std::int64_t kQueuedCritical = 15 * 60;

inline constexpr const char* kNotRunning = "the plugin is not running, and collectd's configuration loads it";

struct Health {
  int state = kOk;
  std::vector<std::string> problems;  // one line each, in the order found
  void raise(int to, std::string problem);
};

// The verdict on a status document: CRITICAL when the plugin is not
// running but loads_plugin, or an integration's oldest queued event is
// older than kQueuedCritical; WARNING for dead letters, or deliveries
// failing (failing_for) longer than kFailingWarning.
Health judge_health(const json_t* status_document, bool loads_plugin);

}  // namespace xmatters::control
