// FloodLimit's one budget for an integration (collectd-xmatters(5)
// FloodLimit and OUTAGES). It counts what xMatters' Alert Rate Filter
// counts, requests received: each outage-event and each clear request made
// in the last minute, retries included, and the outage events queued that
// have not left yet. The tracker's fold decision and the lane's pacing both
// read it, so that they cannot disagree:
//  - a clear leaves while fewer than N clears were made in the minute;
//  - a page of the flood outage, or a test page (collectd-xmatters test),
//    leaves while fewer than N outage events were;
//  - any other page (an outage's own, an escalation, a re-page, a page
//    released or resent) leaves while fewer than N outage events and fewer
//    than N - 1 such pages were: the minute's last outage request is kept
//    for the flood outage's (with N = 1 there is no reserve);
//  - a new outage pages on its own while fewer outage events wait in the
//    lane than such pages could leave now; otherwise it is folded into the
//    flood outage, whose first page then finds its request free and leaves
//    at once (unless a flood page already took it within the minute).
// The minute survives a restart: the delivery records each request as a
// FLOOD_SENT record (flood_minute.h) and recover() counts those of the
// minute before the start; snapshot() writes them again for compaction.
// Thread-safe, a leaf lock: nothing is called while it is held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "outage/event.h"
#include "util/function_ref.h"
#include "outage/minute_budget.h"
#include "util/mutex.h"

namespace xmatters {

// What a request is, for FloodLimit (a test page counts as a FloodPage).
enum class FloodRequest : std::uint8_t { Page, FloodPage, Clear };

class FloodBudget {
 public:
  using Steady = std::chrono::steady_clock;

  // limit 0: no FloodLimit; nothing is counted, everything may leave.
  FloodBudget(std::string integration, unsigned limit);

  bool limited() const { return limit_ > 0; }
  unsigned limit() const { return limit_; }

  // The fold decision: whether a new outage's page would leave now.
  bool pages_on_its_own(Steady::time_point now) const EXCLUDES(mutex_);
  // The integration's flood outage: its pages may take the reserved request.
  void set_flood_outage(std::string outage_id) EXCLUDES(mutex_);
  FloodRequest kind_of(EventType type, const std::string& outage_id) const EXCLUDES(mutex_);

  // The earliest time at or after now when a request of kind may be made.
  Steady::time_point next_free(FloodRequest kind, Steady::time_point now) const EXCLUDES(mutex_);
  bool available(FloodRequest kind, Steady::time_point now) const { return next_free(kind, now) == now; }
  // A request of kind is made now, at wall-clock `at`: it counts for a minute.
  void sent(FloodRequest kind, Steady::time_point now, TimePoint at) EXCLUDES(mutex_);
  // Outage events queued and not in flight: delta as one starts or stops waiting.
  void waiting(long delta) EXCLUDES(mutex_);
  // Requests of type made in the minute before now (0 without a limit).
  std::size_t used(EventType type, Steady::time_point now) const EXCLUDES(mutex_);

  // Counts the requests of the minute before now found in the spool's
  // recovered records (FLOOD_SENT, this integration's). A restart does not
  // know which outage events were the flood outage's: each counts as a page.
  void recover(const std::vector<std::string>& recovered, Steady::time_point steady_now, TimePoint wall_now)
      EXCLUDES(mutex_);
  // Calls write with the FLOOD_SENT record of each request within the
  // minute before now, for compaction.
  void snapshot(TimePoint now, FunctionRef<void(std::string_view)> write) const EXCLUDES(mutex_);

 private:
  using Budget = MinuteBudget<Steady::time_point>;
  void count(FloodRequest kind, Steady::time_point now, TimePoint at) REQUIRES(mutex_);

  const std::string integration_;
  const unsigned limit_;
  mutable Mutex mutex_;
  Budget outage_ GUARDED_BY(mutex_);  // every outage-event request
  Budget page_ GUARDED_BY(mutex_);    // those not the flood outage's: N - 1 (no limit of its own for N = 1)
  Budget clear_ GUARDED_BY(mutex_);
  std::size_t waiting_ GUARDED_BY(mutex_) = 0;
  std::string flood_outage_ GUARDED_BY(mutex_);
  // Wall-clock times of the last N requests of each type (outage, clear),
  // in order: what the records say.
  std::deque<TimePoint> sent_[2] GUARDED_BY(mutex_);
};

}  // namespace xmatters
