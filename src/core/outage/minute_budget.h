// At most N uses in any minute: the FloodLimit of an integration
// (collectd-xmatters(5) OUTAGES). The times of the last N uses are kept in a ring; a use is
// allowed when the oldest of them is a minute old. Not thread-safe: its
// owner's lock guards it.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

namespace xmatters {

template <typename TimePoint>
class MinuteBudget {
 public:
  // limit 0: no limit.
  explicit MinuteBudget(unsigned limit) : uses_(limit) {}

  bool limited() const { return !uses_.empty(); }

  // The earliest time at or after now when a use is allowed.
  TimePoint next_free(TimePoint now) const {
    if (!limited() || count_ < uses_.size()) return now;
    const TimePoint free_at = uses_[next_] + std::chrono::minutes(1);
    return free_at > now ? free_at : now;
  }

  bool available(TimePoint now) const { return next_free(now) == now; }

  // Uses left at now.
  std::size_t left(TimePoint now) const {
    if (!limited()) return static_cast<std::size_t>(-1);
    std::size_t used = 0;
    for (std::size_t i = 0; i < count_; ++i)
      if (now - uses_[i] < std::chrono::minutes(1)) ++used;
    return uses_.size() - used;
  }

  // Records a use at now; the caller checked available(now).
  void use(TimePoint now) {
    if (!limited()) return;
    uses_[next_] = now;
    next_ = (next_ + 1) % uses_.size();
    if (count_ < uses_.size()) ++count_;
  }

 private:
  std::vector<TimePoint> uses_;  // a ring; uses_[next_] is the oldest once full
  std::size_t next_ = 0;
  std::size_t count_ = 0;
};

}  // namespace xmatters
