// What holds pages back (collectd-xmatters(5) MAINTENANCE): the operator's
// silences and the configured maintenance windows, asked about one outage
// key at a time. Every answer is computed from the instant given, so a
// step of the system's clock changes the answer and nothing else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "util/log.h"
#include "util/mutex.h"
#include "outage/notification.h"
#include "outage/outage.h"
#include "silence/silence.h"
#include "silence/window_schedule.h"

namespace xmatters {

class Coverage {
 public:
  explicit Coverage(const std::vector<MaintenanceConfig>& windows, Logger& log);

  // What covers integration's outages of key at now: "silence <id>" or
  // "maintenance <name>"; nullopt when nothing does. Thread-safe.
  std::optional<std::string> covering(std::string_view integration, const OutageKey& key, TimePoint now) const
      EXCLUDES(mutex_);

  // The first instant after now at which a silence or a window starts or
  // ends; nullopt when none ever will. Thread-safe.
  std::optional<TimePoint> next_change(TimePoint now) const EXCLUDES(mutex_);

  // Logs one INFO line for each silence and window occurrence that began
  // or ended since the last call (the first call: those active at now),
  // and forgets silences ended more than 5 days ago. Returns whether
  // anything ended: outages held back may be due to page. Thread-safe.
  bool tick(TimePoint now) EXCLUDES(mutex_);

  // Silences. add() replaces one of the same id (a recovered copy).
  void add(Silence s) EXCLUDES(mutex_);
  // Ends the silence now; false when there is none of that id, or it ended.
  bool expire(const std::string& id, TimePoint now, Silence* expired = nullptr) EXCLUDES(mutex_);
  // Active and pending ones; with expired, also those ended in the last 5 days.
  std::vector<Silence> silences(TimePoint now, bool expired) const EXCLUDES(mutex_);

 private:
  struct Window {
    MaintenanceConfig config;
    WindowSchedule schedule;
    bool was_active = false;
  };
  struct Held {
    Silence silence;
    bool was_active = false;
  };
  // Fixed at construction; only the was_active flags change, under mutex_
  // (tick()).
  std::vector<Window> windows_;
  mutable Mutex mutex_;  // a leaf: nothing is called while it is held
  std::vector<Held> silences_ GUARDED_BY(mutex_);
  bool ticked_ GUARDED_BY(mutex_) = false;
  Logger& log_;
};

// "host=web1 plugin=~cpu|load", for log lines and listings.
std::string matchers_text(const Silence& s);

}  // namespace xmatters
