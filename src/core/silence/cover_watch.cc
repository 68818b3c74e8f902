#include "silence/cover_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <system_error>
#include <utility>

namespace xmatters {

namespace {

class Fd {
 public:
  explicit Fd(int fd, const char* what) : fd_(fd) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), what);
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class SystemWakeSource final : public WakeSource {
 public:
  SystemWakeSource()
      : timer_(::timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK), "timerfd_create"),
        event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd") {}

  TimePoint now() override {
    offset_ = realtime_minus_monotonic();
    return Clock::now();
  }

  void wait(std::optional<TimePoint> deadline) override {
    // No deadline: armed decades ahead all the same, so that a step of the
    // clock still wakes the watch (it may bring a change nearer).
    const std::int64_t ns = deadline ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           deadline->time_since_epoch()).count()
                                     : std::int64_t{4102444800} * 1000000000;  // 2100-01-01
    itimerspec spec{};
    // A zero it_value disarms the timer: a deadline at or before the epoch
    // is one nanosecond after it, long past either way.
    const std::int64_t at = ns > 0 ? ns : 1;
    spec.it_value.tv_sec = static_cast<time_t>(at / 1000000000);
    spec.it_value.tv_nsec = static_cast<long>(at % 1000000000);
    if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) != 0) {
      if (errno == ECANCELED) return;  // set since the last read: compute again
      throw std::system_error(errno, std::generic_category(), "timerfd_settime");
    }
    // The kernel only reports steps made after timerfd_settime; one made
    // since now() shows as a change of the realtime clock's offset from the
    // monotonic one (NTP's slewing moves it by far less than a second).
    const auto drift = realtime_minus_monotonic() - offset_;
    if (drift > std::chrono::seconds(1) || drift < -std::chrono::seconds(1)) return;
    pollfd fds[2] = {{timer_.get(), POLLIN, 0}, {event_.get(), POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0) {
      if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
    }
    std::uint64_t count;
    // ECANCELED here is the step itself; EAGAIN: not due. Either way the
    // caller computes again.
    if (::read(timer_.get(), &count, sizeof count) < 0) {
    }
    if (::read(event_.get(), &count, sizeof count) < 0) {
    }
  }

  void interrupt() override {
    const std::uint64_t one = 1;
    // Fails only when the counter would overflow: a wake-up is pending anyway.
    if (::write(event_.get(), &one, sizeof one) < 0) {
    }
  }

 private:
  static std::chrono::nanoseconds realtime_minus_monotonic() {
    timespec real{}, mono{};
    ::clock_gettime(CLOCK_REALTIME, &real);
    ::clock_gettime(CLOCK_MONOTONIC, &mono);
    return std::chrono::seconds(real.tv_sec - mono.tv_sec) + std::chrono::nanoseconds(real.tv_nsec - mono.tv_nsec);
  }

  Fd timer_, event_;
  std::chrono::nanoseconds offset_{0};
};

}  // namespace

std::unique_ptr<WakeSource> system_wake_source() { return std::make_unique<SystemWakeSource>(); }

CoverWatch::CoverWatch(Coverage& coverage, std::function<void(TimePoint)> release, Logger& log,
                       std::unique_ptr<WakeSource> wakes)
    : coverage_(coverage), release_(std::move(release)), log_(log), wakes_(std::move(wakes)) {}

CoverWatch::~CoverWatch() { stop(); }

void CoverWatch::start() {
  MutexLock lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void CoverWatch::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wakes_->interrupt();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void CoverWatch::poke() { wakes_->interrupt(); }

void CoverWatch::run() {
  for (;;) {
    {
      MutexLock lock(mutex_);
      if (stopping_) return;
    }
    const TimePoint now = wakes_->now();
    std::optional<TimePoint> next;
    try {
      coverage_.tick(now);
      release_(now);
      next = coverage_.next_change(now);
    } catch (const std::exception& e) {
      log_.error(std::string("silences and maintenance windows: ") + e.what());
    }
    try {
      // An interrupt() since now() ends the wait at once: nothing is lost.
      wakes_->wait(next);
    } catch (const std::exception& e) {
      // The kernel refused a timer it gave before: one ERROR, then a look a
      // second rather than none (stop() waits at most that second).
      if (!wait_failed_) log_.error(std::string("silences and maintenance windows: ") + e.what() + "; looking once a second");
      wait_failed_ = true;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
}

}  // namespace xmatters
