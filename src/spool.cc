// The spool: segments of CRC-framed records under SpoolDir. What is on disk
// and why a crash or power loss at any instant is safe: doc/storage.md.
//
// Units here: PendingIndex (where each undelivered event's record is),
// Reserve (the space kept for a full disk), and the State that appends,
// replays and compacts the segments.
#include "spool.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "hash_table.h"
#include "mutex.h"
#include "spool_format.h"
#include "spool_replay.h"
#include "throttle.h"

namespace xmatters {

namespace sf = spool_format;

namespace {

using Steady = std::chrono::steady_clock;

using Loc = SpoolLoc;

bool same_place(const Loc& a, const Loc& b) { return a.seq == b.seq && a.offset == b.offset; }
bool before(const Loc& a, const Loc& b) { return a.seq != b.seq ? a.seq < b.seq : a.offset < b.offset; }

bool is_enospc(const std::system_error& e) { return e.code() == std::errc::no_space_on_device; }

using sf::kChunk;

// Appends to a file through a buffer of kChunk bytes; a piece larger than
// that (a large event's record) is written on its own.
class ChunkedWriter {
 public:
  // written: where the bytes written to the file so far are counted.
  ChunkedWriter(WritableFile& file, std::atomic<std::uint64_t>& written) : file_(file), written_(written) {
    buf_.reserve(kChunk);
  }
  void write(std::string_view data) {
    if (buf_.size() + data.size() > kChunk) flush();
    if (data.size() >= kChunk)
      append(data);
    else
      buf_.append(data);
    size_ += data.size();
  }
  void flush() {
    if (buf_.empty()) return;
    append(buf_);
    buf_.clear();
  }
  std::uint64_t size() const { return size_; }  // written so far, flushed or not

 private:
  void append(std::string_view data) {
    file_.append(data);
    written_ += data.size();
  }
  WritableFile& file_;
  std::atomic<std::uint64_t>& written_;
  std::string buf_;
  std::uint64_t size_ = 0;
};

// The undelivered events: where each one's record is, and how many bytes of
// records each segment still holds for them.
class PendingIndex {
 public:
  // A later record for a pending event_id replaces the earlier one (a copy
  // written by compaction).
  void set(std::string id, const Loc& loc) {
    auto [it, inserted] = by_id_.try_emplace(std::move(id), loc);
    if (!inserted) {
      unaccount(it->second);
      it->second = loc;
    }
    account(loc);
  }
  // False when id is not pending.
  bool erase(const std::string& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    unaccount(it->second);
    by_id_.erase(it);
    shrink_if_sparse(by_id_);
    return true;
  }
  const Loc* find(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
  }
  // Moves id's record from `from` to `to`, unless it was acknowledged or
  // moved meanwhile.
  void move(const std::string& id, const Loc& from, const Loc& to) {
    auto it = by_id_.find(id);
    if (it == by_id_.end() || !same_place(it->second, from)) return;
    unaccount(it->second);
    it->second = to;
    account(to);
  }
  // Forgets the events still recorded in segments before seq (records that
  // compaction could not copy); returns how many.
  std::size_t drop_before(std::uint64_t seq) {
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
  std::size_t live_in_segments_before(std::uint64_t seq) const {
    std::size_t n = 0;
    for (auto it = per_segment_.begin(); it != per_segment_.end() && it->first < seq; ++it) n += it->second;
    return n;
  }
  std::size_t size() const { return by_id_.size(); }
  std::uint64_t bytes() const { return bytes_; }
  // Ordered by place in the log: the order of recovery.
  std::vector<std::pair<Loc, std::string>> ordered() const {
    std::vector<std::pair<Loc, std::string>> out;
    out.reserve(by_id_.size());
    for (const auto& [id, loc] : by_id_) out.emplace_back(loc, id);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return before(a.first, b.first); });
    return out;
  }

 private:
  void account(const Loc& loc) {
    bytes_ += loc.size;
    ++per_segment_[loc.seq];
  }
  void unaccount(const Loc& loc) {
    bytes_ -= loc.size;
    auto it = per_segment_.find(loc.seq);
    if (it != per_segment_.end() && --it->second == 0) per_segment_.erase(it);
  }

