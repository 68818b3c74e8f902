// FloodLimit's minute across restarts (collectd-xmatters(5) OUTAGES): the
// requests an integration sent in the last minute, at most FloodLimit of
// each event type, kept in the spool as FLOOD_SENT records (doc/storage.md)
// so that a restart starts from them, not from an empty minute.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "event.h"
#include "function_ref.h"
#include "mutex.h"

namespace xmatters {

// One request sent (FLOOD_SENT): its integration, its event type and when.
struct FloodSend {
  std::string integration;
  EventType type = EventType::Outage;
  TimePoint at{};
};

// One framed FLOOD_SENT record.
std::string encode_flood_send(const FloodSend& send);
// The send of bytes when it is exactly one well-formed FLOOD_SENT record.
std::optional<FloodSend> decode_flood_send(std::string_view bytes);

// The sends of integration's event type found in the spool's recovered
// records (Spool::take_recovered_changes: each one or more framed records)
// that are within the minute before now, oldest first, the last `limit` of
// them. A send stamped after now (the clock went back) counts as now.
std::vector<TimePoint> recovered_sends(const std::vector<std::string>& recovered, const std::string& integration,
                                       EventType type, unsigned limit, TimePoint now);

// A send at wall-clock `at` as an instant of the steady clock, now being
// both steady_now and wall_now: FloodLimit's budgets count on the steady
// clock, which does not survive a restart.
inline std::chrono::steady_clock::time_point steady_of(TimePoint at, std::chrono::steady_clock::time_point steady_now,
                                                       TimePoint wall_now) {
  const auto ago = at < wall_now ? wall_now - at : TimePoint::duration::zero();
  return steady_now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(ago);
}

// One integration's sends of the last minute, for the spool: each send is
// appended as it happens (record()), and compaction writes those still in
// the minute (snapshot()), so that the log always holds them. Thread-safe
// (a leaf lock: nothing is called while it is held).
class FloodMinute {
 public:
  // limit 0: no FloodLimit, nothing is kept or recorded.
  FloodMinute(std::string integration, unsigned limit) : integration_(std::move(integration)), limit_(limit) {}

  bool limited() const { return limit_ > 0; }
  // Keeps a send of type at `at` and returns its record for the spool
  // ("" without a limit).
  std::string record(EventType type, TimePoint at) EXCLUDES(mutex_);
  // Keeps a send found at recovery (no record: it is in the spool already).
  void keep(EventType type, TimePoint at) EXCLUDES(mutex_);
  // Calls write with the record of each send within the minute before now.
  void snapshot(TimePoint now, FunctionRef<void(std::string_view)> write) const EXCLUDES(mutex_);

 private:
  std::deque<TimePoint>& sent(EventType type) REQUIRES(mutex_) { return sent_[type == EventType::Clear ? 1 : 0]; }
  // Keeps at: its type's last limit_ sends are all that can matter.
  void add(EventType type, TimePoint at) REQUIRES(mutex_);

  const std::string integration_;
  const unsigned limit_;
  mutable Mutex mutex_;
  std::deque<TimePoint> sent_[2] GUARDED_BY(mutex_);  // outage events, clears: in order sent
};

}  // namespace xmatters
