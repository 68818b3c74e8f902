// Rate limiting for error lines: a full or failing disk must not turn every
// notification into a log line. The lines held back are counted in the next.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

#include "util/mutex.h"

namespace xmatters {

class Throttle {
 public:
  explicit Throttle(std::chrono::steady_clock::duration interval = std::chrono::seconds(10)) : interval_(interval) {}

  // The number of lines held back since the last one let through, or
  // nullopt when this one is to be held back. Thread-safe.
  std::optional<std::size_t> admit() EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (last_ && now - *last_ < interval_) {
      ++held_back_;
      return std::nullopt;
    }
    last_ = now;
    return std::exchange(held_back_, 0);
  }

 private:
  const std::chrono::steady_clock::duration interval_;
  Mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_ GUARDED_BY(mutex_);
  std::size_t held_back_ GUARDED_BY(mutex_) = 0;
};

}  // namespace xmatters
