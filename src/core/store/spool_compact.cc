// The spool's maintenance (spool.h, Spool::maintain): compaction, the
// reserve kept to what is needed, replaced segments deleted. What a
// compaction writes and in which order: doc/storage.md.
#include <algorithm>
#include <deque>
#include <string_view>
#include <utility>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "store/spool_files.h"

namespace xmatters {

namespace sf = spool_format;

namespace {

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

}  // namespace

std::uint64_t Spool::Files::compaction_bytes() {
  MutexLock lock(mutex);
  return reserve_needed_locked() + pending.bytes();
}

bool Spool::Files::compaction_fits() {
  const std::uint64_t bytes = compaction_bytes();
  if (bytes <= reserve.size()) return true;
  try {
    return bytes <= io->free_bytes(dir);
  } catch (const std::system_error&) {
    return true;  // tried; its failure is reported
  }
}

bool Spool::Files::restore_reserve() {
  std::uint64_t needed;
  {
    MutexLock lock(mutex);
    needed = reserve_needed_locked();
  }
  return reserve.restore(needed);
}

bool Spool::Files::maintain(const std::function<bool()>& may_compact) {
  MutexLock guard(maintenance.mutex);
  bool more = false;
  try {
    delete_obsolete();
    if (compaction_wanted()) {
      if (!may_compact() || Steady::now() - maintenance.last_compaction < options.compaction_interval || !compaction_fits() ||
          !compact(may_compact))
        more = true;
    }
  } catch (const std::exception& e) {
    // Retried by the next maintain(); the spool only grows meanwhile.
    error(maintenance.errors, std::string("compaction failed: ") + e.what() + "; will retry");
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
  return more || !maintenance.obsolete.empty();
}

bool Spool::Files::compaction_wanted() {
  if (change_lost) return true;
  MutexLock lock(mutex);
  // Bytes that a compaction would drop: acknowledged events, their
  // acknowledgements, and outage changes the table has overtaken. Worth it
  // once they outweigh the events it copies, and are not a trifle beside
  // the table it rewrites (so delivered events' space comes back within a
  // tick or two, and a large table is not rewritten for a few bytes).
  const std::uint64_t keep = pending.bytes() + snapshot_bytes;
  const std::uint64_t drop = segments.total_bytes > keep ? segments.total_bytes - keep : 0;
  return (drop > pending.bytes() && 4 * drop > snapshot_bytes) ||
         (segments.active_size >= options.segment_bytes && drop > 0) ||
         segments.sizes.size() > 2;  // more than the compacted and the active: a start left some
}

// The order of the steps is the ordering rule of
// doc/storage.md. False when it was put off: a clear could not be written
// meanwhile, or may_compact() no longer allows it.
bool Spool::Files::compact(const std::function<bool()>& may_compact) {
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
  maintenance.last_compaction = Steady::now();
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
    if (maintenance.failed_target && segments.active_seq == *maintenance.failed_target + 1 && segments.active_size == 0) {
      target = *maintenance.failed_target;  // its segment after it is still empty: no new one for every retry
    } else {
      target = segments.next_seq++;
      start_segment_locked();  // from here on, every segment before target is immutable
    }
    maintenance.failed_target = target;
    changes_in_table = change_bytes;
    refused_before = reserved_refused;
    for (const auto& [seq, size] : segments.sizes)
      if (seq < target) sources.emplace_back(seq, size);
  }

  const std::string tmp = path(sf::temporary_name(target));
  const std::string final_path = segment_path(target);
  struct Moved {
    std::string id;
    SpoolLoc from;
    SpoolLoc to;
  };
  std::deque<Moved> moved;  // small blocks, as every buffer here
  std::uint64_t table_size = 0;
  std::uint64_t out_size = 0;
  // In the current format: a compaction rewrites what older formats
  // wrote (doc/storage.md, "Changing the format").
  const std::string header = sf::encode_header();
  auto write_compacted = [&]() REQUIRES(maintenance.mutex) {
    moved.clear();
    io->remove(tmp);
    compacting = 0;
    const std::unique_ptr<WritableFile> file = io->open_append(tmp);
    ChunkedWriter out(*file, compacting);
    out.write(header);
    out.write(sf::encode_snapshot());
    if (maintenance.snapshot_source) maintenance.snapshot_source([&](std::string_view records) { out.write(records); });
    table_size = out.size();
    for (const auto& source : sources) {
      const std::uint64_t seq = source.first;  // not a structured binding: C++17 lambdas cannot capture one
      const auto copy_pending = [&](const sf::Record& rec, std::uint64_t offset, std::string_view bytes) {
        std::string_view id;
        if (!sf::decode_event_id(rec, &id)) return;
        const SpoolLoc from{seq, offset, static_cast<std::uint32_t>(bytes.size())};
        {
          MutexLock lock(mutex);
          const SpoolLoc* loc = pending.find(std::string(id));
          if (!loc || !same_place(*loc, from)) return;
        }
        // Without its change: the table carries the outage's state, and an
        // old change replayed after it could reopen a closed outage.
        Event event;
        if (!sf::decode_event(rec, &event)) return;
        event.change.clear();
        const std::string copy = sf::encode_event(event);
        moved.push_back({event.event_id, from, SpoolLoc{target, out.size(), static_cast<std::uint32_t>(copy.size())}});
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
      if (!is_enospc(e) || compaction_bytes() > reserve.size() || !reserve.release()) throw;
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
    segments.sizes[target] = out_size;
    segments.total_bytes += out_size;
    for (const Moved& m : moved) pending.move(m.id, m.from, m.to);
    // Events whose records no longer read back cannot be copied.
    if (pending.live_in_segments_before(target) > 0) lost = pending.drop_before(target);
    for (const auto& [seq, size] : sources) {
      segments.total_bytes -= segments.sizes[seq];
      segments.sizes.erase(seq);
    }
    snapshot_bytes = table_size;
    change_bytes -= changes_in_table;
    maintenance.failed_target.reset();
  }
  if (lost > 0)
    log.warning("spool: " + std::to_string(lost) + " undelivered events whose records were damaged since are lost");
  for (const auto& source : sources) {
    maintenance.obsolete.push_back(source.first);
    maintenance.dropped_since_trim += source.second;
  }
  maintenance.dropped_since_trim -= std::min(maintenance.dropped_since_trim, out_size);
  delete_obsolete();
  lost_change.written = true;
#ifdef __GLIBC__
  // glibc keeps in its arenas what delivered events freed: give it back once a backlog is delivered (not during
  // a storm, whose callbacks would fault the pages in again), on this maintenance thread, never collectd's.
  if (moved.empty() && maintenance.dropped_since_trim > (1u << 20)) {
    maintenance.dropped_since_trim = 0;
    malloc_trim(0);
  }
#endif
  log.debug("spool: compacted " + std::to_string(sources.size()) + " segments into " + sf::segment_name(target) +
            " (" + std::to_string(moved.size()) + " pending events, " + std::to_string(out_size) + " bytes)");
  return true;
}

// Oldest first: a segment that stays is replayed
// before the compacted one, which overrides it.
void Spool::Files::delete_obsolete() {
  if (maintenance.obsolete.empty()) return;
  std::size_t done = 0;
  try {
    for (; done < maintenance.obsolete.size(); ++done) io->remove(segment_path(maintenance.obsolete[done]));
  } catch (const std::system_error& e) {
    error(maintenance.errors, std::string("cannot delete a replaced segment: ") + e.what() + "; will retry");
  }
  maintenance.obsolete.erase(maintenance.obsolete.begin(), maintenance.obsolete.begin() + static_cast<std::ptrdiff_t>(done));
  if (done > 0) {
    MutexLock lock(mutex);
    segments.dir_dirty = true;
  }
}

}  // namespace xmatters
