// Custody of undelivered events (doc/design.md, The durability rule): the
// spool, the clears held in memory while the disk cannot take them and the
// rule about them, the QueueLimit count, recovery, and the xm-sync thread
// that syncs, compacts and spools held clears. Delivery sends what the store
// keeps; the spool below it decides nothing (collectd-xmatters(5) DELIVERY).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outage/event.h"
#include "util/log.h"
#include "store/spool.h"

namespace xmatters {

struct StoreOptions {
  // How often appended events are flushed to stable storage (and the spool
  // compacted, clears held in memory spooled), while there is something to
  // flush, compact or retry.
  std::chrono::milliseconds sync_interval{1000};
};

class Store {
 public:
  // Opens the spool in dir and replays it. queue_limit: QueueLimit, the most
  // undelivered events. Throws std::system_error when the spool cannot be
  // opened.
  Store(const std::string& dir, std::size_t queue_limit, Logger& log, StoreOptions options = {});
  ~Store();  // stop()
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- recovery (before start) ---
  // The undelivered events found at open, oldest first; once. Test events
  // a crash cut short are left out and leave the spool (a test is sent
  // once): their count is logged.
  std::vector<Event> take_recovered();
  // The outage changes found at open (Spool::take_recovered_changes).
  const std::vector<std::string>& recovered_changes() const;
  // Where compaction takes the open outages from; set before start().
  void set_snapshot_source(SnapshotSource source);

  // --- the xm-sync thread ---
  // Starts it; idempotent, and nothing after stop().
  void start();
  // Ends it, then spools what is held, syncs, and reports the refusals not
  // yet reported. Idempotent.
  void stop();

  // --- QueueLimit: the one count of undelivered events ---
  // One more undelivered event; false when QueueLimit is reached (the
  // refusal is reported, rate-limited, naming the event's outage).
  bool take_room(const Event& event);
  // Counted without the limit: clears (never refused), events already
  // accepted (recovered, sent again by the operator).
  void add(std::size_t n = 1);
  // Delivered, dead-lettered or replaced.
  void release(std::size_t n = 1);
  std::size_t queued() const;

  // --- events ---
  enum class Accepted { Spooled, Held, NoRoom };
  // A new event of the tracker's: written to the spool (one write(2), no
  // sync). An outage event must leave room for what must follow it: NoRoom
  // (reported, rate-limited) when the disk has none. A clear may use the
  // reserve; one the spool cannot take is held in memory, sent from there
  // and spooled by the sync thread once it can be (Held): no compaction
  // meanwhile. Throws std::system_error with EFBIG for an event over 16 MiB.
  Accepted accept(const Event& event);
  // An event of the operator's (resend, test): as accept(), but what the
  // spool cannot take throws std::system_error.
  void append(const Event& event);
  // An outage change that sends no event; never throws.
  void record_change(const std::string& record);
  // A record of the table the operator waits for (a SILENCE), durable on
  // return (Spool::append_durable). Throws std::system_error.
  void record_durably(const std::string& record);
  // The body of an undelivered event, from memory or read back from the
  // spool, made durable first when `durable` (nothing is sent before it
  // is); nullopt when it is no longer kept. Throws as Spool::read_body.
  std::optional<std::string> body(const std::string& event_id, bool durable);
  // As Spool::make_durable.
  bool make_durable(const std::string& event_id);
  // Delivered or dead-lettered: it leaves the spool, or memory.
  void acknowledge(const std::string& event_id);

 private:
  struct Custody;
  std::unique_ptr<Custody> c_;
};

}  // namespace xmatters
