// The spool: segments of CRC-framed records (spool_format.h) under SpoolDir.
//
// Invariants that make a crash at any instant safe (kill -9: nothing appended
// is lost; power loss: nothing sync()ed is lost; duplicates are possible,
// losses are not):
//  - Records are only ever appended, each with one write(2) under mutex_, to
//    the active segment, whose sequence number is the highest. A failed write
//    is cut back off (or, when that fails too, later records go to a new
//    segment), so a half record can only be a torn tail that replay skips.
//  - An ACK is always in the same segment as its EVENT or a later one, so
//    segments are only deleted as a prefix, oldest first, and only when none
//    of their events is pending: a crash half way through deleting them
//    leaves ACKs without EVENTs (ignored), never EVENTs without their ACKs.
//  - Compaction copies the pending events of all older segments, in order,
//    into a new segment numbered between them and the new active segment,
//    written as a .tmp file, fsynced and renamed into place before any older
//    segment is deleted. Replay lets a later copy of an event replace the
//    earlier one in the order, so any mix of originals and copies that a
//    crash leaves replays to the same events in the same order.
#include "spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "spool_format.h"

namespace xmatters {

namespace sf = spool_format;

namespace {

// Where a record lives.
struct Loc {
  std::uint64_t seq = 0;
  std::uint64_t offset = 0;
  std::uint32_t size = 0;
};

bool same_place(const Loc& a, const Loc& b) { return a.seq == b.seq && a.offset == b.offset; }
bool before(const Loc& a, const Loc& b) { return a.seq != b.seq ? a.seq < b.seq : a.offset < b.offset; }

struct Segment {
  std::uint64_t size = 0;        // bytes in the file, damaged ones included
  std::uint64_t live_bytes = 0;  // of its pending events' records
  std::size_t live_count = 0;
};

std::string mode_string(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Rows of the compaction's index updates and filters are handled in
// batches, so the append mutex is never held for long.
constexpr std::size_t kBatch = 256;
// Compaction writes its output in chunks of about this size.
constexpr std::size_t kWriteChunk = 1u << 20;

}  // namespace

struct Spool::State {
  State(std::string d, Logger& l, std::shared_ptr<SpoolIo> i, const SpoolOptions& o)
      : dir(std::move(d)), log(l), io(i ? std::move(i) : posix_spool_io()), options(o) {}

  const std::string dir;
  Logger& log;
  const std::shared_ptr<SpoolIo> io;
  const SpoolOptions options;

  // Guards the members from here to recovered. Held for one write(2) by
  // append and acknowledge; the rest holds it only for bookkeeping.
  mutable std::mutex mutex;
  std::shared_ptr<WritableFile> active;  // null after a write it could not repair
  std::uint64_t active_seq = 0;
  std::uint64_t active_size = 0;  // whole records only
  std::uint64_t next_seq = 1;
  std::map<std::uint64_t, Segment> segments;  // every segment in use, the active one included
  std::uint64_t total_bytes = 0;             // sum of segments' sizes
  std::uint64_t live_bytes = 0;              // sum of segments' live bytes
  std::unordered_map<std::string, Loc> pending;
  std::vector<std::shared_ptr<WritableFile>> unsynced;  // retired, not fsynced yet
  bool dir_dirty = false;                                // entries changed since the last sync
  bool ack_failing = false;                              // log only the first of a run
  std::vector<Event> recovered;

  // One rotation or compaction at a time; maintain() returns at once while
  // another thread is doing it.
  std::mutex maintenance;
  // Guarded by maintenance; only the first failure of a run is a WARNING.
  bool maintenance_failing = false;
  bool removal_failing = false;

  std::string path(const std::string& name) const { return dir + "/" + name; }
  std::string segment_path(std::uint64_t seq) const { return path(sf::segment_name(seq)); }

  void account(const Loc& loc) {
    Segment& seg = segments[loc.seq];
    seg.live_bytes += loc.size;
    ++seg.live_count;
    live_bytes += loc.size;
  }
  void unaccount(const Loc& loc) {
    auto it = segments.find(loc.seq);
    if (it == segments.end()) return;
    it->second.live_bytes -= loc.size;
    --it->second.live_count;
    live_bytes -= loc.size;
  }

