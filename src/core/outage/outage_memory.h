// The tracker's ordering memory (collectd-xmatters(5) OUTAGES): outages that
// closed (and OKAYs of keys without an outage), each with its last
// notification time and its start, so that a notification older than the
// close is stale and ignored, and an outage that reopens starts after the
// closed one (the two never share an outage_id).
// Bounded: kept for kClockStep of notification time (older input counts as
// a step of the clock anyway) and for at most kClosedKeys keys. Thread-safe,
// a leaf lock: nothing is called while it is held.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/mutex.h"
#include "outage/notification.h"
#include "outage/outage.h"

namespace xmatters {

// Threads reorder a key's notifications by microseconds; one this much older
// than the last means the clock went back.
inline constexpr auto kClockStep = std::chrono::seconds(60);

// Value lists remembered at most (about 250 bytes each, doc/storage.md
// Bounds): far more than threads and the network reorder within
// milliseconds, and few enough that keys coming and going leave memory
// within the churn bound.
inline constexpr std::size_t kClosedKeys = 10000;
// Of those, the ones a compaction writes again (the last closed): at most
// about 150 KB for each compaction, whatever the storm.
inline constexpr std::size_t kClosedKept = 1000;

class ClosedOutages {
 public:
  struct Closed {
    TimePoint last, start;
  };

  // key's outage closed; a host outage's value lists (members) are
  // remembered too, each with its own last time (and no start).
  void remember(const OutageKey& key, Closed closed, const std::vector<Member>& members = {}) EXCLUDES(mutex_);
  // key's OKAY came while it had no outage: remembered like a close (its
  // time; the start of a closed outage of key, if one is remembered, kept),
  // so that an older FAILURE that arrives after it opens nothing.
  void remember_okay(const OutageKey& key, TimePoint time) EXCLUDES(mutex_);
  std::optional<Closed> find(const OutageKey& key) const EXCLUDES(mutex_);
  // Whether a notification at `time` for key (without an outage that holds
  // it) is older than key's closed outage: stale, ignored.
  bool stale(const OutageKey& key, TimePoint time) const;
  // The start of an outage of key opening at `time`: not before one
  // nanosecond after its closed outage's start, so the two have different ids.
  TimePoint start_after(const OutageKey& key, TimePoint time) const;
  // The `at_most` closed last, oldest first (each key once), for compaction.
  std::deque<std::pair<OutageKey, Closed>> last_closed(std::size_t at_most) const EXCLUDES(mutex_);
  // Keys remembered now (at most kClosedKeys).
  std::size_t size() const EXCLUDES(mutex_);
  // Copies the entries into new allocations and frees the old ones, when
  // there are more than kClosedKept: entries remembered during a storm lie
  // one to a page among the storm's freed outages and keep those pages
  // resident (doc/storage.md, Bounds). For compaction, after a storm.
  void repack() EXCLUDES(mutex_);

 private:
  void remember_locked(const OutageKey& key, Closed closed) REQUIRES(mutex_);

  // Each key is stored once, in keys_; order_ lists the entries by their
  // last remember, oldest first (an LRU). Invariant: order_ holds a pointer
  // to every entry of keys_ and to nothing else, and each entry's pos is its
  // place in order_. Pointers to an unordered_map's entries stay valid across
  // a rehash (shrink_if_sparse), only erasing one invalidates it, and every
  // erase takes its pointer out of order_ too.
  struct Slot;
  using Entry = std::pair<const OutageKey, Slot>;  // keys_'s value_type
  using Order = std::list<Entry*>;
  struct Slot {
    Closed closed;
    Order::iterator pos;
  };

  mutable Mutex mutex_;
  std::unordered_map<OutageKey, Slot, OutageKeyHash> keys_ GUARDED_BY(mutex_);
  Order order_ GUARDED_BY(mutex_);  // least recently remembered first
};

}  // namespace xmatters
