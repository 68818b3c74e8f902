#include "delivery/delivery_log.h"

#include <algorithm>

namespace xmatters {

// Every page and clear delivered is one INFO line, so that "did the 03:12
// page go out?" is answered at Debian's default log level; but at most
// options.delivered_info_lines (10) per integration a minute, then at debug and counted
// in one summary line (report_held_back): a line per event through
// collectd's logfile plugin was about a fifth of the delivery threads' CPU
// in a storm (doc/benchmarks.md).
void LaneLines::delivered(const std::string& what, long status, const std::string& request_id, EventType type,
                          Steady::time_point now, const LaneSchedule& schedule, LogLines& logs) {
  std::string line = prefix_ + "delivered " + what + ": HTTP " + std::to_string(status) + ", requestId " +
                     (request_id.empty() ? "none" : request_id);
  if (now - info_window_ >= options_.delivered_info_window) {
    report_held_back(now, schedule, logs);
    info_window_ = now;
    info_lines_ = 0;
  }
  if (info_lines_ < options_.delivered_info_lines) {
    ++info_lines_;
    logs.emplace_back(LogLevel::Info, std::move(line));
    return;
  }
  ++quiet_[type == EventType::Clear ? 1 : 0];
  report_due_ = std::min(report_due_, info_window_ + options_.delivered_info_window);
  logs.emplace_back(LogLevel::Debug, std::move(line));
}

// One ERROR per options.dead_letter_error_every (10 s) at most; the letters in between are
// counted in the next, or in report_held_back's line when none comes.
void LaneLines::dead_letter(const std::string& line, Steady::time_point now, LogLines& logs) {
  if (last_dead_letter_error_ && now - *last_dead_letter_error_ < options_.dead_letter_error_every) {
    ++dead_letters_unreported_;
    last_unreported_ = line;
    report_due_ = std::min(report_due_, *last_dead_letter_error_ + options_.dead_letter_error_every);
    logs.emplace_back(LogLevel::Debug, line);
    return;
  }
  std::string text = line;
  if (dead_letters_unreported_ > 0)
    text += " (and " + std::to_string(dead_letters_unreported_) + " more dead-lettered since the last such line)";
  dead_letters_unreported_ = 0;
  last_dead_letter_error_ = now;
  logs.emplace_back(LogLevel::Error, std::move(text));
}

void LaneLines::report_held_back(Steady::time_point now, const LaneSchedule& schedule, LogLines& logs) {
  if (dead_letters_unreported_ > 0 && last_dead_letter_error_ &&
      now - *last_dead_letter_error_ >= options_.dead_letter_error_every) {
    logs.emplace_back(LogLevel::Error, prefix_ + std::to_string(dead_letters_unreported_) +
                                           " more event(s) dead-lettered since the last such line, the last: " +
                                           last_unreported_.substr(prefix_.size()));
    dead_letters_unreported_ = 0;
    last_unreported_.clear();
    last_dead_letter_error_ = now;
  }
  const std::uint64_t quiet = quiet_[0] + quiet_[1];
  if (quiet > 0 && now - info_window_ >= options_.delivered_info_window) {
    std::string line = prefix_ + std::to_string(quiet) + " more event(s) delivered in the minute since the first " +
                       std::to_string(options_.delivered_info_lines) + " (" + std::to_string(quiet_[0]) +
                       " outage, " + std::to_string(quiet_[1]) + " clear), logged at debug only";
    if (const std::size_t paced = schedule.paced(); paced > 0)
      line += "; " + std::to_string(paced) + " wait for FloodLimit " + std::to_string(schedule.flood_limit());
    logs.emplace_back(LogLevel::Info, std::move(line));
    quiet_[0] = quiet_[1] = 0;
    // A new window: the next deliveries have their lines again.
    info_window_ = now;
    info_lines_ = 0;
  }
  report_due_ = Steady::time_point::max();
  if (dead_letters_unreported_ > 0 && last_dead_letter_error_)
    report_due_ = *last_dead_letter_error_ + options_.dead_letter_error_every;
  if (quiet_[0] + quiet_[1] > 0) report_due_ = std::min(report_due_, info_window_ + options_.delivered_info_window);
}

}  // namespace xmatters