  // A later record for a pending event_id replaces the earlier one (see
  // spool_format.h: compaction's copies).
  void set_pending(std::string id, const Loc& loc) {
    auto [it, inserted] = pending.try_emplace(std::move(id), loc);
    if (!inserted) {
      unaccount(it->second);
      it->second = loc;
    }
    account(loc);
  }

  // Caller holds mutex. I/O under the lock, but only at open, on rotation
  // (every segment_bytes) and after a failed write.
  void start_segment_locked() {
    const std::uint64_t seq = next_seq++;
    std::shared_ptr<WritableFile> file = io->open_append(segment_path(seq));
    retire_active_locked();
    active = std::move(file);
    active_seq = seq;
    active_size = 0;
    segments[seq];
    dir_dirty = true;
  }

  void retire_active_locked() {
    if (active) unsynced.push_back(std::move(active));
    active.reset();
  }

  // Caller holds mutex. Appends one framed record to the active segment.
  Loc write_record_locked(const std::string& record) {
    if (!active) start_segment_locked();
    try {
      active->append(record);
    } catch (const std::system_error&) {
      // Part of the record may be in the file; a record appended after it
      // would be preceded by garbage. Cut it off, or leave it as a torn tail
      // of a segment that takes no more records.
      try {
        active->truncate(active_size);
      } catch (const std::system_error& e) {
        log.warning("spool " + segment_path(active_seq) + ": cannot remove a partly written record (" +
                    e.what() + "); continuing in a new segment");
        retire_active_locked();
      }
      throw;
    }
    const Loc loc{active_seq, active_size, static_cast<std::uint32_t>(record.size())};
    active_size += record.size();
    segments[active_seq].size = active_size;
    total_bytes += record.size();
    return loc;
  }

  void open_dir();
  void replay();
  void maintain();
  void collect_garbage();
  void compact();
  void sync();
};

// --- open and replay -------------------------------------------------------------

void Spool::State::open_dir() {
  if (io->make_dir(dir, 0700)) log.info("spool: created directory " + dir);
  const mode_t mode = io->mode(dir);
  if (!S_ISDIR(mode)) throw std::system_error(ENOTDIR, std::generic_category(), "spool directory " + dir);
  // The files are 0600 whatever the directory's mode, so only their names
  // show; tightening an operator's directory behind their back could break
  // whatever made it looser, so this only warns.
  if ((mode & 077) != 0)
    log.warning("spool directory " + dir + " has mode " + mode_string(mode) +
                "; 0700 is recommended (other users can list it)");
}

void Spool::State::replay() {
  std::vector<std::uint64_t> seqs;
  std::uint64_t highest = 0;
  for (const std::string& name : io->list(dir)) {
    std::uint64_t seq = 0;
    switch (sf::classify_name(name, &seq)) {
      case sf::NameKind::Segment:
        seqs.push_back(seq);
        break;
      case sf::NameKind::Temporary:
        // An unfinished compaction: the segments it was copying from are
        // all still there.
        try {
          io->remove(path(name));
          log.info("spool: removed " + name + ", left by an interrupted compaction");
          dir_dirty = true;
        } catch (const std::system_error& e) {
          log.warning(std::string("spool: ") + e.what());
        }
        break;
      case sf::NameKind::Other:
        continue;  // dead-letter.jsonl, outages-*.json, ...: not ours
    }
    highest = std::max(highest, seq);
  }
  std::sort(seqs.begin(), seqs.end());

  std::unordered_map<std::string, std::pair<Loc, Event>> found;
  for (const std::uint64_t seq : seqs) {
    const std::string file = segment_path(seq);
    const std::string data = io->read_file(file);
    segments[seq].size = data.size();
    total_bytes += data.size();
    std::size_t undecodable = 0;
    const sf::Damage damage =
        sf::scan_records(data, sf::LogKind::Spool, [&](const sf::Record& rec, std::size_t offset, std::size_t size) {
          const Loc loc{seq, offset, static_cast<std::uint32_t>(size)};
          if (rec.type == sf::RecordType::Event) {
            Event event;
            if (!sf::decode_event(rec.payload, &event)) {
              ++undecodable;
              return;
            }
            std::string id = event.event_id;
            set_pending(id, loc);
            found[std::move(id)] = {loc, std::move(event)};
          } else {
            auto it = pending.find(std::string(rec.payload));
            if (it == pending.end()) return;  // its EVENT was in a deleted segment
            unaccount(it->second);
            pending.erase(it);
            found.erase(std::string(rec.payload));
          }
        });
    if (damage.places > 0)
      log.warning("spool " + file + ": skipped " + std::to_string(damage.bytes) +
                  " bytes of damaged or incomplete records in " + std::to_string(damage.places) +
                  (damage.places == 1 ? " place" : " places") +
                  (damage.at_end ? " (the file ends in a torn write)" : "") +
                  "; events in them are lost, the others are recovered");
    if (undecodable > 0)
      log.warning("spool " + file + ": skipped " + std::to_string(undecodable) +
                  " records with a valid checksum that do not decode as events");
  }

  recovered.reserve(found.size());
  std::vector<std::pair<Loc, Event>> ordered;
  ordered.reserve(found.size());
  for (auto& f : found) ordered.push_back(std::move(f.second));
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return before(a.first, b.first); });
  for (auto& o : ordered) recovered.push_back(std::move(o.second));
  if (!recovered.empty())
    log.info("spool " + dir + ": recovered " + std::to_string(recovered.size()) + " undelivered events");

