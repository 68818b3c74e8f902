// Durable delivery (collectd-xmatters(5) DELIVERY): the EventSink that spools each event and
// sends it from the plugin's own threads with libcurl, with retries, per
// outage order, dead letters and its own statistics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "event.h"
#include "function_ref.h"
#include "log.h"
#include "reply.h"

namespace xmatters {

struct DeliveryStats {
  std::uint64_t queue_length = 0;   // undelivered events
  std::uint64_t delivered = 0;      // counters since start
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t dropped = 0;        // refused by QueueLimit
  double latency_seconds = 0;       // mean from event creation to 2xx, over the last interval
};

// Tuning that the configuration does not expose; the tests shorten it.
struct DeliveryOptions {
  // A failed request is retried after about initial_backoff, doubling with
  // each failure up to max_backoff (with jitter), or after Retry-After, but
  // never after more than max_backoff.
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{kBackoffCeiling};
  // How often appended events are flushed to stable storage (and the spool
  // compacted, clears held in memory spooled), while there is something to
  // flush, compact or retry.
  std::chrono::milliseconds sync_interval{1000};
};

class Delivery : public EventSink {
 public:
  // Makes the HTTP clients and opens the spool in spool_dir; events
  // recovered from it are queued. config must outlive the delivery. Throws
  // std::runtime_error naming the integration when one of its clients
  // cannot be made, std::system_error when the spool cannot be opened.
  // Recovered events of an integration that is no longer configured are
  // dead-lettered (the spool has no URL for them).
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

  // Where the spool's compaction takes the open outages from; set before
  // start().
  void set_snapshot_source(std::function<void(FunctionRef<void(std::string_view)>)> source);

  // Starts the delivery threads.
  void start();
  // Stops taking events, gives requests in flight up to Timeout to finish,
  // leaves the rest in the spool. Idempotent.
  void stop();

  // For ReportStats; the latency mean is reset by each call.
  DeliveryStats stats(const std::string& integration);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xmatters
