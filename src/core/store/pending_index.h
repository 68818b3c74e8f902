// Where each undelivered event's record is in the spool's log, and how many
// bytes of records each segment still holds for them: what compaction must
// copy and recovery sends again (doc/storage.md). Not thread-safe: the
// spool keeps it under its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "store/spool_replay.h"

namespace xmatters {

class PendingIndex {
 public:
  // A later record for a pending event_id replaces the earlier one (a copy
  // written by compaction).
  void set(std::string id, const SpoolLoc& loc);
  // False when id is not pending.
  bool erase(const std::string& id);
  const SpoolLoc* find(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
  }
  // Moves id's record from `from` to `to`, unless it was acknowledged or
  // moved meanwhile.
  void move(const std::string& id, const SpoolLoc& from, const SpoolLoc& to);
  // Forgets the events still recorded in segments before seq (records that
  // compaction could not copy); returns how many.
  std::size_t drop_before(std::uint64_t seq);
  std::size_t live_in_segments_before(std::uint64_t seq) const;
  std::size_t size() const { return by_id_.size(); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  void account(const SpoolLoc& loc);
  void unaccount(const SpoolLoc& loc);

  std::unordered_map<std::string, SpoolLoc> by_id_;
  std::map<std::uint64_t, std::size_t> per_segment_;  // pending events per segment
  std::uint64_t bytes_ = 0;
};

}  // namespace xmatters
