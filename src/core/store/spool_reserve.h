// SpoolDir/reserve: space that the spool holds while it has room and gives
// up the first time a write finds the file system full, so that what must
// still be written (acknowledgements, clears, compaction) can be. Sized to
// that need (the spool computes it), small when little is pending, so that
// a file system of a few hundred KiB takes outages too (doc/storage.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "util/mutex.h"
#include "store/spool_io.h"

namespace xmatters {

class SpoolReserve {
 public:
  // step: the reserve grows in steps of this; 0: no reserve.
  SpoolReserve(SpoolIo& io, std::string dir, std::uint64_t step);

  // Whether an outage event may be taken that makes the need `need` and
  // writes `bytes`: the reserve covers the need, or the free space beside it
  // covers the event and the rest of the need until restore() grows it (a
  // storm between two maintenance ticks). Never allocates: called on
  // collectd's threads. A refusal stands until restore() finds room.
  // freeing: bytes that are not free now but will be shortly (a
  // compaction's file).
  bool admits(std::uint64_t need, std::uint64_t bytes, std::uint64_t freeing);
  // New outage events are refused until restore() finds room (an outage
  // event's write found the disk full).
  void refuse() { covers_ = false; }
  std::uint64_t size() const { return size_; }
  // Whether outage events are taken: it held its need at the last restore(),
  // and neither a refusal nor release() came since.
  bool covers() const { return covers_; }

  // Maintenance: makes it hold `need`; twice that and a step where the file
  // system has room for as much again (a growing table is then not a
  // fallocate at every tick), just the need where it has not; gives back
  // what is far more than twice the need. Refused outage events are taken
  // again only once a step is free beside it, not for the few bytes a
  // delivery freed (which would take outages and refuse them by turns).
  // False when outage events stay refused: what it holds stays, for
  // release().
  bool restore(std::uint64_t need) EXCLUDES(mutex_);
  // Gives the space up; false when none was held. Caller may hold the
  // spool's mutex (never the other way round).
  bool release() EXCLUDES(mutex_);

 private:
  std::uint64_t free_bytes() const;
  void shrink(std::uint64_t to) REQUIRES(mutex_);
  void remove() REQUIRES(mutex_);

  SpoolIo& io_;
  const std::string dir_;
  const std::string path_;
  const std::uint64_t step_;
  Mutex mutex_;  // one resize at a time; admits() reads the atomics alone
  std::atomic<std::uint64_t> size_{0};  // allocated, as far as it is counted on
  std::atomic<std::uint64_t> growing_{0};  // the size an allocation running asked for
  std::atomic<bool> covers_{false};
};

}  // namespace xmatters