  std::unordered_map<std::string, Loc> by_id_;
  std::map<std::uint64_t, std::size_t> per_segment_;  // pending events per segment
  std::uint64_t bytes_ = 0;
};

// SpoolDir/reserve: space that the spool holds while it has room and gives
// up the first time a write finds the file system full, so that what must
// still be written (acknowledgements, clears, compaction) can be. Sized to
// that need (Spool::State::reserve_needed_locked), small when little is
// pending, so that a file system of a few hundred KiB takes outages too.
class Reserve {
 public:
  Reserve(SpoolIo& io, std::string dir, std::uint64_t step)
      : io_(io), dir_(std::move(dir)), path_(dir_ + "/reserve"), step_(step) {}

  // Whether an outage event may be taken that makes the need `need` and
  // writes `bytes`: the reserve covers the need, or the free space beside it
  // covers the event and the rest of the need until restore() grows it (a
  // storm between two maintenance ticks). Never allocates: called on
  // collectd's threads. A refusal stands until restore() finds room.
  // freeing: bytes that are not free now but will be shortly (a
  // compaction's file).
  bool admits(std::uint64_t need, std::uint64_t bytes, std::uint64_t freeing) {
    if (!covers_) return false;
    // An allocation running takes free space before size_ counts it.
    const std::uint64_t held = std::max(size_.load(), growing_.load());
    if (need <= held || need - held + bytes + kPage <= free_bytes() + freeing) return true;
    refuse();
    return false;
  }
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
  bool restore(std::uint64_t need) EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    if (step_ == 0) return false;
    const std::uint64_t roomy = round_up(2 * need + step_, step_);
    const std::uint64_t held = size_;
    if (held > 4 * roomy) {
      shrink(roomy);
    } else if (held < roomy) {
      const std::uint64_t want = held + free_bytes() >= 2 * roomy ? roomy : round_up(need, kPage);
      if (held < want) {
        growing_ = want;
        try {
          io_.allocate(path_, want);
          size_ = want;
        } catch (const std::system_error&) {
          if (held == 0) remove();  // a part is worse than nothing: it is not counted on
        }
        growing_ = 0;
      }
    }
    return covers_ = size_ >= need && (covers_ || free_bytes() >= step_);
  }
  // Gives the space up; false when none was held. Caller may hold the
  // spool's mutex (never the other way round).
  bool release() EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    covers_ = false;
    if (size_ == 0) return false;
    remove();
    return true;
  }

 private:
  static constexpr std::uint64_t kPage = 4096;  // what a file system allocates at least
  static std::uint64_t round_up(std::uint64_t n, std::uint64_t step) { return (n + step - 1) / step * step; }
  std::uint64_t free_bytes() const {
    try {
      return io_.free_bytes(dir_);
    } catch (const std::system_error&) {
      return 0;
    }
  }
  void shrink(std::uint64_t to) {
    size_ = to;  // first: what goes is no longer counted on
    try {
      io_.open_append(path_)->truncate(to);
    } catch (const std::system_error&) {
      remove();
    }
  }
  void remove() {
    size_ = 0;
    try {
      io_.remove(path_);
    } catch (const std::system_error&) {
    }
  }

  SpoolIo& io_;
  const std::string dir_;
  const std::string path_;
  const std::uint64_t step_;
  Mutex mutex_;  // one resize at a time; admits() reads the atomics alone
  std::atomic<std::uint64_t> size_{0};  // allocated, as far as it is counted on
  std::atomic<std::uint64_t> growing_{0};  // the size an allocation running asked for
  std::atomic<bool> covers_{false};
};

}  // namespace

struct Spool::State {
  State(std::string d, Logger& l, std::shared_ptr<SpoolIo> i, const SpoolOptions& o)
      : dir(std::move(d)),
        log(l),
        io(i ? std::move(i) : posix_spool_io()),
        options(o),
        reserve(*io, dir, o.reserve_bytes) {}

  const std::string dir;
  Logger& log;
  const std::shared_ptr<SpoolIo> io;
  const SpoolOptions options;
  Reserve reserve;

