// Durable delivery (collectd-xmatters(5) DELIVERY): the EventSink that spools each event and
// sends it from the plugin's own threads with libcurl, with retries, per
// outage order, dead letters and its own statistics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "outage/event.h"
#include "util/function_ref.h"
#include "util/log.h"
#include "delivery/delivery_options.h"
#include "store/store.h"

namespace xmatters {

struct DeliveryStats {
  std::uint64_t queue_length = 0;   // undelivered events
  std::uint64_t delivered = 0;      // counters since start
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t dropped = 0;        // refused by QueueLimit
};

// What an operator sees of one integration (collectd-xmatters(1) status).
// Times are the wall clock's; every text is redacted.
struct IntegrationStatus {
  std::string name;
  std::size_t queued = 0;                  // undelivered events, in flight included
  std::optional<TimePoint> oldest_queued;  // the created time of the oldest
  std::uint64_t dead_lettered = 0;         // since start
  struct Delivered {
    TimePoint time;
    long status = 0;
    std::string request_id;  // "" when the reply had none
    EventType type = EventType::Outage;
    std::string outage_id;
  };
  std::optional<Delivered> last_delivery;
  struct Failure {
    TimePoint time;
    std::string reason;
  };
  std::optional<Failure> last_failure;
  // The first failed request since the last delivery: nullopt while
  // deliveries succeed (collectd-xmatters(1) status: failing for how long).
  std::optional<TimePoint> failing_since;
  // The status (401, 403 or 404) that paused the integration
  // (collectd-xmatters(5) DELIVERY); nullopt when it is not paused.
  std::optional<long> paused;
  unsigned flood_limit = 0;  // 0: none
  // Requests of each type in the last minute, against FloodLimit.
  std::size_t flood_used_outage = 0, flood_used_clear = 0;
};

// One undelivered event (collectd-xmatters(1) queue).
struct QueuedEvent {
  std::string event_id, outage_id, integration;
  EventType type = EventType::Outage;
  TimePoint created;
  int attempts = 0;  // failed requests so far
  bool in_flight = false;
  // When its outage's next request may go: its head's only, nullopt for the
  // events behind it and the head in flight.
  std::optional<TimePoint> next_attempt;
  std::string last_error;  // redacted; "" before any failure
};

// The first answer to a test event (collectd-xmatters(1) test).
struct FirstAnswer {
  bool delivered = false;  // a 2xx
  long status = 0;         // 0: no reply
  std::string request_id;  // "" when the reply had none
  std::string reason;      // why not delivered (redacted); "" when delivered
};

class Delivery : public EventSink {
 public:
  // Makes the HTTP clients and queues the events recovered by the store
  // (the dead-letter file is in spool_dir). config and store must outlive
  // the delivery. Throws std::runtime_error naming the integration when one
  // of its clients cannot be made. Recovered events of an integration that
  // is no longer configured stay in the spool, unsent, with a WARNING,
  // until it is configured again.
  Delivery(const Config& config, Store& store, const std::string& spool_dir, Logger& log,
           DeliveryOptions options = {});
  // As above, with a store of its own opened in spool_dir (throws
  // std::system_error when it cannot be opened).
  Delivery(const Config& config, const std::string& spool_dir, Logger& log,
           DeliveryOptions options = {});
  ~Delivery() override;  // stop()
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // Never throws on an I/O error: an outage event the spool cannot take is
  // refused (ERROR every 10 s with the count), a clear is held in memory and
  // spooled by the maintenance thread once it can be.
  bool submit(Event event) override;
  void record_change(const std::string& record) override;
  std::vector<std::string> recovered_changes() const override;
  std::shared_ptr<FloodBudget> flood_budget(const std::string& integration) const override;
  // A record of the table the operator waits for, durable on return
  // (Spool::append_durable; a silence). Throws std::system_error.
  void record_durably(const std::string& record);

  // Where the spool's compaction takes the open outages from; set before
  // start().
  void set_snapshot_source(std::function<void(FunctionRef<void(std::string_view)>)> source);

  // Starts the delivery threads (and the store's).
  void start();
  // Stops taking events, gives requests in flight up to Timeout to finish,
  // leaves the rest in the spool, and stops the store. Idempotent.
  void stop();

  // Makes every delivery thread read its clock again. For tests that move
  // DeliveryOptions' clocks: a thread sleeping until a due time cannot see
  // a test's clock move, and a call after each move is simpler than a clock
  // that knows who sleeps on it.
  void wake();

  // The counters now; reads only.
  DeliveryStats stats(const std::string& integration) const;
  // For ReportStats: the mean time from event creation to its 2xx over the
  // deliveries since the last call (0 when none), and a new window begins.
  double take_mean_latency(const std::string& integration);

  // --- for the operator's command (collectd-xmatters(1)); thread-safe ---

  // Every integration's state, in configuration order.
  std::vector<IntegrationStatus> status() const;
  // Every undelivered event, each outage's in order.
  std::vector<QueuedEvent> queue() const;
  // The outages whose next event is due but waits for FloodLimit's pacing,
  // as {integration, outage_id}.
  std::set<std::pair<std::string, std::string>> paced_outages() const;

  // Sends dead letters again (events as read_dead_letters gives them, in
  // the order plan_resend gives): each goes to the head of its outage's
  // queue, in the order given, with its event_id (its Idempotency-Key); its
  // RetryMaxAge counts from now. Returns once they are all durable in the
  // spool; then the letters of `letters` leave the dead-letter file
  // (rewritten: false when the file could not be rewritten, and they stay
  // there too; a restart removes them then). An outage event whose outage
  // has cleared since its letter was read (its clear marked, or in flight
  // now) is not queued, unless its clear is among the events: it would page
  // for a resolved outage that nothing clears; it is in skipped (body
  // left out) and its letter stays. Throws std::invalid_argument
  // (nothing queued) for an event of an unknown integration,
  // std::system_error (nothing queued) when the spool cannot take them, std::logic_error after stop().
  struct Resent {
    bool rewritten = true;
    std::vector<Event> skipped;
  };
  Resent resend(std::vector<Event> events, const std::set<std::string>& letters);

  // Sends a test event (its own outage_id, which no tracker knows) through
  // the real path: spooled, then sent first of its lane's events, through a
  // pause too, but within the FloodLimit. The future has the first answer;
  // the event is never retried nor dead-lettered (once answered it leaves
  // the spool). A delivered test resumes a paused integration. Throws as
  // resend().
  std::future<FirstAnswer> test(Event event);

 private:
  // store: nullptr to open one of its own.
  Delivery(const Config& config, Store* store, const std::string& spool_dir, Logger& log, DeliveryOptions options);
  // The lanes, their workers, attempts and settlement (delivery_engine.h).
  struct Engine;
  std::unique_ptr<Engine> engine_;
};

}  // namespace xmatters
