#include "store/pending_index.h"

#include "util/hash_table.h"

namespace xmatters {

void PendingIndex::set(std::string id, const SpoolLoc& loc) {
  auto [it, inserted] = by_id_.try_emplace(std::move(id), loc);
  if (!inserted) {
    unaccount(it->second);
    it->second = loc;
  }
  account(loc);
}

bool PendingIndex::erase(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  unaccount(it->second);
  by_id_.erase(it);
  shrink_if_sparse(by_id_);
  return true;
}

void PendingIndex::move(const std::string& id, const SpoolLoc& from, const SpoolLoc& to) {
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !same_place(it->second, from)) return;
  unaccount(it->second);
  it->second = to;
  account(to);
}

std::size_t PendingIndex::drop_before(std::uint64_t seq) {
  std::size_t dropped = 0;
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    if (it->second.seq < seq) {
      unaccount(it->second);
      it = by_id_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

std::size_t PendingIndex::live_in_segments_before(std::uint64_t seq) const {
  std::size_t n = 0;
  for (auto it = per_segment_.begin(); it != per_segment_.end() && it->first < seq; ++it) n += it->second;
  return n;
}

void PendingIndex::account(const SpoolLoc& loc) {
  bytes_ += loc.size;
  ++per_segment_[loc.seq];
}

void PendingIndex::unaccount(const SpoolLoc& loc) {
  bytes_ -= loc.size;
  auto it = per_segment_.find(loc.seq);
  if (it != per_segment_.end() && --it->second == 0) per_segment_.erase(it);
}

}  // namespace xmatters