  // Held for one write(2) by append, append_change and acknowledge, and
  // for a sync's bookkeeping (never during the fdatasync).
  mutable Mutex mutex;
  std::shared_ptr<WritableFile> active GUARDED_BY(mutex);  // null after a write it could not repair
  std::uint64_t active_seq GUARDED_BY(mutex) = 0;
  std::uint64_t active_size GUARDED_BY(mutex) = 0;  // whole records only
  std::uint64_t next_seq GUARDED_BY(mutex) = 1;
  // Every segment in use, the active one included, and their sum.
  std::map<std::uint64_t, std::uint64_t> segment_sizes GUARDED_BY(mutex);
  std::uint64_t total_bytes GUARDED_BY(mutex) = 0;
  PendingIndex pending GUARDED_BY(mutex);
  std::vector<std::shared_ptr<WritableFile>> unsynced GUARDED_BY(mutex);  // retired, not fsynced yet
  bool dir_dirty GUARDED_BY(mutex) = false;  // entries changed since the last sync
  // Group commit: one sync at a time, which makes every record appended
  // before it began durable; whoever needs a record durable waits for the
  // sync that covers it, and one of those waiting runs the next sync for
  // all of them (see lead_sync).
  Loc durable GUARDED_BY(mutex){};              // every record before it is synced
  bool syncing GUARDED_BY(mutex) = false;          // a sync runs (without the mutex)
  std::uint64_t sync_failures GUARDED_BY(mutex) = 0;  // syncs that failed, so far
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

  // One maintenance at a time (doc/design.md, Lock order: before mutex).
  Mutex maintenance ACQUIRED_BEFORE(mutex);
  SnapshotSource snapshot_source GUARDED_BY(maintenance);
  // Of a compaction that failed, reused by the next.
  std::optional<std::uint64_t> failed_target GUARDED_BY(maintenance);
  Steady::time_point last_compaction GUARDED_BY(maintenance){};
  // Bytes compactions dropped since the last malloc_trim.
  std::uint64_t dropped_since_trim GUARDED_BY(maintenance) = 0;
  std::vector<std::uint64_t> obsolete GUARDED_BY(maintenance);  // replaced segments whose deletion failed
  Throttle maintenance_errors;

  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string segment_path(std::uint64_t seq) const { return path(sf::segment_name(seq)); }

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
  // What a compaction writes at most: the table, the pending events.
  std::uint64_t compaction_bytes() EXCLUDES(mutex) {
    MutexLock lock(mutex);
    return reserve_needed_locked() + pending.bytes();
  }
  bool compaction_fits_reserve() EXCLUDES(mutex) { return compaction_bytes() <= reserve.size(); }
  // Whether a compaction fits in the free space, or in the reserve it may
  // give up: one that cannot would only take the room of outage events
  // while it writes, and fail (a storm's backlog on a filling disk).
  bool compaction_fits() EXCLUDES(mutex) {
    const std::uint64_t bytes = compaction_bytes();
    if (bytes <= reserve.size()) return true;
    try {
      return bytes <= io->free_bytes(dir);
    } catch (const std::system_error&) {
      return true;  // tried; its failure is reported
    }
  }
  // Grows (or shrinks) the reserve to what is needed now; false when there
  // is no room for it.
  bool restore_reserve() REQUIRES(maintenance) EXCLUDES(mutex) {
    std::uint64_t needed;
    {
      MutexLock lock(mutex);
      needed = reserve_needed_locked();
    }
    return reserve.restore(needed);
  }

  // I/O under the lock, but only at open, at compaction and after a failed
  // write.
  void start_segment_locked() REQUIRES(mutex) {
    const std::uint64_t seq = next_seq++;
    std::shared_ptr<WritableFile> file = io->open_append(segment_path(seq));
    retire_active_locked();
    active = std::move(file);
    active_seq = seq;
    active_size = 0;
    segment_sizes[seq] = 0;
    dir_dirty = true;
  }

  void retire_active_locked() REQUIRES(mutex) {
    if (active) unsynced.push_back(std::move(active));
    active.reset();
  }

  // Appends one framed record to the active segment; on ENOSPC gives the
  // reserve up and tries once more, if may_use_reserve.
  Loc write_record_locked(const std::string& record, bool may_use_reserve) REQUIRES(mutex) {
    try {
      return try_write_locked(record);
    } catch (const std::system_error& e) {
      if (!is_enospc(e) || !may_use_reserve || !reserve.release()) throw;
      log.warning("spool: the file system of " + dir +
                  " is full: released the reserve for deliveries and clears; new outage events are refused "
                  "until there is room again");
      return try_write_locked(record);
    }
  }