  next_seq = highest + 1;  // a leftover .tmp's number is not reused either
}

SpoolDirLock::SpoolDirLock(const std::string& dir)
    : fd_(::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
  if (fd_.get() < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + dir + "/lock");
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            "SpoolDir " + dir + " is in use by another process (is another collectd running with it?)");
  }
}

Spool::Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io)
    : Spool(dir, log, std::move(io), SpoolOptions{}) {}

Spool::Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io, const SpoolOptions& options)
    : state_(std::make_unique<State>(dir, log, std::move(io), options)) {
  State& s = *state_;
  s.open_dir();
  s.replay();
  {
    // A new segment at every start: the last one may end in a torn record,
    // and records appended after that would have to be found by a resync.
    std::lock_guard<std::mutex> lock(s.mutex);
    s.start_segment_locked();
  }
  std::lock_guard<std::mutex> maintenance(s.maintenance);
  s.collect_garbage();
}

Spool::~Spool() {
  // Closing cleanly (collectd's shutdown) leaves a spool that survives a
  // power loss as well.
  state_->sync();
}

std::vector<Event> Spool::take_recovered() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return std::exchange(state_->recovered, {});
}

// --- the hot path ------------------------------------------------------------------

void Spool::append(const Event& event) {
  if (event.event_id.empty()) throw std::invalid_argument("spool: event without event_id");
  std::string record;
  try {
    record = sf::encode_event(event);
  } catch (const std::length_error&) {
    throw std::system_error(EFBIG, std::generic_category(),
                            "spool: event " + event.event_id + " of integration " + event.integration + " too large");
  }
  std::string id = event.event_id;
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  const Loc loc = s.write_record_locked(record);
  s.set_pending(std::move(id), loc);
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
      std::lock_guard<std::mutex> lock(s.mutex);
      auto it = s.pending.find(event_id);
      if (it == s.pending.end()) return std::nullopt;
      loc = it->second;
    }
    const std::string file = s.segment_path(loc.seq);
    std::string data;
    try {
      data = s.io->read_at(file, loc.offset, loc.size);
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::no_such_file_or_directory) throw;
      std::lock_guard<std::mutex> lock(s.mutex);
      auto it = s.pending.find(event_id);
      if (it != s.pending.end() && same_place(it->second, loc)) throw;  // not moved: gone
      continue;
    }
    sf::Record rec{};
    Event event;
    if (sf::parse_record(data, 0, &rec) != data.size() || rec.type != sf::RecordType::Event ||
        !sf::decode_event(rec.payload, &event) || event.event_id != event_id)
      throw std::runtime_error("spool " + file + ": the record of event " + event_id +
                               " no longer reads back (damaged on disk)");
    return std::move(event.body);
  }
}

