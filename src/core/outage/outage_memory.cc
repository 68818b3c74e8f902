#include "outage/outage_memory.h"

#include <iterator>
#include <new>
#include <type_traits>

#include "util/hash_table.h"

namespace xmatters {

void ClosedOutages::remember(const OutageKey& key, Closed closed, const std::vector<Member>& members) {
  MutexLock lock(mutex_);
  for (const Member& m : members)
    if (m.last_time) remember_locked(m.key, Closed{*m.last_time, TimePoint{}});
  remember_locked(key, closed);  // last: a host-only value list's key is the host's
  shrink_if_sparse(keys_);
}

void ClosedOutages::remember_okay(const OutageKey& key, TimePoint time) {
  MutexLock lock(mutex_);
  const auto found = keys_.find(key);
  if (found == keys_.end()) {
    remember_locked(key, Closed{time, TimePoint{}});
  } else if (time > found->second.closed.last) {
    remember_locked(key, Closed{time, found->second.closed.start});
  }
  shrink_if_sparse(keys_);
}

void ClosedOutages::remember_locked(const OutageKey& key, Closed closed) {
  static_assert(std::is_same_v<Entry, decltype(keys_)::value_type>, "order_ points at keys_'s entries");
  auto found = keys_.find(key);
  if (found == keys_.end()) {
    order_.push_back(nullptr);  // first: if the entry cannot be made, nothing is left behind
    try {
      found = keys_.emplace(key, Slot{closed, std::prev(order_.end())}).first;
    } catch (...) {
      order_.pop_back();
      throw;
    }
    order_.back() = &*found;
  } else {
    found->second.closed = closed;
    order_.splice(order_.end(), order_, found->second.pos);  // remembered last: evicted last
  }
  // Evicted in the order of their last remember: beyond the bound of keys,
  // and while the front is kClockStep older than this one (which, at the
  // back, is never evicted here: the loop ends on it at the latest).
  while (order_.size() > kClosedKeys || closed.last - order_.front()->second.closed.last > kClockStep) {
    keys_.erase(keys_.find(order_.front()->first));
    order_.pop_front();
  }
}

std::optional<ClosedOutages::Closed> ClosedOutages::find(const OutageKey& key) const {
  MutexLock lock(mutex_);
  const auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second.closed;
}

bool ClosedOutages::stale(const OutageKey& key, TimePoint time) const {
  const std::optional<Closed> closed = find(key);
  return closed && time < closed->last && closed->last - time < kClockStep;
}

TimePoint ClosedOutages::start_after(const OutageKey& key, TimePoint time) const {
  const std::optional<Closed> closed = find(key);
  return closed && time <= closed->start ? closed->start + std::chrono::nanoseconds(1) : time;
}

std::deque<std::pair<OutageKey, ClosedOutages::Closed>> ClosedOutages::last_closed(std::size_t at_most) const {
  std::deque<std::pair<OutageKey, Closed>> out;
  MutexLock lock(mutex_);
  for (auto it = order_.rbegin(); it != order_.rend() && out.size() < at_most; ++it)
    out.emplace_front((*it)->first, (*it)->second.closed);
  return out;
}

void ClosedOutages::repack() {
  ClosedOutages fresh;  // destroyed last, with the old entries, once the locks are released
  MutexLock lock(mutex_);
  if (keys_.size() <= kClosedKept) return;
  MutexLock fresh_lock(fresh.mutex_);
  try {
    fresh.keys_.reserve(keys_.size());
    for (const Entry* e : order_) {  // the same entries in the same order, nothing evicted
      fresh.order_.push_back(nullptr);
      const auto made = fresh.keys_.emplace(e->first, Slot{e->second.closed, std::prev(fresh.order_.end())}).first;
      fresh.order_.back() = &*made;
    }
  } catch (const std::bad_alloc&) {
    return;  // left where they are: only their pages stay resident
  }
  // Swapping moves no entry: the pointers in order_ stay valid.
  keys_.swap(fresh.keys_);
  order_.swap(fresh.order_);
}

std::size_t ClosedOutages::size() const {
  MutexLock lock(mutex_);
  return keys_.size();
}

}  // namespace xmatters