  Loc try_write_locked(const std::string& record) REQUIRES(mutex) {
    if (!active) start_segment_locked();
    // A segment's first write carries its header (doc/storage.md,
    // Records): in one write(2) with the record, so that a segment with
    // records always has it, and a full disk at start costs nothing more.
    std::string with_header;
    if (active_size == 0) with_header = sf::encode_header() + record;
    const std::string& data = active_size == 0 ? with_header : record;
    try {
      active->append(data);
    } catch (const std::system_error&) {
      // Part of the record may be in the file; a record appended after it
      // would be preceded by garbage. Cut it off, or leave it as a torn tail
      // of a segment that takes no more records.
      try {
        active->truncate(active_size);
      } catch (const std::system_error&) {
        retire_active_locked();
      }
      throw;
    }
    const Loc loc{active_seq, active_size + data.size() - record.size(), static_cast<std::uint32_t>(record.size())};
    active_size += data.size();
    segment_sizes[active_seq] = active_size;
    total_bytes += data.size();
    return loc;
  }

  void open_dir();
  // At open, before any other thread: under mutex only for the analysis.
  void replay() REQUIRES(mutex);
  bool maintain(const std::function<bool()>& may_compact) EXCLUDES(maintenance, mutex);
  bool compaction_wanted() REQUIRES(maintenance) EXCLUDES(mutex);
  bool compact(const std::function<bool()>& may_compact) REQUIRES(maintenance) EXCLUDES(mutex);
  void delete_obsolete() REQUIRES(maintenance) EXCLUDES(mutex);
  void sync() EXCLUDES(mutex);
  bool lead_sync() REQUIRES(mutex);
  // Waits while a sync runs (mutex released meanwhile).
  void wait_for_sync(MutexLock& lock) REQUIRES(mutex) {
    while (syncing) lock.wait(sync_done);
  }
};

// --- open and replay -------------------------------------------------------------

// The plugin's SpoolDir was checked (and warned about) with the
// configuration (spool_dir.h); this is for the spool used alone.
void Spool::State::open_dir() {
  if (io->make_dir(dir, 0700)) log.info("spool: created directory " + dir);
  if (!S_ISDIR(io->mode(dir))) throw std::system_error(ENOTDIR, std::generic_category(), "spool directory " + dir);
}

void Spool::State::replay() {
  SpoolContents found = replay_spool(*io, dir, true);
  for (const std::string& name : found.legacy_files)
    log.warning("spool: " + path(name) +
                " was left by an earlier version, which kept outages there; it is not read (the outages "
                "now live in the spool's segments) and may be removed");
  // Unfinished compactions: the segments they were replacing are all still there.
  for (const std::string& name : found.temporaries) {
    try {
      io->remove(path(name));
      dir_dirty = true;
    } catch (const std::system_error& e) {
      log.warning(std::string("spool: ") + e.what());
    }
  }
  for (const auto& [seq, size] : found.segments) {
    segment_sizes[seq] = size;
    total_bytes += size;
    // Records written before a crash may not be on disk yet: they are
    // synced with the next sync(), before anything recovered from them is
    // sent.
    unsynced.push_back(io->open_append(segment_path(seq)));
  }
  for (const SpoolDamage& d : found.damage) {
    if (d.places > 0)
      log.warning("spool " + path(d.file) + ": skipped " + std::to_string(d.bytes) +
                  " bytes of damaged or incomplete records in " + std::to_string(d.places) +
                  (d.places == 1 ? " place" : " places") + (d.torn_tail ? " (the file ends in a torn write)" : "") +
                  "; events and outages in them are lost, the others are recovered");
    if (d.undecodable > 0)
      log.warning("spool " + path(d.file) + ": skipped " + std::to_string(d.undecodable) +
                  " records with a valid checksum that do not decode as events");
  }
  recovered.reserve(found.pending.size());
  for (SpoolEvent& e : found.pending) {
    pending.set(e.event.event_id, e.loc);
    recovered.push_back(std::move(e.event));
  }
  recovered_changes = std::move(found.changes);
  if (!recovered.empty())
    log.info("spool " + dir + ": recovered " + std::to_string(recovered.size()) + " undelivered events");
  next_seq = found.highest_seq + 1;  // a leftover .tmp's number is not reused either
}

