#include "outage/flood_budget.h"

#include <algorithm>
#include <utility>

#include "delivery/flood_minute.h"

namespace xmatters {

FloodBudget::FloodBudget(std::string integration, unsigned limit)
    : integration_(std::move(integration)),
      limit_(limit),
      outage_(limit),
      page_(limit > 1 ? limit - 1 : 0),
      clear_(limit) {}

bool FloodBudget::pages_on_its_own(Steady::time_point now) const {
  if (!limited()) return true;
  MutexLock lock(mutex_);
  return waiting_ < std::min(outage_.left(now), page_.left(now));
}

void FloodBudget::set_flood_outage(std::string outage_id) {
  MutexLock lock(mutex_);
  flood_outage_ = std::move(outage_id);
}

FloodRequest FloodBudget::kind_of(EventType type, const std::string& outage_id) const {
  if (type == EventType::Clear) return FloodRequest::Clear;
  MutexLock lock(mutex_);
  return !flood_outage_.empty() && outage_id == flood_outage_ ? FloodRequest::FloodPage : FloodRequest::Page;
}

FloodBudget::Steady::time_point FloodBudget::next_free(FloodRequest kind, Steady::time_point now) const {
  if (!limited()) return now;
  MutexLock lock(mutex_);
  switch (kind) {
    case FloodRequest::Clear: return clear_.next_free(now);
    case FloodRequest::FloodPage: return outage_.next_free(now);
    case FloodRequest::Page: break;
  }
  return std::max(outage_.next_free(now), page_.next_free(now));
}

void FloodBudget::count(FloodRequest kind, Steady::time_point now, TimePoint at) {
  if (kind == FloodRequest::Clear) {
    clear_.use(now);
  } else {
    outage_.use(now);
    if (kind == FloodRequest::Page) page_.use(now);
  }
  std::deque<TimePoint>& d = sent_[kind == FloodRequest::Clear ? 1 : 0];
  d.insert(std::upper_bound(d.begin(), d.end(), at), at);  // threads of a lane may record out of order
  while (d.size() > limit_) d.pop_front();
}

void FloodBudget::sent(FloodRequest kind, Steady::time_point now, TimePoint at) {
  if (!limited()) return;
  MutexLock lock(mutex_);
  count(kind, now, at);
}

void FloodBudget::waiting(long delta) {
  if (!limited()) return;
  MutexLock lock(mutex_);
  waiting_ = delta < 0 && waiting_ < static_cast<std::size_t>(-delta) ? 0 : waiting_ + static_cast<std::size_t>(delta);
}

std::size_t FloodBudget::used(EventType type, Steady::time_point now) const {
  if (!limited()) return 0;
  MutexLock lock(mutex_);
  return limit_ - (type == EventType::Clear ? clear_ : outage_).left(now);
}

void FloodBudget::recover(const std::vector<std::string>& recovered, Steady::time_point steady_now, TimePoint wall_now) {
  if (!limited()) return;
  MutexLock lock(mutex_);
  for (const EventType type : {EventType::Outage, EventType::Clear})
    for (const TimePoint at : recovered_sends(recovered, integration_, type, limit_, wall_now))
      count(type == EventType::Clear ? FloodRequest::Clear : FloodRequest::Page, steady_of(at, steady_now, wall_now), at);
}

void FloodBudget::snapshot(TimePoint now, FunctionRef<void(std::string_view)> write) const {
  std::vector<std::string> records;
  {
    MutexLock lock(mutex_);
    for (const EventType type : {EventType::Outage, EventType::Clear})
      for (const TimePoint at : sent_[type == EventType::Clear ? 1 : 0])
        if (now - at < std::chrono::minutes(1)) records.push_back(encode_flood_send(FloodSend{integration_, type, at}));
  }
  for (const std::string& r : records) write(r);
}

}  // namespace xmatters
