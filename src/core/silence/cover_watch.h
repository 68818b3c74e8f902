// Wakes when a silence or maintenance window begins or ends (collectd-xmatters(5)
// MAINTENANCE) and not otherwise: logs it (Coverage::tick) and pages the
// outages it held back that nothing covers any more. One thread, asleep
// until the next change on the system clock, so that no polling costs
// anything; a step of the system clock (settimeofday, NTP's step, a
// resume) wakes it too, and everything is computed anew on waking.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "silence/coverage.h"
#include "util/log.h"
#include "util/mutex.h"

namespace xmatters {

// What the watch sleeps on, injectable so that tests can step a clock of
// their own. wait() returns when the system clock reaches deadline (none:
// never), when the clock is set, or after interrupt(), including one made
// between now() and wait(): no wake-up is lost.
class WakeSource {
 public:
  virtual ~WakeSource() = default;
  virtual TimePoint now() = 0;
  virtual void wait(std::optional<TimePoint> deadline) = 0;
  virtual void interrupt() = 0;
};

// The system's: a timerfd on CLOCK_REALTIME armed at the absolute deadline
// with TFD_TIMER_CANCEL_ON_SET (a clock step ends the wait with ECANCELED),
// and an eventfd for interrupt(). Throws std::system_error when the kernel
// refuses either.
std::unique_ptr<WakeSource> system_wake_source();

class CoverWatch {
 public:
  // release(now): Router::release. Nothing runs before start().
  CoverWatch(Coverage& coverage, std::function<void(TimePoint)> release, Logger& log,
             std::unique_ptr<WakeSource> wakes = system_wake_source());
  ~CoverWatch();
  CoverWatch(const CoverWatch&) = delete;
  CoverWatch& operator=(const CoverWatch&) = delete;

  // Its first round runs at once: outages whose cover ended while collectd
  // was down page now.
  void start() EXCLUDES(mutex_);
  void stop() EXCLUDES(mutex_);
  // The silences changed: look again now.
  void poke();

 private:
  void run() EXCLUDES(mutex_);

  Coverage& coverage_;
  const std::function<void(TimePoint)> release_;
  Logger& log_;
  const std::unique_ptr<WakeSource> wakes_;
  Mutex mutex_;  // a leaf (doc/design.md, Lock order)
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool wait_failed_ = false;  // the watch thread's own
  std::thread thread_;
};

}  // namespace xmatters