Spool::Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io, const SpoolOptions& options)
    : state_(std::make_unique<State>(dir, log, std::move(io), options)) {
  State& s = *state_;
  s.open_dir();
  {
    MutexLock lock(s.mutex);
    s.replay();
    for (const std::string& change : s.recovered_changes) s.change_bytes += change.size();
  }
  bool reserved;
  {
    MutexLock lock(s.maintenance);
    reserved = s.restore_reserve();
  }
  if (!reserved && options.reserve_bytes > 0)
    log.warning("spool: no room for the reserve " + dir + "/reserve; new outage events are refused until there is");
  // A new segment at every start: the last one may end in a torn record,
  // and records appended after that would have to be found by a resync.
  MutexLock lock(s.mutex);
  s.start_segment_locked();
}

Spool::~Spool() {
  // Closing cleanly (collectd's shutdown) leaves a spool that survives a
  // power loss as well.
  state_->sync();
}

std::vector<Event> Spool::take_recovered() {
  MutexLock lock(state_->mutex);
  return std::exchange(state_->recovered, {});
}

std::vector<std::string> Spool::take_recovered_changes() {
  MutexLock lock(state_->mutex);
  return std::exchange(state_->recovered_changes, {});
}

void Spool::set_snapshot_source(SnapshotSource source) {
  MutexLock lock(state_->maintenance);
  state_->snapshot_source = std::move(source);
}

// --- the hot path ------------------------------------------------------------------

void Spool::append(const Event& event, Room room) {
  if (event.event_id.empty()) throw std::invalid_argument("spool: event without event_id");
  State& s = *state_;
  const bool may_use_reserve = room == Room::Reserve;
  std::string record;
  try {
    record = sf::encode_event(event);
  } catch (const std::length_error&) {
    throw std::system_error(EFBIG, std::generic_category(),
                            "spool: event " + event.event_id + " of integration " + event.integration + " too large");
  }
  std::string id = event.event_id;
  MutexLock lock(s.mutex);
  // Without the reserve only while it keeps room for what must follow the
  // event (its acknowledgement, its change in the next table) and for what
  // was accepted already.
  if (!may_use_reserve && s.options.reserve_bytes > 0 &&
      !s.reserve.admits(s.reserve_needed_locked() + State::kAckBytes + event.change.size(), record.size(),
                        s.compacting.load()))
    throw std::system_error(ENOSPC, std::generic_category(), "spool " + s.dir + " has no room for new outages");
  Loc loc;
  try {
    loc = s.write_record_locked(record, may_use_reserve);
  } catch (const std::system_error& e) {
    if (may_use_reserve)
      ++s.reserved_refused;
    else if (is_enospc(e))
      s.reserve.refuse();
    throw;
  }
  s.pending.set(std::move(id), loc);
  s.change_bytes += event.change.size();
}

void Spool::append_change(const std::string& record) {
  State& s = *state_;
  try {
    MutexLock lock(s.mutex);
    s.write_record_locked(record, true);
    s.change_bytes += record.size();
  } catch (const std::system_error& e) {
    s.change_lost = true;
    s.error(s.write_errors, std::string("cannot record an outage change (") + e.what() +
                                "); it is kept in memory and written with the next compaction");
  }
}

void Spool::append_durable(const std::string& record) {
  State& s = *state_;
  MutexLock lock(s.mutex);
  const Loc loc = s.write_record_locked(record, true);
  s.change_bytes += record.size();
  while (!before(loc, s.durable)) {
    if (!s.syncing) {
      if (!s.lead_sync()) throw std::system_error(EIO, std::generic_category(), "spool " + s.dir + ": cannot sync");
      continue;
    }
    s.wait_for_sync(lock);
  }
}

std::optional<std::string> Spool::read_body(const std::string& event_id) {
  State& s = *state_;
  // Compaction may move the record, and delete its old segment, between the
  // look-up and the read. Segment numbers are never reused, so the read
  // either finds the record where it was looked up or fails with ENOENT;
  // the record is then looked up again at its new place.
  for (;;) {
    Loc loc;
    {
      MutexLock lock(s.mutex);
      const Loc* found = s.pending.find(event_id);
      if (!found) return std::nullopt;
      loc = *found;
    }
    const std::string file = s.segment_path(loc.seq);
    std::string data;
    try {
      data = s.io->read_at(file, loc.offset, loc.size);
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::no_such_file_or_directory) throw;
      MutexLock lock(s.mutex);
      const Loc* found = s.pending.find(event_id);
      if (found && same_place(*found, loc)) throw;  // not moved: gone
      continue;
    }
    sf::Record rec{};
    Event event;
    if (sf::parse_record(data, 0, &rec) != data.size() || !sf::decode_event(rec, &event) ||
        event.event_id != event_id)
      throw std::runtime_error("spool " + file + ": the record of event " + event_id +
                               " no longer reads back (damaged on disk)");
    return std::move(event.body);
  }
}

