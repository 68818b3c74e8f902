// Reading a SpoolDir as recovery does (doc/storage.md, Recovery): the one
// parser of the log. The Spool replays through it at open; read_spool()
// gives the same to a reader that must not change anything (the operator
// command): it writes, creates, locks and removes nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "outage/event.h"
#include "store/spool_format.h"
#include "store/spool_io.h"

namespace xmatters {

// Where a record lives: segment number, offset, size.
struct SpoolLoc {
  std::uint64_t seq = 0;
  std::uint64_t offset = 0;
  std::uint32_t size = 0;
};
// Log order: a's record comes before b's.
inline bool before(const SpoolLoc& a, const SpoolLoc& b) {
  return a.seq != b.seq ? a.seq < b.seq : a.offset < b.offset;
}
// The same record (its size aside).
inline bool same_place(const SpoolLoc& a, const SpoolLoc& b) { return a.seq == b.seq && a.offset == b.offset; }

// What one segment's scan found wrong.
struct SpoolDamage {
  std::string file;              // its name in SpoolDir
  std::uint64_t bytes = 0;       // skipped: no valid record there
  std::size_t places = 0;        // runs of skipped bytes
  bool torn_tail = false;        // the last run reaches the end of the file
  std::size_t undecodable = 0;   // records with a valid CRC whose payload does not decode
};

struct SpoolEvent {
  Event event;   // body empty unless asked for; change always empty
  SpoolLoc loc;  // of the record recovery found last for it
};

// A SpoolDir as recovery sees it.
struct SpoolContents {
  // The newest format among the segments (doc/storage.md, "Changing the
  // format"); 0 when there is no segment.
  std::uint32_t format_version = 0;
  std::map<std::uint64_t, std::uint64_t> segments;  // number -> bytes read, in replay order
  std::vector<std::string> temporaries;             // compactions' leftovers (.tmp), which recovery removes
  std::vector<std::string> legacy_files;            // outages-*.json left by an earlier version: not read
  std::uint64_t highest_seq = 0;                    // of the segments and the temporaries
  // The undelivered events, in the order they are sent after a start.
  std::vector<SpoolEvent> pending;
  // The outage changes in log order from the last SNAPSHOT on, as
  // Spool::take_recovered_changes gives them: each one or two framed
  // OUTAGE_SET / OUTAGE_CLOSE records (an event's change field, or a record
  // of its own), or one SILENCE record (silence.h: the tracker skips it).
  // Applied in order, the last one of a key (or silence id) wins.
  std::vector<std::string> changes;
  std::vector<SpoolDamage> damage;  // segments with damage only
};

// A SpoolDir written in a format newer than this code reads.
class NewerSpoolFormat : public std::runtime_error {
 public:
  NewerSpoolFormat(const std::string& dir, std::uint32_t found, std::uint32_t known);
  std::uint32_t found, known;
};

// Reads dir's segments through io without changing anything. bodies:
// keep the events' bodies. Throws NewerSpoolFormat (before reading any
// record) and std::system_error when a file cannot be read.
SpoolContents replay_spool(SpoolIo& io, const std::string& dir, bool bodies);

// For a reader beside a running plugin (the operator command): the real
// file system, and a segment that a compaction deletes while it is read
// makes it read again from the start (a few times, then the error). Opens
// files read-only; writes, creates, locks and removes nothing.
SpoolContents read_spool(const std::string& dir, bool bodies = false);

// The format of the newest segment in dir (0: none), from the segments'
// first records only: the check made while the configuration is read.
// Throws std::system_error when dir cannot be listed.
std::uint32_t spool_format_version(SpoolIo& io, const std::string& dir);

namespace spool_format {

// Reads and writes go in chunks of at most this size, well under glibc's
// default mmap threshold (128 KiB): freeing a larger block raises that
// threshold, and the trim threshold to twice it, and each thread's arena
// then keeps that much freed memory resident (doc/storage.md).
inline constexpr std::size_t kChunk = 64u << 10;

// scan() over the first size bytes of a file, read in windows of kChunk
// bytes (a larger record in one read of its own size).
template <typename Fn>
Damage scan_file(SpoolIo& io, const std::string& path, std::uint64_t size, Fn&& fn) {
  std::string window;
  std::uint64_t window_at = 0;
  const auto view = [&](std::uint64_t at, std::size_t n) {
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(n, size - at));
    if (at < window_at || at + want > window_at + window.size()) {
      window = io.read_at(path, at, static_cast<std::size_t>(std::min<std::uint64_t>(std::max(want, kChunk), size - at)));
      window_at = at;
    }
    return std::string_view(window).substr(static_cast<std::size_t>(at - window_at));
  };
  return scan(size, view, std::forward<Fn>(fn));
}

}  // namespace spool_format
}  // namespace xmatters
