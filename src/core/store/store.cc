#include "store/store.h"

#include <atomic>
#include <condition_variable>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "util/background.h"
#include "util/mutex.h"
#include "util/throttle.h"

namespace xmatters {

namespace {

using Steady = std::chrono::steady_clock;

constexpr auto kDropLogEvery = std::chrono::seconds(10);

// The paging rule for a full disk (doc/design.md, The durability rule): an
// outage event leaves the reserve for what must follow it; a clear may use
// it (its outage was paged: it must go).
Spool::Room room_for(const Event& event) {
  return event.type == EventType::Clear ? Spool::Room::Reserve : Spool::Room::Free;
}

// Events refused by QueueLimit: the first in an ERROR at once, then one
// ERROR with the count at most every kDropLogEvery.
class Refusals {
 public:
  Refusals(std::size_t limit, Logger& log) : limit_(limit), log_(log) {}

  void refused(const Event& event) EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    ++since_log_;
    const auto now = Steady::now();
    if (logged_ && now - last_log_ < kDropLogEvery) return;
    log_.error("integration " + event.integration + ": queue full (QueueLimit " + std::to_string(limit_) +
               " undelivered events): refused the outage event of outage " + event.outage_id + "; " +
               std::to_string(since_log_) + " outage event(s) refused" + (logged_ ? " since the last report" : ""));
    logged_ = true;
    last_log_ = now;
    since_log_ = 0;
  }

  // The refusals not yet in an ERROR, once kDropLogEvery has passed since
  // the last (or at once, at stop).
  void report(bool now_or_never) EXCLUDES(mutex_) {
    MutexLock lock(mutex_);
    const auto now = Steady::now();
    if (since_log_ == 0 || (!now_or_never && now - last_log_ < kDropLogEvery)) return;
    log_.error("queue full (QueueLimit " + std::to_string(limit_) + " undelivered events): " +
               std::to_string(since_log_) + " more outage event(s) refused since the last report");
    last_log_ = now;
    since_log_ = 0;
  }

 private:
  const std::size_t limit_;
  Logger& log_;
  Mutex mutex_;
  bool logged_ GUARDED_BY(mutex_) = false;
  Steady::time_point last_log_ GUARDED_BY(mutex_){};
  std::uint64_t since_log_ GUARDED_BY(mutex_) = 0;
};

}  // namespace

struct Store::Custody {
  Custody(const std::string& dir, std::size_t limit, Logger& l, StoreOptions o)
      : log(l), options(o), queue_limit(limit), spool(std::make_unique<Spool>(dir, l)), refusals(limit, l) {}

  Logger& log;
  const StoreOptions options;
  const std::size_t queue_limit;
  const std::unique_ptr<Spool> spool;
  std::vector<std::string> recovered_changes;  // written once, at open

  std::atomic<std::size_t> queued{0};  // QueueLimit's count, across integrations
  Refusals refusals;
  Throttle no_room_errors;
  Throttle held_errors;

  // Clears the spool could not take (a full or failing disk), with their
  // bodies, by event_id: sent from there, and spooled by the sync thread
  // once it can. No compaction meanwhile: the records that keep their
  // outage open on disk must stay until the clear is written. Taken before
  // the spool's mutex (acknowledge), never after.
  Mutex held_mutex;
  std::unordered_map<std::string, Event> held GUARDED_BY(held_mutex);
  std::uint64_t clears_held GUARDED_BY(held_mutex) = 0;  // ever held: a compaction sees one held while it ran

  // The sync thread. It sleeps until the spool changes: only the first
  // change since its last tick wakes it (appended, acknowledged), so
  // collectd's thread pays for a wake-up at most once per sync_interval.
  std::atomic<bool> appended{false};
  std::atomic<bool> acknowledged{false};
  std::atomic<bool> stopping{false};
  Mutex sync_mutex;
  std::condition_variable sync_wake;
  bool tick_due GUARDED_BY(sync_mutex) = false;
  bool maintenance_due GUARDED_BY(sync_mutex) = false;  // the last maintain() left work
  Mutex control;  // start / stop
  bool started GUARDED_BY(control) = false;
  bool stopped GUARDED_BY(control) = false;
  std::thread sync_thread;

