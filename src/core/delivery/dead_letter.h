// The dead-letter file (collectd-xmatters(5) DELIVERY): one JSON line per event that can never
// be delivered, in SpoolDir, for an operator to read or send again
// (collectd-xmatters(1) dead-letters, resend). Besides the letters it holds
// marks: "the clear of this outage was delivered since", which the reader
// folds into the letters. The file is bounded (DeadLetterLimit) and may be
// rotated under the plugin (renamed or truncated): it is opened for each
// line, with O_APPEND.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "outage/event.h"
#include "util/mutex.h"

namespace xmatters {

struct DeadLetterEntry {
  const Event& event;
  const std::string& body;    // the payload as it would have been sent
  const std::string& url;     // "" when it was never sent
  int attempts = 0;
  long status = 0;            // the last reply's status; 0 for none
  const std::string& reason;
  const std::string& reply;   // the start of the last reply
};

// One letter as read back.
struct DeadLetter {
  Event event;          // with its body; created to the second; no change
  TimePoint time;       // when it was dead-lettered
  int attempts = 0;
  long status = 0;      // 0: no reply
  std::string reason;   // redacted when written
  std::string url;      // redacted; "" when never sent
  std::string reply;
  // An outage event's letter: the clear of its outage, delivered after the
  // letter was written (its event_id, created and body; no change).
  std::optional<Event> cleared_by;
};

struct DeadLetters {
  std::vector<DeadLetter> letters;  // in the file's order
  std::size_t damaged = 0;          // lines that are neither letter nor mark (torn, edited): skipped
};

// Reads a dead-letter file, folding the marks into the letters; a damaged
// line costs only itself. A missing file has no letters. Throws
// std::system_error when the file exists but cannot be read (a symbolic
// link is not followed).
DeadLetters read_dead_letters(const std::string& path);

// What `resend` sends again of the letters chosen (collectd-xmatters(1)):
// each letter once, in the file's order (so each outage's in order). An
// outage event whose outage has cleared since is skipped, unless
// include_cleared: then it goes, and its clear again after it.
struct ResendPlan {
  std::vector<Event> events;         // to queue, in this order
  std::set<std::string> letters;     // event_ids of the letters that leave the file once queued
  std::vector<DeadLetter> skipped;   // outage events of cleared outages
};
ResendPlan plan_resend(const std::vector<DeadLetter>& chosen, bool include_cleared);

// The outage events among `recovered` (the spool's undelivered events, in
// its order) that a resend skipped but had not taken back out of the spool
// when collectd was killed: each still has its letter in `file`, and its
// outage has cleared since: the letter is marked cleared and that clear is
// not queued again with it (--include-cleared), or a clear of its outage is
// queued before it (it was in flight). They are not to be sent, and their
// letters stay (collectd-xmatters(1) RESEND).
std::set<std::string> skipped_resends(const std::vector<Event>& recovered, const DeadLetters& file);

class DeadLetterFile {
 public:
  static constexpr std::uint64_t kDefaultLimit = std::uint64_t{64} << 20;

  // limit: the bytes the file holds at most (DeadLetterLimit); beyond it the
  // oldest lines are dropped, down to three quarters of it.
  explicit DeadLetterFile(std::string path, std::uint64_t limit = kDefaultLimit)
      : path_(std::move(path)), limit_(limit) {}
  DeadLetterFile(const DeadLetterFile&) = delete;
  DeadLetterFile& operator=(const DeadLetterFile&) = delete;

  const std::string& path() const { return path_; }

  // Reads the file once at start: which outages have letters waiting for a
  // cleared mark. Returns the event_ids of its letters. Never throws but
  // std::bad_alloc: a file that cannot be read has none.
  std::set<std::string> load() EXCLUDES(mutex_);

  struct Written {
    bool ok = false;          // false: the file cannot be written
    std::size_t dropped = 0;  // old lines dropped to stay under the limit
  };
  // Appends the entry as one line, synced before it returns ok: the event
  // leaves the spool only then (collectd-xmatters(5) DELIVERY). Not ok when
  // the line cannot be written or synced. Thread-safe, as every member.
  Written write(const DeadLetterEntry& entry) EXCLUDES(mutex_);

  // The clear of its outage was delivered: a mark for the outage's letters,
  // when it has any waiting for one, synced before it returns (the clear
  // leaves the spool only then). False when the mark could not be written.
  bool mark_cleared(const Event& clear, const std::string& body) EXCLUDES(mutex_);

  // The file's mutex held: no clear is marked and no letter written while
  // it lives, so that `resend` decides which outage events go, queues them
  // and takes their letters out as one step (collectd-xmatters(1) RESEND).
  // Taken with no delivery lock held; a lane's mutex may be taken under it.
  class SCOPED_CAPABILITY MarksHeld {
   public:
    explicit MarksHeld(DeadLetterFile& file) ACQUIRE(file.mutex_) : lock_(file.mutex_) {}
    ~MarksHeld() RELEASE() {}
    MarksHeld(const MarksHeld&) = delete;
    MarksHeld& operator=(const MarksHeld&) = delete;

   private:
    MutexLock lock_;
  };
  // Whether this outage event's outage had its clear marked by this run
  // (the last kRecentClears marked): a letter read before that mark does
  // not have it. Asked with the marks held (MarksHeld).
  bool marked_cleared(const Event& outage_event) const REQUIRES(mutex_);

  // Rewrites the file without the letters of these event_ids: a new file
  // (0600) renamed over it, then synced. False when it cannot be done (the
  // file is then unchanged).
  bool remove(const std::set<std::string>& event_ids) EXCLUDES(mutex_);
  // As above, with the marks held: `resend` takes its letters out in the
  // step that queues their events, so that the new letter of one refused
  // again (same event_id) is written after the rewrite, never dropped by it.
  bool remove(const MarksHeld& held, const std::set<std::string>& event_ids) REQUIRES(mutex_);

 private:
  // durable: fdatasynced before it returns ok.
  Written append_locked(const std::string& line, bool durable = false) REQUIRES(mutex_);
  // The file from offset `from` on (from the first whole line there),
  // without the letters of drop; returns false on an error.
  bool rewrite_locked(std::uint64_t from, const std::set<std::string>* drop, std::size_t* lines_skipped)
      REQUIRES(mutex_);

  const std::string path_;
  const std::uint64_t limit_;
  // A leaf but for MarksHeld, under which a lane's mutex may be taken
  // (doc/design.md, Lock order).
  mutable Mutex mutex_;
  std::set<std::string> waiting_clear_ GUARDED_BY(mutex_);  // "integration\noutage_id" of outage events' letters
  // The outages marked cleared by this run, oldest first (MarksHeld): a
  // bound, since a resend's read is seconds old, not thousands of clears.
  static constexpr std::size_t kRecentClears = 4096;
  std::set<std::string> cleared_ GUARDED_BY(mutex_);
  std::deque<std::string> cleared_order_ GUARDED_BY(mutex_);
};

}  // namespace xmatters
