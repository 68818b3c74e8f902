// The spool: the plugin's one log of events and outage changes under
// SpoolDir (its format and rules: doc/storage.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outage/event.h"
#include "util/function_ref.h"
#include "util/log.h"
#include "store/spool_io.h"

namespace xmatters {

// Sizes and pace of the spool's maintenance. The defaults suit production;
// tests shrink them to exercise compaction with few events.
struct SpoolOptions {
  // Compaction is due once the records it would drop outweigh the ones it
  // keeps, or once the active segment is this big.
  std::size_t segment_bytes = 4u << 20;
  // At most one compaction per interval: a delivered event's space comes
  // back within about that.
  std::chrono::milliseconds compaction_interval{1000};
  // SpoolDir/reserve, given up when the file system is full so that
  // acknowledgements and compaction can still be written, holds what they
  // need; where there is room, twice that and this, in steps of this
  // (doc/storage.md). 0: no reserve.
  std::uint64_t reserve_bytes = 64u << 10;
};

// Takes one piece of the outage table (whole framed records, one or more).
using SnapshotWriter = FunctionRef<void(std::string_view)>;
// Writes the open outages of every integration as framed OUTAGE_SET
// records, each key's committed state (OutageTracker::snapshot), a few at a
// time: compaction streams them to the compacted segment instead of
// holding the whole table (doc/storage.md). Called from the maintenance
// thread; may throw (compaction then fails and is retried).
using SnapshotSource = std::function<void(SnapshotWriter)>;

// The one write-ahead log of the plugin: events, their acknowledgements and
// the outage changes, in segments under SpoolDir (doc/storage.md).
class Spool {
 public:
  // Opens dir (created with mode 0700 if missing; files are 0600) and
  // replays it. A damaged or torn record is skipped with a WARNING.
  // Throws std::system_error when dir cannot be used.
  Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io = nullptr,
        const SpoolOptions& options = SpoolOptions{});
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // The undelivered events found at open, oldest first; once.
  std::vector<Event> take_recovered();
  // The outage changes found at open, in log order from the last snapshot
  // on, each one framed OUTAGE_SET or OUTAGE_CLOSE record (an event's
  // change field or a record of its own); once. Applied in order, the last
  // one of a key wins.
  std::vector<std::string> take_recovered_changes();

  // Where compaction takes the outage table from. Until it is set the
  // table is taken to be empty (a spool of events only, as in tests).
  void set_snapshot_source(SnapshotSource source);

  // Where an append may take its room from; the caller decides (the store:
  // outage events Free, clears Reserve).
  enum class Room {
    // The free space only, leaving the reserve its need: refused with
    // ENOSPC, unwritten, when neither the reserve nor the free space beside
    // it covers what must follow the event, and from then on until
    // maintenance finds room (doc/storage.md).
    Free,
    // The reserve too: on ENOSPC it is given up and the write tried again.
    // A failure is remembered: a compaction running meanwhile is put off
    // (what could not be written may be what keeps an outage open on disk).
    Reserve,
  };
  // Thread-safe. When it returns, the event (and the change it carries)
  // survives a crash of the process; sync() makes it survive power loss.
  // Throws std::system_error on an I/O error (e.g. ENOSPC; EFBIG for an
  // event over 16 MiB) and std::invalid_argument for an empty event_id; the
  // event is then not in the spool, and the spool stays consistent.
  // Costs one write(2) under a mutex and no fsync.
  void append(const Event& event, Room room);

  // Appends one framed OUTAGE_SET / OUTAGE_CLOSE record (a change that sends
  // no event) with one write(2). Thread-safe; never throws: a failure is
  // logged (ERROR, throttled) and makes a compaction due, whose snapshot
  // brings the change to disk.
  void append_change(const std::string& record);

  // Appends one framed record of the table that the operator waits for (a
  // SILENCE, doc/storage.md) and returns once it is durable (a group
  // commit, as make_durable). Thread-safe; never on collectd's threads.
  // Throws std::system_error when it cannot be written or synced.
  void append_durable(const std::string& record);

  // The body of a pending event, read back from its record: the delivery
  // queue holds events without their bodies. Thread-safe; nullopt when the
  // event is not pending. Throws std::system_error on an I/O error and
  // std::runtime_error when the record no longer reads back as written.
  std::optional<std::string> read_body(const std::string& event_id);

  // Makes the event's record durable: an event is sent only once a power
  // loss cannot take it back (doc/storage.md, the ordering rule). Group
  // commit: one fdatasync covers every record appended before it began; a
  // caller whose record the sync running does not cover waits for it, and
  // then one of the callers waiting syncs for all of them. Thread-safe; for
  // delivery threads, never collectd's. False when it could not be synced.
  bool make_durable(const std::string& event_id);

  // Thread-safe: the event is delivered or dead-lettered; it will not be
  // recovered again. One write(2). Never throws: an I/O error is logged
  // (the event may then be recovered again after a restart: a duplicate,
  // never a loss). An unknown event_id is ignored.
  void acknowledge(const std::string& event_id);

  // Compacts the log when it is due and may_compact() allows (asked before
  // and again just before the compacted segment replaces the others),
  // brings the reserve back when there is room, retries what failed, then
  // sync()s. A compaction is also put off when an append of Room::Reserve
  // failed while it ran. Meant for the maintenance thread, about every second;
  // never collectd's. Never throws: a failure is logged (ERROR, throttled)
  // and retried. Returns whether it has more to do (a compaction put off,
  // the reserve not back yet): call it again a tick later even if nothing
  // changes.
  bool maintain(const std::function<bool()>& may_compact = [] { return true; });

  // Flushes every record appended so far to stable storage. Never throws:
  // an error is logged with ERROR.
  void sync();

  // Events appended (or recovered) and not acknowledged.
  std::size_t pending() const;

 private:
  struct Files;  // spool_files.h
  std::unique_ptr<Files> files_;
};

}  // namespace xmatters