bool Spool::make_durable(const std::string& event_id) {
  State& s = *state_;
  MutexLock lock(s.mutex);
  for (;;) {
    const Loc* loc = s.pending.find(event_id);
    if (!loc || before(*loc, s.durable)) return true;
    if (!s.syncing) {
      // No sync runs: this caller runs one, for every record appended so far.
      if (!s.lead_sync()) return false;
      continue;
    }
    // The sync running may have begun before this record was appended: wait
    // for it; then either it covered the record, or one of the callers
    // waiting runs the next one for all of them.
    const std::uint64_t failures = s.sync_failures;
    s.wait_for_sync(lock);
    if (s.sync_failures != failures) {
      loc = s.pending.find(event_id);
      return !loc || before(*loc, s.durable);  // the disk fails: not retried here
    }
  }
}

void Spool::acknowledge(const std::string& event_id) {
  State& s = *state_;
  MutexLock lock(s.mutex);
  if (!s.pending.find(event_id)) return;
  try {
    s.write_record_locked(sf::encode_ack(event_id), true);
  } catch (const std::system_error& e) {
    // Forgetting it anyway is safe: compaction does not copy it, and until
    // then a restart only sends it again.
    s.error(s.write_errors, std::string("cannot record that an event was delivered (") + e.what() +
                                "); it may be sent again after a restart");
  }
  s.pending.erase(event_id);
}

bool Spool::maintain(const std::function<bool()>& may_compact) { return state_->maintain(may_compact); }

std::size_t Spool::pending() const {
  MutexLock lock(state_->mutex);
  return state_->pending.size();
}

void Spool::sync() { state_->sync(); }

void Spool::State::sync() {
  MutexLock lock(mutex);
  // A sync running may have begun before the last append: wait for it, then
  // sync whatever it did not cover.
  wait_for_sync(lock);
  if (unsynced.empty() && !dir_dirty && !before(durable, Loc{active_seq, active_size, 0})) return;  // nothing new
  lead_sync();
}

// Caller holds mutex (through a MutexLock, which this releases and takes
// again) and no sync runs. Syncs every record appended until now, the
// segments retired since the last sync and the directory; the fdatasyncs
// run without the mutex, so appends go on meanwhile, and callers that need
// a record appended meanwhile wait for this sync to end and then share the
// next one. False when it failed (logged).
bool Spool::State::lead_sync() {
  syncing = true;
  const Loc upto{active_seq, active_size, 0};
  std::vector<std::shared_ptr<WritableFile>> files = std::exchange(unsynced, {});
  if (active) files.push_back(active);
  const bool sync_directory = std::exchange(dir_dirty, false);
  mutex.unlock();
  bool ok = true;
  for (const auto& f : files) {
    try {
      f->sync();
    } catch (const std::system_error& e) {
      ok = false;
      error(sync_errors, std::string(e.what()) + "; undelivered events may not survive a power loss");
    }
  }
  if (sync_directory) {
    try {
      io->sync_dir(dir);
    } catch (const std::system_error& e) {
      ok = false;
      error(sync_errors, std::string(e.what()) + "; undelivered events may not survive a power loss");
    }
  }
  mutex.lock();
  syncing = false;
  if (ok) {
    if (before(durable, upto)) durable = upto;
  } else {
    // Tried again by the next sync.
    ++sync_failures;
    if (sync_directory) dir_dirty = true;
    for (auto& f : files)
      if (f != active) unsynced.push_back(std::move(f));
  }
  sync_done.notify_all();
  return ok;
}

// --- maintenance and compaction -----------------------------------------------------

