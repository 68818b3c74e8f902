// The on-disk queue of undelivered events under SpoolDir: an append-only
// log of CRC-framed records (see spool_format.h) that survives a torn tail.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event.h"
#include "log.h"
#include "resources.h"
#include "spool_io.h"

namespace xmatters {

// Sizes of the spool's files. The defaults suit production; tests shrink
// them to exercise rotation and compaction with few events.
struct SpoolOptions {
  // The segment being appended to is closed and a new one started once it
  // is this big; compaction starts once the spool is bigger than this and
  // more than half of it is acknowledged.
  std::size_t segment_bytes = 4u << 20;
  // More segments than this, most of them small (each start of the plugin
  // begins a new one), are compacted into one.
  std::size_t max_segments = 32;
};

// Exclusive use of a SpoolDir by one process: two collectd daemons (or a
// `collectd -T` beside the running one) on one spool would compact away
// each other's segments. flock(2) on SpoolDir/lock, so the kernel releases
// it when the process dies, even by kill -9.
class SpoolDirLock {
 public:
  // Throws std::system_error (EWOULDBLOCK when another process holds it).
  explicit SpoolDirLock(const std::string& dir);

 private:
  UniqueFd fd_;
};

class Spool {
 public:
  // Opens dir (created with mode 0700 if missing; files are 0600) and
  // replays it: events appended and not acknowledged are kept for
  // take_recovered(). A damaged or torn record is skipped with a WARNING.
  // Throws std::system_error when dir cannot be used.
  Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io = nullptr);
  // The same, with other file sizes (tests).
  Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io, const SpoolOptions& options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // The undelivered events found at open, oldest first; once.
  std::vector<Event> take_recovered();

  // Thread-safe. When it returns, the event survives a crash of the process
  // (it is in the kernel's page cache; sync() makes it survive power loss).
  // Throws std::system_error on an I/O error (e.g. ENOSPC; EFBIG for an
  // event over 16 MiB) and std::invalid_argument for an empty event_id; the
  // event is then not in the spool, and the spool stays consistent.
  // Costs one write(2) under a mutex and no fsync: the record is encoded
  // and checksummed before the lock is taken.
  void append(const Event& event);

  // The body of a pending event, read back from its record: the delivery
  // queue holds events without their bodies, so that a waiting event costs
  // memory for its ids only (fresh memory, taken on collectd's thread, is
  // a page fault there). Thread-safe; nullopt when the event is not
  // pending. Throws std::system_error on an I/O error and
  // std::runtime_error when the record no longer reads back as written
  // (damaged on disk since).
  std::optional<std::string> read_body(const std::string& event_id);

  // Thread-safe: the event is delivered or dead-lettered; it will not be
  // recovered again. One write(2). Never throws: an I/O error is logged
  // (the event may then be recovered again after a restart: a duplicate,
  // never a loss). An unknown event_id is ignored.
  void acknowledge(const std::string& event_id);

  // Deletes the segments whose events are all acknowledged, starts a new
  // segment when the active one is full, and compacts the log when enough
  // of it is acknowledged (copying the pending events, mostly without the
  // append mutex), so that the spool stays bounded by what is pending.
  // Thread-safe; meant to be called periodically from a thread of its own
  // (e.g. with sync()), as copying a large backlog takes a while. Never
  // throws: a failure is logged (WARNING) and retried by the next call.
  void maintain();

  // Flushes every record appended so far to stable storage (fdatasync of
  // the segments, fsync of the directory after a segment was created), so
  // that it survives a power loss, which append alone does not promise.
  // Never throws: an error is logged with ERROR.
  void sync();

  // Events appended (or recovered) and not acknowledged.
  std::size_t pending() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xmatters
