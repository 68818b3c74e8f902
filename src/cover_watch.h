// Wakes when a silence or maintenance window begins or ends (collectd-xmatters(5)
// MAINTENANCE) and not otherwise: logs it (Coverage::tick) and pages the
// outages it held back that nothing covers any more. One thread, asleep
// until the next change on the system clock, so that no polling costs
// anything and a change of the clock is followed: the deadline is an
// instant of the system clock, and everything is computed anew on waking.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "coverage.h"
#include "log.h"

namespace xmatters {

class CoverWatch {
 public:
  // release(now): Router::release. Nothing runs before start().
  CoverWatch(Coverage& coverage, std::function<void(TimePoint)> release, Logger& log);
  ~CoverWatch();
  CoverWatch(const CoverWatch&) = delete;
  CoverWatch& operator=(const CoverWatch&) = delete;

  // Its first round runs at once: outages whose cover ended while collectd
  // was down page now.
  void start();
  void stop();
  // The silences changed: look again now.
  void poke();

 private:
  void run();

  Coverage& coverage_;
  const std::function<void(TimePoint)> release_;
  Logger& log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false, poked_ = false;
  std::thread thread_;
};

}  // namespace xmatters