void Spool::acknowledge(const std::string& event_id) {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.pending.find(event_id);
    if (it == s.pending.end()) return;
    try {
      // Encoded here, where the id is known to be one that fits a record.
      s.write_record_locked(sf::encode_ack(event_id));
      s.ack_failing = false;
    } catch (const std::system_error& e) {
      // Forgetting it anyway is safe: compaction does not copy it, and until
      // then a restart only sends it again.
      if (!s.ack_failing)
        s.log.warning(std::string("spool: cannot record that an event was delivered (") + e.what() +
                      "); it may be sent again after a restart");
      s.ack_failing = true;
    }
    s.unaccount(it->second);
    s.pending.erase(it);
  }
}

void Spool::maintain() { state_->maintain(); }

std::size_t Spool::pending() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->pending.size();
}

void Spool::sync() { state_->sync(); }

void Spool::State::sync() {
  std::vector<std::shared_ptr<WritableFile>> files;
  bool sync_directory = false;
  {
    std::lock_guard<std::mutex> lock(mutex);
    files = std::exchange(unsynced, {});
    if (active) files.push_back(active);
    sync_directory = std::exchange(dir_dirty, false);
  }
  // fsync runs without the mutex: appends go on meanwhile.
  for (const auto& f : files) {
    try {
      f->sync();
    } catch (const std::system_error& e) {
      log.error(std::string("spool: ") + e.what() + "; undelivered events may not survive a power loss");
    }
  }
  if (!sync_directory) return;
  try {
    io->sync_dir(dir);
  } catch (const std::system_error& e) {
    log.error(std::string("spool: ") + e.what() + "; undelivered events may not survive a power loss");
    std::lock_guard<std::mutex> lock(mutex);
    dir_dirty = true;
  }
}

// --- rotation, garbage collection, compaction -------------------------------------

void Spool::State::maintain() {
  std::unique_lock<std::mutex> guard(maintenance, std::try_to_lock);
  if (!guard.owns_lock()) return;
  try {
    collect_garbage();
    bool do_compact = false;
    bool do_rotate = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      const std::uint64_t limit = options.segment_bytes;
      const std::uint64_t garbage = total_bytes - live_bytes;
      // Copying is worth it once it at least halves the spool; many small
      // segments (one per restart) are merged whatever their content.
      do_compact = (total_bytes >= limit && garbage > live_bytes) ||
                   (segments.size() > options.max_segments && total_bytes < segments.size() * limit / 2 &&
                    garbage > 0);
      // Nothing to copy: starting a new segment lets all the old ones go.
      if (do_compact && live_bytes == 0) {
        do_compact = false;
        do_rotate = true;
      }
      if (!do_compact && active_size >= limit) do_rotate = true;
      // A segment is rotated out only so that it can be deleted once its
      // events are acknowledged: in order, that costs no copying.
      if (do_rotate) start_segment_locked();
    }
    if (do_compact) compact();
    collect_garbage();
    // Retired segments keep a descriptor until they are synced; do not
    // count on the delivery thread to call sync() for that.
    if (do_compact || do_rotate) sync();
    maintenance_failing = false;
  } catch (const std::exception& e) {
    // Retried by the next maintain(); the spool only grows meanwhile.
    const std::string message = std::string("spool: compaction failed: ") + e.what() + "; will retry";
    if (maintenance_failing)
      log.debug(message);
    else
      log.warning(message);
    maintenance_failing = true;
  }
}

void Spool::State::collect_garbage() {
  std::vector<std::pair<std::uint64_t, Segment>> doomed;
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto it = segments.begin();
         it != segments.end() && it->first != active_seq && it->second.live_count == 0;) {
      doomed.emplace_back(*it);
      total_bytes -= it->second.size;
      it = segments.erase(it);
    }
  }
  for (std::size_t i = 0; i < doomed.size(); ++i) {
    try {
      io->remove(segment_path(doomed[i].first));
    } catch (const std::system_error& e) {
      // Oldest first or not at all (see the top of this file): the rest
      // stay, to be retried.
      const std::string message = std::string("spool: cannot delete an old segment: ") + e.what();
      if (removal_failing)
        log.debug(message);
      else
        log.warning(message);
      removal_failing = true;
      std::lock_guard<std::mutex> lock(mutex);
      for (std::size_t j = i; j < doomed.size(); ++j) {
        segments.insert(doomed[j]);
        total_bytes += doomed[j].second.size;
      }
      break;
    }
    removal_failing = false;
  }
  if (!doomed.empty()) {
    std::lock_guard<std::mutex> lock(mutex);
    dir_dirty = true;
  }
}