bool Spool::State::maintain(const std::function<bool()>& may_compact) {
  MutexLock guard(maintenance);
  bool more = false;
  try {
    delete_obsolete();
    if (compaction_wanted()) {
      if (!may_compact() || Steady::now() - last_compaction < options.compaction_interval || !compaction_fits() ||
          !compact(may_compact))
        more = true;
    }
  } catch (const std::exception& e) {
    // Retried by the next maintain(); the spool only grows meanwhile.
    error(maintenance_errors, std::string("compaction failed: ") + e.what() + "; will retry");
    more = true;
  }
  if (options.reserve_bytes > 0) {
    const bool was = reserve.covers();
    if (restore_reserve()) {
      if (!was) log.notice("spool: there is room in " + dir + " again; new outage events are accepted");
    } else {
      if (was)
        log.warning("spool: no room in " + dir + " to grow the reserve for the outages open and the events pending; "
                    "new outage events are refused until there is");
      more = true;
    }
  }
  sync();
  return more || !obsolete.empty();
}

bool Spool::State::compaction_wanted() {
  if (change_lost) return true;
  MutexLock lock(mutex);
  // Bytes that a compaction would drop: acknowledged events, their
  // acknowledgements, and outage changes the table has overtaken. Worth it
  // once they outweigh the events it copies, and are not a trifle beside
  // the table it rewrites (so delivered events' space comes back within a
  // tick or two, and a large table is not rewritten for a few bytes).
  const std::uint64_t keep = pending.bytes() + snapshot_bytes;
  const std::uint64_t drop = total_bytes > keep ? total_bytes - keep : 0;
  return (drop > pending.bytes() && 4 * drop > snapshot_bytes) ||
         (active_size >= options.segment_bytes && drop > 0) ||
         segment_sizes.size() > 2;  // more than the compacted and the active: a start left some
}