  void note_change(std::atomic<bool>& flag) EXCLUDES(sync_mutex) {
    if (flag.exchange(true)) return;
    {
      MutexLock lock(sync_mutex);
      tick_due = true;
    }
    sync_wake.notify_one();
  }
  void sync_loop() EXCLUDES(sync_mutex);
  // One tick: held clears spooled, then the spool's maintenance. Whether it
  // has more to do.
  bool maintain() EXCLUDES(held_mutex);
  void spool_held() EXCLUDES(held_mutex);
};

Store::Store(const std::string& dir, std::size_t queue_limit, Logger& log, StoreOptions options)
    : c_(std::make_unique<Custody>(dir, queue_limit, log, options)) {
  c_->recovered_changes = c_->spool->take_recovered_changes();
}

Store::~Store() {
  try {
    stop();
  } catch (const std::exception& e) {
    c_->log.error(std::string("stopping the spool's maintenance: ") + e.what());
  }
}

std::vector<Event> Store::take_recovered() {
  std::vector<Event> events = c_->spool->take_recovered();
  std::size_t tests = 0;
  std::vector<Event> out;
  out.reserve(events.size());
  for (Event& event : events) {
    if (event.test) {
      // A test cut short by a crash: its command has its answer already.
      c_->spool->acknowledge(event.event_id);
      ++tests;
      continue;
    }
    out.push_back(std::move(event));
  }
  if (tests > 0)
    c_->log.info(std::to_string(tests) +
                 " test event(s) of collectd-xmatters test left by the last run dropped (a test is sent once)");
  return out;
}

const std::vector<std::string>& Store::recovered_changes() const { return c_->recovered_changes; }

void Store::set_snapshot_source(SnapshotSource source) { c_->spool->set_snapshot_source(std::move(source)); }

void Store::start() {
  Custody& c = *c_;
  MutexLock lock(c.control);
  if (c.started || c.stopped) return;
  c.started = true;
  c.sync_thread = std::thread([&c] { c.sync_loop(); });
}

void Store::stop() {
  Custody& c = *c_;
  MutexLock lock(c.control);
  if (c.stopped) return;
  c.stopped = true;
  c.stopping = true;
  {
    // Under the mutex, so that the thread cannot miss it between its check
    // and its wait.
    MutexLock l(c.sync_mutex);
    c.sync_wake.notify_all();
  }
  if (c.sync_thread.joinable()) c.sync_thread.join();
  c.spool_held();
  c.spool->sync();
  c.refusals.report(true);
}

// Asleep until the spool changes (or while events wait, for maintenance's
// retries); then one tick per sync_interval: the appends and
// acknowledgements of that interval flushed and compacted together.
void Store::Custody::sync_loop() {
  run_in_background("xm-sync");
  MutexLock lock(sync_mutex);
  while (!stopping) {
    while (!stopping && !tick_due && !maintenance_due && queued == 0) lock.wait(sync_wake);
    const auto tick = Steady::now() + options.sync_interval;
    while (!stopping && lock.wait_until(sync_wake, tick) != std::cv_status::timeout) {
    }
    if (stopping) break;
    tick_due = false;
    acknowledged = false;
    appended = false;
    lock.unlock();
    // Here rather than on a delivery thread: copying a large backlog must
    // not hold up a delivery, nor stop() waiting for it.
    bool more = true;
    try {
      more = maintain();
    } catch (const std::exception& ex) {
      log.error(std::string("spool maintenance: ") + ex.what());
    }
    refusals.report(false);
    lock.lock();
    maintenance_due = more;
  }
}