void Spool::State::compact() {
  std::uint64_t target = 0;
  std::vector<std::uint64_t> sources;
  {
    std::lock_guard<std::mutex> lock(mutex);
    target = next_seq++;
    start_segment_locked();  // from here on, every segment before target is immutable
    for (const auto& [seq, seg] : segments)
      if (seq < target && seg.live_count > 0) sources.push_back(seq);
  }
  const std::string tmp = path(sf::temporary_name(target));
  const std::string final_path = segment_path(target);

  struct Moved {
    std::string id;
    Loc from;
    std::uint64_t to_offset;
  };
  std::vector<Moved> moved;
  std::uint64_t out_size = 0;
  bool renamed = false;
  try {
    io->remove(tmp);
    const std::unique_ptr<WritableFile> out = io->open_append(tmp);
    std::string chunk;
    for (const std::uint64_t seq : sources) {
      const std::string data = io->read_file(segment_path(seq));
      struct Candidate {
        std::string_view id;
        Loc loc;
      };
      std::vector<Candidate> candidates;
      // Damage was reported at open; here it is only stepped over.
      sf::scan_records(data, sf::LogKind::Spool, [&](const sf::Record& rec, std::size_t offset, std::size_t size) {
        std::string_view id;
        if (rec.type == sf::RecordType::Event && sf::decode_event_id(rec.payload, &id))
          candidates.push_back({id, Loc{seq, offset, static_cast<std::uint32_t>(size)}});
      });
      for (std::size_t i = 0; i < candidates.size(); i += kBatch) {
        const std::size_t end = std::min(candidates.size(), i + kBatch);
        std::vector<bool> keep(end - i);
        {
          std::lock_guard<std::mutex> lock(mutex);
          for (std::size_t j = i; j < end; ++j) {
            auto it = pending.find(std::string(candidates[j].id));
            keep[j - i] = it != pending.end() && same_place(it->second, candidates[j].loc);
          }
        }
        for (std::size_t j = i; j < end; ++j) {
          if (!keep[j - i]) continue;
          const Loc& from = candidates[j].loc;
          chunk.append(data, from.offset, from.size);
          moved.push_back({std::string(candidates[j].id), from, out_size});
          out_size += from.size;
        }
        if (chunk.size() >= kWriteChunk) {
          out->append(chunk);
          chunk.clear();
        }
      }
    }
    out->append(chunk);
    out->sync();
    out->close();
    io->rename(tmp, final_path);
    renamed = true;
    io->sync_dir(dir);
  } catch (...) {
    // The sources are untouched; a copy that might be incomplete or not
    // durable must not outlive them.
    try {
      io->remove(renamed ? final_path : tmp);
    } catch (const std::system_error&) {
    }
    throw;
  }

  // The copies take over from the originals, which become garbage.
  {
    std::lock_guard<std::mutex> lock(mutex);
    segments[target].size = out_size;
    total_bytes += out_size;
  }
  for (std::size_t i = 0; i < moved.size(); i += kBatch) {
    std::lock_guard<std::mutex> lock(mutex);
    for (std::size_t j = i; j < std::min(moved.size(), i + kBatch); ++j) {
      auto it = pending.find(moved[j].id);
      if (it == pending.end() || !same_place(it->second, moved[j].from)) continue;  // acknowledged meanwhile
      unaccount(it->second);
      it->second = Loc{target, moved[j].to_offset, moved[j].from.size};
      account(it->second);
    }
  }
  log.debug("spool: compacted " + std::to_string(sources.size()) + " segments into " + sf::segment_name(target) +
            " (" + std::to_string(moved.size()) + " pending events, " + std::to_string(out_size) + " bytes)");
}

}  // namespace xmatters
