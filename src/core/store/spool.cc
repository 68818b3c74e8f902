// The spool: segments of CRC-framed records under SpoolDir. What is on disk
// and why a crash or power loss at any instant is safe: doc/storage.md.
//
// Here: open and replay, the segments' writes, the hot path, group commit.
// Maintenance and compaction: spool_compact.cc; the index of pending
// records: pending_index.h; the reserve for a full disk: spool_reserve.h.
#include "store/spool.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "store/spool_files.h"

namespace xmatters {

namespace sf = spool_format;

// --- the segments' writes ----------------------------------------------------------

void Spool::Files::start_segment_locked() {
  const std::uint64_t seq = segments.next_seq++;
  std::shared_ptr<WritableFile> file = io->open_append(segment_path(seq));
  retire_active_locked();
  segments.active = std::move(file);
  segments.active_seq = seq;
  segments.active_size = 0;
  segments.sizes[seq] = 0;
  segments.dir_dirty = true;
}

void Spool::Files::retire_active_locked() {
  if (segments.active) segments.unsynced.push_back(std::move(segments.active));
  segments.active.reset();
}

SpoolLoc Spool::Files::write_record_locked(const std::string& record, bool may_use_reserve) {
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

SpoolLoc Spool::Files::try_write_locked(const std::string& record) {
  if (!segments.active) start_segment_locked();
  // A segment's first write carries its header (doc/storage.md,
  // Records): in one write(2) with the record, so that a segment with
  // records always has it, and a full disk at start costs nothing more.
  std::string with_header;
  if (segments.active_size == 0) with_header = sf::encode_header() + record;
  const std::string& data = segments.active_size == 0 ? with_header : record;
  try {
    segments.active->append(data);
  } catch (const std::system_error&) {
    // Part of the record may be in the file; a record appended after it
    // would be preceded by garbage. Cut it off, or leave it as a torn tail
    // of a segment that takes no more records.
    try {
      segments.active->truncate(segments.active_size);
    } catch (const std::system_error&) {
      retire_active_locked();
    }
    throw;
  }
  const SpoolLoc loc{segments.active_seq, segments.active_size + data.size() - record.size(), static_cast<std::uint32_t>(record.size())};
  segments.active_size += data.size();
  segments.sizes[segments.active_seq] = segments.active_size;
  segments.total_bytes += data.size();
  return loc;
}

// --- open and replay -------------------------------------------------------------

// The plugin's SpoolDir was checked (and warned about) with the
// configuration (spool_dir.h); this is for the spool used alone.
void Spool::Files::open_dir() {
  if (io->make_dir(dir, 0700)) log.info("spool: created directory " + dir);
  if (!S_ISDIR(io->mode(dir))) throw std::system_error(ENOTDIR, std::generic_category(), "spool directory " + dir);
}

void Spool::Files::replay() {
  SpoolContents found = replay_spool(*io, dir, true);
  for (const std::string& name : found.legacy_files)
    log.warning("spool: " + path(name) +
                " was left by an earlier version, which kept outages there; it is not read (the outages "
                "now live in the spool's segments) and may be removed");
  // Unfinished compactions: the segments they were replacing are all still there.
  for (const std::string& name : found.temporaries) {
    try {
      io->remove(path(name));
      segments.dir_dirty = true;
    } catch (const std::system_error& e) {
      log.warning(std::string("spool: ") + e.what());
    }
  }
  for (const auto& [seq, size] : found.segments) {
    segments.sizes[seq] = size;
    segments.total_bytes += size;
    // Records written before a crash may not be on disk yet: they are
    // synced with the next sync(), before anything recovered from them is
    // sent.
    segments.unsynced.push_back(io->open_append(segment_path(seq)));
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
  segments.next_seq = found.highest_seq + 1;  // a leftover .tmp's number is not reused either
}

Spool::Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io, const SpoolOptions& options)
    : files_(std::make_unique<Files>(dir, log, std::move(io), options)) {
  Files& s = *files_;
  s.open_dir();
  {
    MutexLock lock(s.mutex);
    s.replay();
    for (const std::string& change : s.recovered_changes) s.change_bytes += change.size();
  }
  bool reserved;
  {
    MutexLock lock(s.maintenance.mutex);
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
  files_->sync();
}

std::vector<Event> Spool::take_recovered() {
  MutexLock lock(files_->mutex);
  return std::exchange(files_->recovered, {});
}

std::vector<std::string> Spool::take_recovered_changes() {
  MutexLock lock(files_->mutex);
  return std::exchange(files_->recovered_changes, {});
}

void Spool::set_snapshot_source(SnapshotSource source) {
  MutexLock lock(files_->maintenance.mutex);
  files_->maintenance.snapshot_source = std::move(source);
}

// --- the hot path ------------------------------------------------------------------

void Spool::append(const Event& event, Room room) {
  if (event.event_id.empty()) throw std::invalid_argument("spool: event without event_id");
  Files& s = *files_;
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
      !s.reserve.admits(s.reserve_needed_locked() + Files::kAckBytes + event.change.size(), record.size(),
                        s.compacting.load()))
    throw std::system_error(ENOSPC, std::generic_category(), "spool " + s.dir + " has no room for new outages");
  SpoolLoc loc;
  try {
    loc = s.write_record_locked(record, may_use_reserve);
  } catch (const std::system_error& e) {
    if (may_use_reserve)
      ++s.reserved_refused;
    else if (Files::is_enospc(e))
      s.reserve.refuse();
    throw;
  }
  s.pending.set(std::move(id), loc);
  s.change_bytes += event.change.size();
}

void Spool::append_change(const std::string& record) {
  Files& s = *files_;
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
  Files& s = *files_;
  MutexLock lock(s.mutex);
  const SpoolLoc loc = s.write_record_locked(record, true);
  s.change_bytes += record.size();
  while (!before(loc, s.commit.durable)) {
    if (!s.commit.syncing) {
      if (!s.lead_sync()) throw std::system_error(EIO, std::generic_category(), "spool " + s.dir + ": cannot sync");
      continue;
    }
    s.wait_for_sync(lock);
  }
}

std::optional<std::string> Spool::read_body(const std::string& event_id) {
  Files& s = *files_;
  // Compaction may move the record, and delete its old segment, between the
  // look-up and the read. Segment numbers are never reused, so the read
  // either finds the record where it was looked up or fails with ENOENT;
  // the record is then looked up again at its new place.
  for (;;) {
    SpoolLoc loc;
    {
      MutexLock lock(s.mutex);
      const SpoolLoc* found = s.pending.find(event_id);
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
      const SpoolLoc* found = s.pending.find(event_id);
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
  Files& s = *files_;
  MutexLock lock(s.mutex);
  for (;;) {
    const SpoolLoc* loc = s.pending.find(event_id);
    if (!loc || before(*loc, s.commit.durable)) return true;
    if (!s.commit.syncing) {
      // No sync runs: this caller runs one, for every record appended so far.
      if (!s.lead_sync()) return false;
      continue;
    }
    // The sync running may have begun before this record was appended: wait
    // for it; then either it covered the record, or one of the callers
    // waiting runs the next one for all of them.
    const std::uint64_t failures = s.commit.failures;
    s.wait_for_sync(lock);
    if (s.commit.failures != failures) {
      loc = s.pending.find(event_id);
      return !loc || before(*loc, s.commit.durable);  // the disk fails: not retried here
    }
  }
}

void Spool::acknowledge(const std::string& event_id) {
  Files& s = *files_;
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

bool Spool::maintain(const std::function<bool()>& may_compact) { return files_->maintain(may_compact); }

std::size_t Spool::pending() const {
  MutexLock lock(files_->mutex);
  return files_->pending.size();
}

void Spool::sync() { files_->sync(); }

void Spool::Files::sync() {
  MutexLock lock(mutex);
  // A sync running may have begun before the last append: wait for it, then
  // sync whatever it did not cover.
  wait_for_sync(lock);
  if (segments.unsynced.empty() && !segments.dir_dirty && !before(commit.durable, SpoolLoc{segments.active_seq, segments.active_size, 0})) return;  // nothing new
  lead_sync();
}

// Caller holds mutex (through a MutexLock, which this releases and takes
// again) and no sync runs. Syncs every record appended until now, the
// segments retired since the last sync and the directory; the fdatasyncs
// run without the mutex, so appends go on meanwhile, and callers that need
// a record appended meanwhile wait for this sync to end and then share the
// next one. False when it failed (logged).
bool Spool::Files::lead_sync() {
  commit.syncing = true;
  const SpoolLoc upto{segments.active_seq, segments.active_size, 0};
  std::vector<std::shared_ptr<WritableFile>> files = std::exchange(segments.unsynced, {});
  if (segments.active) files.push_back(segments.active);
  const bool sync_directory = std::exchange(segments.dir_dirty, false);
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
  commit.syncing = false;
  if (ok) {
    if (before(commit.durable, upto)) commit.durable = upto;
  } else {
    // Tried again by the next sync.
    ++commit.failures;
    if (sync_directory) segments.dir_dirty = true;
    for (auto& f : files)
      if (f != segments.active) segments.unsynced.push_back(std::move(f));
  }
  sync_done.notify_all();
  return ok;
}

}  // namespace xmatters