bool Store::Custody::maintain() {
  spool_held();
  std::uint64_t held_before;
  {
    MutexLock lock(held_mutex);
    held_before = clears_held;
  }
  // A compaction while a clear is held, or one held while it ran, would
  // drop the records that keep its outage open on disk: asked again just
  // before it would take effect. maintain() also syncs.
  return spool->maintain([this, held_before] {
    MutexLock lock(held_mutex);
    return held.empty() && clears_held == held_before;
  });
}

void Store::Custody::spool_held() {
  MutexLock lock(held_mutex);
  for (auto it = held.begin(); it != held.end();) {
    try {
      spool->append(it->second, Spool::Room::Reserve);
    } catch (const std::system_error&) {
      return;  // tried again on the next tick
    }
    it = held.erase(it);
  }
}

bool Store::take_room(const Event& event) {
  std::size_t n = c_->queued.load();
  do {
    if (n >= c_->queue_limit) {
      c_->refusals.refused(event);
      return false;
    }
  } while (!c_->queued.compare_exchange_weak(n, n + 1));
  return true;
}

void Store::add(std::size_t n) { c_->queued += n; }
void Store::release(std::size_t n) { c_->queued -= n; }
std::size_t Store::queued() const { return c_->queued; }

Store::Accepted Store::accept(const Event& event) {
  Custody& c = *c_;
  try {
    c.spool->append(event, room_for(event));
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::file_too_large) throw;
    if (event.type == EventType::Outage) {
      // The maintenance tick is what brings the room back.
      c.note_change(c.appended);
      if (const auto held_back = c.no_room_errors.admit())
        c.log.error("integration " + event.integration + ": the spool cannot take new outage events (" + e.what() +
                    "); " + std::to_string(*held_back + 1) + " outage event(s) refused" +
                    (*held_back > 0 ? " since the last report" : "") +
                    "; paging resumes by itself when there is room");
      return Accepted::NoRoom;
    }
    // A clear is never lost: its outage closes, and it is sent from memory
    // until the spool can take it (a crash meanwhile: the outage is still
    // open in the spool, and collectd's OKAY after the restart clears it).
    if (const auto held_back = c.held_errors.admit())
      c.log.error("integration " + event.integration + ": the spool cannot take a clear (" + e.what() +
                  "); held in memory and sent from there" +
                  (*held_back > 0 ? " (and " + std::to_string(*held_back) + " more since the last report)" : ""));
    {
      MutexLock lock(c.held_mutex);
      ++c.clears_held;
      c.held.emplace(event.event_id, event);
    }
    c.note_change(c.appended);
    return Accepted::Held;
  }
  c.note_change(c.appended);
  return Accepted::Spooled;
}

void Store::append(const Event& event) {
  c_->spool->append(event, room_for(event));
  c_->note_change(c_->appended);
}

void Store::record_change(const std::string& record) { c_->spool->append_change(record); }

void Store::record_durably(const std::string& record) { c_->spool->append_durable(record); }

std::optional<std::string> Store::body(const std::string& event_id, bool durable) {
  Custody& c = *c_;
  {
    MutexLock lock(c.held_mutex);
    const auto found = c.held.find(event_id);
    if (found != c.held.end()) return found->second.body;
  }
  std::optional<std::string> body = c.spool->read_body(event_id);
  // Sent only once a power loss cannot take it back (doc/storage.md).
  if (body && durable) c.spool->make_durable(event_id);
  return body;
}

bool Store::make_durable(const std::string& event_id) { return c_->spool->make_durable(event_id); }

void Store::acknowledge(const std::string& event_id) {
  Custody& c = *c_;
  {
    // Under held_mutex, so that spool_held() cannot spool it after this.
    MutexLock lock(c.held_mutex);
    c.held.erase(event_id);
    c.spool->acknowledge(event_id);
  }
  c.note_change(c.acknowledged);
}

}  // namespace xmatters
