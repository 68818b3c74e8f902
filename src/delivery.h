// Durable delivery (CONTRACT §5): the EventSink that spools each event and
// sends it from the plugin's own threads with libcurl, with retries, per
// outage order, dead letters and its own statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config.h"
#include "event.h"
#include "log.h"

namespace xmatters {

struct DeliveryStats {
  std::uint64_t queue_length = 0;   // undelivered events
  std::uint64_t delivered = 0;      // counters since start
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t dropped = 0;        // refused by QueueLimit
  double latency_seconds = 0;       // mean from event creation to 2xx, over the last interval
};

class Delivery : public EventSink {
 public:
  // Opens the spool in spool_dir; events recovered from it are queued.
  // config must outlive the delivery. Throws std::system_error when the
  // spool cannot be opened.
  Delivery(const Config& config, const std::string& spool_dir, Logger& log);
  ~Delivery() override;  // stop()
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  bool submit(Event event) override;

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
