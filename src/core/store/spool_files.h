// Inside the spool (spool.h): its files, their writes and syncs, the state that spool.cc (open, replay, the
// hot path, group commit) and spool_compact.cc (maintenance, compaction)
// share. Included by those two only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "util/mutex.h"
#include "store/pending_index.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"
#include "store/spool_reserve.h"
#include "util/throttle.h"

namespace xmatters {

struct Spool::Files {
  using Steady = std::chrono::steady_clock;

  Files(std::string d, Logger& l, std::shared_ptr<SpoolIo> i, const SpoolOptions& o)
      : dir(std::move(d)),
        log(l),
        io(i ? std::move(i) : posix_spool_io()),
        options(o),
        reserve(*io, dir, o.reserve_bytes) {}

  // The segment files in use and where the next record goes.
  struct Segments {
    std::shared_ptr<WritableFile> active;  // null after a write it could not repair
    std::uint64_t active_seq = 0;
    std::uint64_t active_size = 0;  // whole records only
    std::uint64_t next_seq = 1;
    std::map<std::uint64_t, std::uint64_t> sizes;  // every segment in use, the active one included
    std::uint64_t total_bytes = 0;                 // their sum
    std::vector<std::shared_ptr<WritableFile>> unsynced;  // retired, not fsynced yet
    bool dir_dirty = false;                               // entries changed since the last sync
  };
  // Group commit: one sync at a time, which makes every record appended
  // before it began durable; whoever needs a record durable waits for the
  // sync that covers it, and one of those waiting runs the next sync for
  // all of them (see lead_sync).
  struct Commit {
    SpoolLoc durable{};          // every record before it is synced
    bool syncing = false;        // a sync runs (without the mutex)
    std::uint64_t failures = 0;  // syncs that failed, so far
  };
  // One maintenance at a time (doc/design.md, Lock order: before mutex).
  struct Maintenance {
    Mutex mutex;
    SnapshotSource snapshot_source GUARDED_BY(mutex);
    // Of a compaction that failed, reused by the next.
    std::optional<std::uint64_t> failed_target GUARDED_BY(mutex);
    Steady::time_point last_compaction GUARDED_BY(mutex){};
    // Bytes compactions dropped since the last malloc_trim.
    std::uint64_t dropped_since_trim GUARDED_BY(mutex) = 0;
    std::vector<std::uint64_t> obsolete GUARDED_BY(mutex);  // replaced segments whose deletion failed
    Throttle errors;
  };

  const std::string dir;
  Logger& log;
  const std::shared_ptr<SpoolIo> io;
  const SpoolOptions options;
  SpoolReserve reserve;

  // Held for one write(2) by append, append_change and acknowledge, and
  // for a sync's bookkeeping (never during the fdatasync).
  mutable Mutex mutex ACQUIRED_AFTER(maintenance.mutex);
  Segments segments GUARDED_BY(mutex);
  PendingIndex pending GUARDED_BY(mutex);
  Commit commit GUARDED_BY(mutex);
  std::condition_variable sync_done;
  std::vector<Event> recovered GUARDED_BY(mutex);
  std::vector<std::string> recovered_changes GUARDED_BY(mutex);
  // Bytes of outage changes appended since the last compaction took the
  // table: with snapshot_bytes, a bound on the table's size now.
  std::uint64_t change_bytes GUARDED_BY(mutex) = 0;
  // Of the outage table in the last compacted segment (written by
  // maintenance, read by append's admission).
  std::uint64_t snapshot_bytes GUARDED_BY(mutex) = 0;

  std::atomic<bool> change_lost{false};  // a change is in memory only: compaction due
  // Appends of Room::Reserve that failed (a clear the store then holds in
  // memory: its outage is closed in the table that a compaction takes, and
  // open on disk only in the segments it would delete).
  std::atomic<std::uint64_t> reserved_refused{0};
  // Bytes of the compaction running, in its .tmp: given back when it fails,
  // or once the segments it replaces are deleted. Free space for the
  // admission of outage events (a storm's compaction takes it for a while).
  std::atomic<std::uint64_t> compacting{0};
  Throttle write_errors;
  Throttle sync_errors;
  Maintenance maintenance;

  static bool is_enospc(const std::system_error& e) { return e.code() == std::errc::no_space_on_device; }
  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string segment_path(std::uint64_t seq) const { return path(spool_format::segment_name(seq)); }

  void error(Throttle& throttle, const std::string& what) {
    if (const auto held_back = throttle.admit())
      log.error("spool: " + what + (*held_back > 0 ? " (and " + std::to_string(*held_back) + " more since)" : ""));
  }

  // What the reserve must hold once the file system is full: room for an
  // acknowledgement of every pending event and for a compaction's table,
  // which is all a compaction writes once they are delivered, and the last
  // page of each file those go to (a file system allocates whole pages).
  static constexpr std::uint64_t kAckBytes = 64;  // a framed ACK of an event_id
  std::uint64_t reserve_needed_locked() const REQUIRES(mutex) {
    constexpr std::uint64_t kPages = 8 * 1024;
    return kPages + snapshot_bytes + change_bytes + pending.size() * kAckBytes;
  }

  // --- spool.cc: open, the segments' writes, group commit
  void open_dir();
  // At open, before any other thread: under mutex only for the analysis.
  void replay() REQUIRES(mutex);
  // I/O under the lock, but only at open, at compaction and after a failed
  // write.
  void start_segment_locked() REQUIRES(mutex);
  void retire_active_locked() REQUIRES(mutex);
  // Appends one framed record to the active segment; on ENOSPC gives the
  // reserve up and tries once more, if may_use_reserve.
  SpoolLoc write_record_locked(const std::string& record, bool may_use_reserve) REQUIRES(mutex);
  SpoolLoc try_write_locked(const std::string& record) REQUIRES(mutex);
  void sync() EXCLUDES(mutex);
  bool lead_sync() REQUIRES(mutex);
  // Waits while a sync runs (mutex released meanwhile).
  void wait_for_sync(MutexLock& lock) REQUIRES(mutex) {
    while (commit.syncing) lock.wait(sync_done);
  }

  // --- spool_compact.cc: maintenance
  bool maintain(const std::function<bool()>& may_compact) EXCLUDES(maintenance.mutex, mutex);
  // Grows (or shrinks) the reserve to what is needed now; false when there
  // is no room for it.
  bool restore_reserve() REQUIRES(maintenance.mutex) EXCLUDES(mutex);
  // What a compaction writes at most: the table, the pending events.
  std::uint64_t compaction_bytes() EXCLUDES(mutex);
  // Whether a compaction fits in the free space, or in the reserve it may
  // give up: one that cannot would only take the room of outage events
  // while it writes, and fail (a storm's backlog on a filling disk).
  bool compaction_fits() EXCLUDES(mutex);
  bool compaction_wanted() REQUIRES(maintenance.mutex) EXCLUDES(mutex);
  bool compact(const std::function<bool()>& may_compact) REQUIRES(maintenance.mutex) EXCLUDES(mutex);
  void delete_obsolete() REQUIRES(maintenance.mutex) EXCLUDES(mutex);
};

}  // namespace xmatters
