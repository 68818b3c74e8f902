#include "outage/outage_memory.h"

#include <unordered_set>

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
  } else if (time > found->second.last) {
    remember_locked(key, Closed{time, found->second.start});
  }
  shrink_if_sparse(keys_);
}

void ClosedOutages::remember_locked(const OutageKey& key, Closed closed) {
  keys_[key] = closed;
  order_.emplace_back(closed.last, key);
  while (!order_.empty() && (order_.size() > kClosedKeys || closed.last - order_.front().first > kClockStep)) {
    auto it = keys_.find(order_.front().second);
    if (it != keys_.end() && it->second.last == order_.front().first) keys_.erase(it);
    order_.pop_front();
  }
}

std::optional<ClosedOutages::Closed> ClosedOutages::find(const OutageKey& key) const {
  MutexLock lock(mutex_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
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
  std::unordered_set<const OutageKey*> taken;
  for (auto it = order_.rbegin(); it != order_.rend() && out.size() < at_most; ++it) {
    const auto found = keys_.find(it->second);
    // Not a key closed again since (a later entry of it), nor forgotten.
    if (found == keys_.end() || found->second.last != it->first || !taken.insert(&found->first).second) continue;
    out.emplace_front(found->first, found->second);
  }
  return out;
}

}  // namespace xmatters
