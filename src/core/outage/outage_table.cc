#include "outage/outage_table.h"

#include "util/hash_table.h"

namespace xmatters {

OutageKey table_key(const Notification& n, OutageKind kind) {
  OutageKey key = kind == OutageKind::Host ? OutageKey{n.host, {}, {}, {}, {}} : OutageKey::of(n);
  // The empty key is the flood outage's in the records; a notification
  // with no host, plugin or type at all (none of collectd's) gets another.
  if (key == OutageKey{}) key.host = " ";
  return key;
}

std::shared_ptr<TrackedKey> OutageTable::find(const OutageKey& key, bool create) {
  MutexLock lock(mutex_);
  auto it = table_.find(key);
  if (it != table_.end()) return it->second;
  if (!create) return nullptr;
  return table_.emplace(key, std::make_shared<TrackedKey>(key)).first->second;
}

void OutageTable::forget(TrackedKey& ks) {
  ks.erased = true;
  MutexLock lock(mutex_);
  table_.erase(ks.key);
  shrink_if_sparse(table_);
}

void OutageTable::erase(const OutageKey& key) {
  MutexLock lock(mutex_);
  table_.erase(key);
}

std::deque<std::shared_ptr<TrackedKey>> OutageTable::entries() const {
  std::deque<std::shared_ptr<TrackedKey>> keys;
  MutexLock lock(mutex_);
  for (const auto& entry : table_) keys.push_back(entry.second);
  return keys;
}

std::size_t OutageTable::size() const {
  MutexLock lock(mutex_);
  return table_.size();
}

}  // namespace xmatters
