#include "cover_watch.h"

#include <exception>
#include <utility>

namespace xmatters {

CoverWatch::CoverWatch(Coverage& coverage, std::function<void(TimePoint)> release, Logger& log)
    : coverage_(coverage), release_(std::move(release)), log_(log) {}

CoverWatch::~CoverWatch() { stop(); }

void CoverWatch::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void CoverWatch::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void CoverWatch::poke() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    poked_ = true;
  }
  wake_.notify_all();
}

void CoverWatch::run() {
  for (;;) {
    std::optional<TimePoint> next;
    try {
      const TimePoint now = Clock::now();
      coverage_.tick(now);
      release_(now);
      next = coverage_.next_change(now);
    } catch (const std::exception& e) {
      log_.error(std::string("silences and maintenance windows: ") + e.what());
    }
    std::unique_lock<std::mutex> lock(mutex_);
    const auto done = [this] { return stopping_ || poked_; };
    // A system_clock deadline: the wait ends when the system's clock reaches
    // it, also after the clock was set.
    if (next)
      wake_.wait_until(lock, *next, done);
    else
      wake_.wait(lock, done);
    if (stopping_) return;
    poked_ = false;
  }
}

}  // namespace xmatters
