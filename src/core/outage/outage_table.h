// The table of one integration's open outages (outage_tracker.h): the keys
// with an open outage, or being decided, and no other. Each key has its own
// lock, held across its decision; the table's lock only finds, inserts and
// erases (a leaf: nothing is called while it is held).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "util/mutex.h"
#include "outage/notification.h"
#include "outage/outage.h"

namespace xmatters {

// One key with an open outage, or being decided. Shared: a thread that
// found it may still hold it after another closed and erased it, which
// `erased` tells it.
struct TrackedKey {
  explicit TrackedKey(OutageKey k) : key(std::move(k)) {}
  const OutageKey key;
  Mutex mutex;  // held across the decision and the handler
  bool erased GUARDED_BY(mutex) = false;
  std::optional<Outage> outage GUARDED_BY(mutex);
  // A value list's outage only; a host's keeps it per member.
  std::optional<TimePoint> last_time GUARDED_BY(mutex);
  bool warned_full GUARDED_BY(mutex) = false;  // a host outage at kMaxMembers was logged
  // The notification whose page a silence or window held back, for the
  // page sent when it ends (none after a restart: one is made up).
  std::optional<Notification> held_notification GUARDED_BY(mutex);
};

// The key n's outage has in the table when grouped by kind.
OutageKey table_key(const Notification& n, OutageKind kind);

class OutageTable {
 public:
  // key's entry; with create, one is made (without an outage) where none is.
  std::shared_ptr<TrackedKey> find(const OutageKey& key, bool create) EXCLUDES(mutex_);
  // A key without an open outage leaves the table.
  void forget(TrackedKey& ks) REQUIRES(ks.mutex) EXCLUDES(mutex_);
  // For the recovery only: key's record is a close.
  void erase(const OutageKey& key) EXCLUDES(mutex_);
  // Every entry now, for a walk that takes each key's lock in turn. A
  // deque, not a vector: it grows in small blocks, so a large table makes
  // no one large allocation (which would raise glibc's mmap and trim
  // thresholds and keep that much memory resident after it is freed).
  std::deque<std::shared_ptr<TrackedKey>> entries() const EXCLUDES(mutex_);
  std::size_t size() const EXCLUDES(mutex_);

 private:
  mutable Mutex mutex_;
  std::unordered_map<OutageKey, std::shared_ptr<TrackedKey>, OutageKeyHash> table_ GUARDED_BY(mutex_);
};

}  // namespace xmatters
