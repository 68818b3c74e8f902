// What a delivery lane's log lines are held back by (inside delivery): a
// storm is a few lines a minute, not a line an event. Deliveries have INFO
// lines at most DeliveryOptions::delivered_info_lines a window, dead letters
// an ERROR at most each dead_letter_error_every; what is held back is
// counted in one summary line when due. Not thread-safe: kept under the
// lane's mutex, the lines written after it is released.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "delivery/delivery_options.h"
#include "delivery/lane.h"
#include "util/log.h"

namespace xmatters {

using LogLines = std::vector<std::pair<LogLevel, std::string>>;

class LaneLines {
 public:
  LaneLines(std::string integration, const DeliveryOptions& options)
      : prefix_("integration " + std::move(integration) + ": "), options_(options) {}

  // One delivery's line: INFO, or debug once the window has its lines.
  void delivered(const std::string& what, long status, const std::string& request_id, EventType type,
                 Steady::time_point now, const LaneSchedule& schedule, LogLines& logs);
  // One dead letter's line: an ERROR, or debug and counted in the next.
  void dead_letter(const std::string& line, Steady::time_point now, LogLines& logs);
  // The summaries of lines held back whose time has come.
  void report_held_back(Steady::time_point now, const LaneSchedule& schedule, LogLines& logs);
  // When a summary of lines held back is due.
  Steady::time_point report_due() const { return report_due_; }

  // Rate limits of settlement's own lines (the last of each).
  Steady::time_point last_failing_warning{};
  std::optional<Steady::time_point> last_long_pause_warning;
  std::optional<Steady::time_point> last_paused_error;  // saying the integration is paused

 private:
  const std::string prefix_;
  const DeliveryOptions options_;  // its windows
  // Deliveries' INFO lines: those of the window starting at info_window_,
  // and those only at debug since, by type.
  Steady::time_point info_window_{};
  unsigned info_lines_ = 0;
  std::uint64_t quiet_[2] = {0, 0};
  // Dead-letter ERRORs: the last, and the letters written since, not in one.
  std::optional<Steady::time_point> last_dead_letter_error_;
  std::uint64_t dead_letters_unreported_ = 0;
  std::string last_unreported_;  // the last of those, as an ERROR would say it
  Steady::time_point report_due_ = Steady::time_point::max();
};

}  // namespace xmatters