// The order of the steps is the ordering rule of
// doc/storage.md. False when it was put off: a clear could not be written
// meanwhile, or may_compact() no longer allows it.
bool Spool::State::compact(const std::function<bool()>& may_compact) {
  // The table written below includes a change that could not be recorded;
  // if this compaction fails, the next must still be due.
  struct LostChange {
    std::atomic<bool>& flag;
    const bool was = flag.exchange(false);
    bool written = false;
    ~LostChange() {
      if (was && !written) flag = true;
    }
  } lost_change{change_lost};
  last_compaction = Steady::now();
  struct Done {
    std::atomic<std::uint64_t>& bytes;
    ~Done() { bytes = 0; }  // its .tmp removed, or the segments it replaced deleted
  } done{compacting};
  std::uint64_t target = 0;
  std::uint64_t changes_in_table = 0;
  std::uint64_t refused_before = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sources;  // seq, size
  {
    MutexLock lock(mutex);
    if (failed_target && active_seq == *failed_target + 1 && active_size == 0) {
      target = *failed_target;  // its segment after it is still empty: no new one for every retry
    } else {
      target = next_seq++;
      start_segment_locked();  // from here on, every segment before target is immutable
    }
    failed_target = target;
    changes_in_table = change_bytes;
    refused_before = reserved_refused;
    for (const auto& [seq, size] : segment_sizes)
      if (seq < target) sources.emplace_back(seq, size);
  }

  const std::string tmp = path(sf::temporary_name(target));
  const std::string final_path = segment_path(target);
  struct Moved {
    std::string id;
    Loc from;
    Loc to;
  };
  std::deque<Moved> moved;  // small blocks, as every buffer here
  std::uint64_t table_size = 0;
  std::uint64_t out_size = 0;
  // In the current format: a compaction rewrites what older formats
  // wrote (doc/storage.md, "Changing the format").
  const std::string header = sf::encode_header();
  auto write_compacted = [&]() REQUIRES(maintenance) {
    moved.clear();
    io->remove(tmp);
    compacting = 0;
    const std::unique_ptr<WritableFile> file = io->open_append(tmp);
    ChunkedWriter out(*file, compacting);
    out.write(header);
    out.write(sf::encode_snapshot());
    if (snapshot_source) snapshot_source([&](std::string_view records) { out.write(records); });
    table_size = out.size();
    for (const auto& source : sources) {
      const std::uint64_t seq = source.first;  // not a structured binding: C++17 lambdas cannot capture one
      const auto copy_pending = [&](const sf::Record& rec, std::uint64_t offset, std::string_view bytes) {
        std::string_view id;
        if (!sf::decode_event_id(rec, &id)) return;
        const Loc from{seq, offset, static_cast<std::uint32_t>(bytes.size())};
        {
          MutexLock lock(mutex);
          const Loc* loc = pending.find(std::string(id));
          if (!loc || !same_place(*loc, from)) return;
        }
        // Without its change: the table carries the outage's state, and an
        // old change replayed after it could reopen a closed outage.
        Event event;
        if (!sf::decode_event(rec, &event)) return;
        event.change.clear();
        const std::string copy = sf::encode_event(event);
        moved.push_back({event.event_id, from, Loc{target, out.size(), static_cast<std::uint32_t>(copy.size())}});
        out.write(copy);
      };
      sf::scan_file(*io, segment_path(seq), source.second, copy_pending);
    }
    out.flush();
    out_size = out.size();
    file->sync();
    file->close();
  };
  try {
    try {
      write_compacted();
    } catch (const std::system_error& e) {
      // The reserve is for a compaction that gives space back, one that
      // copies few events: given up for one that copies a storm's backlog
      // it would only make room for more outage events.
      if (!is_enospc(e) || !compaction_fits_reserve() || !reserve.release()) throw;
      log.warning("spool: the file system of " + dir + " is full: released the reserve for compaction");
      write_compacted();
    }
    // Every record appended until the table was taken is made durable
    // before the table replaces the segments: the snapshot must never be
    // ahead of the events (doc/storage.md, the ordering rule).
    sync();
    // The table may have an outage closed whose clear is in memory only
    // (the disk full): the segments that still hold it open must stay.
    if (reserved_refused != refused_before || !may_compact()) {
      io->remove(tmp);
      return false;
    }
    io->rename(tmp, final_path);
    io->sync_dir(dir);
  } catch (...) {
    // The sources are untouched and still hold everything.
    try {
      if (!io->remove(tmp)) io->remove(final_path);
    } catch (const std::system_error&) {
    }
    throw;
  }

  // The copies take over from the originals; the sources may go.
  std::size_t lost = 0;
  {
    MutexLock lock(mutex);
    segment_sizes[target] = out_size;
    total_bytes += out_size;
    for (const Moved& m : moved) pending.move(m.id, m.from, m.to);
    // Events whose records no longer read back cannot be copied.
    if (pending.live_in_segments_before(target) > 0) lost = pending.drop_before(target);
    for (const auto& [seq, size] : sources) {
      total_bytes -= segment_sizes[seq];
      segment_sizes.erase(seq);
    }
    snapshot_bytes = table_size;
    change_bytes -= changes_in_table;
    failed_target.reset();
  }
  if (lost > 0)
    log.warning("spool: " + std::to_string(lost) + " undelivered events whose records were damaged since are lost");
  for (const auto& source : sources) {
    obsolete.push_back(source.first);
    dropped_since_trim += source.second;
  }
  dropped_since_trim -= std::min(dropped_since_trim, out_size);
  delete_obsolete();
  lost_change.written = true;
#ifdef __GLIBC__
  // glibc keeps in its arenas what delivered events freed: give it back once a backlog is delivered (not during
  // a storm, whose callbacks would fault the pages in again), on this maintenance thread, never collectd's.
  if (moved.empty() && dropped_since_trim > (1u << 20)) {
    dropped_since_trim = 0;
    malloc_trim(0);
  }
#endif
  log.debug("spool: compacted " + std::to_string(sources.size()) + " segments into " + sf::segment_name(target) +
            " (" + std::to_string(moved.size()) + " pending events, " + std::to_string(out_size) + " bytes)");
  return true;
}

// Oldest first: a segment that stays is replayed
// before the compacted one, which overrides it.
void Spool::State::delete_obsolete() {
  if (obsolete.empty()) return;
  std::size_t done = 0;
  try {
    for (; done < obsolete.size(); ++done) io->remove(segment_path(obsolete[done]));
  } catch (const std::system_error& e) {
    error(maintenance_errors, std::string("cannot delete a replaced segment: ") + e.what() + "; will retry");
  }
  obsolete.erase(obsolete.begin(), obsolete.begin() + static_cast<std::ptrdiff_t>(done));
  if (done > 0) {
    MutexLock lock(mutex);
    dir_dirty = true;
  }
}

}  // namespace xmatters
