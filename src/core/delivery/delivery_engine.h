// Inside delivery (delivery.h): a lane as the engine keeps it, what one
// attempt came to, and the engine the delivery's units share. Included by
// delivery.cc (lanes, workers, submit, start and stop),
// delivery_attempt.cc (one request), delivery_settle.cc (what becomes of
// the event after it) and delivery_operator.cc (the operator's verbs) only.
//
// How it works. Each integration has a lane: its schedule of outages, each a
// FIFO of events (lane.h), and `Connections` worker threads, each owning one
// kept-alive libcurl handle. An outage is handed to at most one worker at a
// time and only its head event is sent, so an outage's events go out strictly
// in order while different outages go out in parallel. Blocking easy handles
// on a few threads were chosen over one curl multi loop: a worker's state is
// then just "the request in hand", and stop() bounds the wait with curl's own
// Timeout plus an abort flag checked by curl's progress callback.
//
// The engine ties the parts: the reply says what became of a request
// (reply.h), the lane says when each event goes next, the dead-letter file
// keeps what can never go (dead_letter.h), the store keeps everything until
// then (store.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delivery/dead_letter.h"
#include "delivery/delivery.h"
#include "delivery/delivery_log.h"
#include "outage/flood_budget.h"
#include "delivery/flood_minute.h"
#include "delivery/http_client.h"
#include "delivery/lane.h"
#include "util/mutex.h"
#include "store/store.h"

namespace xmatters {

// An event as it waits in the queue: its body is in the spool, and is read
// back from there when the event is sent (see Spool::read_body).
inline Event without_body(Event event) {
  event.body.clear();
  event.body.shrink_to_fit();
  return event;
}

// What stats() and status() report of a lane.
struct LaneCounts {
  unsigned failures_since_ok = 0;
  std::uint64_t delivered = 0, retried = 0, dead_lettered = 0, dropped = 0;
  double latency_sum = 0;  // since the last take_mean_latency()
  std::uint64_t latency_count = 0;
  std::optional<IntegrationStatus::Delivered> last_delivery;
  std::optional<IntegrationStatus::Failure> last_failure;
  std::optional<TimePoint> failing_since;  // the first failure since the last delivery
};

// One integration's lane as the engine keeps it.
struct DeliveryLane {
  const IntegrationConfig& config;
  Mutex mutex;
  std::condition_variable wake;
  // FloodLimit's budget, which the schedule and the integration's tracker
  // share (its own lock).
  const std::shared_ptr<FloodBudget> budget;
  LaneSchedule schedule GUARDED_BY(mutex);
  LaneLines lines GUARDED_BY(mutex);
  LaneCounts counts GUARDED_BY(mutex);
  // The status that paused the integration (401, 403, 404); expired events
  // are looked for once a pause interval.
  std::atomic<long> paused{0};  // 0: not paused
  Steady::time_point next_expiry_sweep GUARDED_BY(mutex){};
  // Test events in the lane, by event_id: their first answer goes there.
  std::unordered_map<std::string, std::promise<FirstAnswer>> tests GUARDED_BY(mutex);

  // Made before the threads start, never changed after.
  std::vector<std::unique_ptr<HttpClient>> clients;  // one per thread
  std::vector<std::thread> threads;

  DeliveryLane(const IntegrationConfig& c, const DeliveryOptions& o)
      : config(c),
        budget(std::make_shared<FloodBudget>(c.name, c.flood_limit)),
        schedule(Backoff(o.initial_backoff, o.max_backoff), budget, o.wall_now),
        lines(c.name, o) {}
};

struct Delivery::Engine {
  const Config& config;
  Logger& log;
  DeliveryOptions options;
  std::unique_ptr<Store> owned_store;  // when the delivery opened its own
  Store* store = nullptr;             // set once the clients are made
  std::unique_ptr<DeadLetterFile> dead_letters;
  std::vector<std::unique_ptr<DeliveryLane>> lanes;
  std::unordered_map<std::string, DeliveryLane*> by_name;
  std::chrono::milliseconds max_timeout{0};

  std::atomic<bool> accepting{true};
  std::atomic<bool> stopping{false};
  std::atomic<bool> abort{false};  // cancels requests still in flight after the grace time

  Mutex control;  // start / stop
  bool started GUARDED_BY(control) = false;
  bool stopped GUARDED_BY(control) = false;

  Mutex flight_mutex;
  std::condition_variable flight_done;
  std::size_t in_flight GUARDED_BY(flight_mutex) = 0;

  Engine(const Config& c, Logger& l, DeliveryOptions o) : config(c), log(l), options(o) {}

  // The clocks every decision by time reads (DeliveryOptions).
  Steady::time_point steady_now() const { return options.steady_now ? options.steady_now() : Steady::now(); }
  TimePoint wall_now() const { return options.wall_now ? options.wall_now() : Clock::now(); }

  // What became of one attempt. Pause: the integration refused the
  // plugin (401, 403, 404); Tested: a test event answered otherwise than
  // with a 2xx, or given up.
  enum class Result { Delivered, Retry, Pause, DeadLetter, Abandoned, Tested };

  // How an event is taken: sent; a test, sent once; or given up without a
  // request (its RetryMaxAge passed while its integration was paused).
  enum class Mode { Send, Test, Expire };

  struct Outcome {
    Result result = Result::Retry;
    HttpResult http;
    std::optional<std::chrono::seconds> retry_after;
    std::string reason;  // why it failed, for the logs and the dead-letter file
    bool dead_letter_written = true;
    std::size_t dead_letters_dropped = 0;  // by DeadLetterLimit, to write this one
  };

  // Counts a request in flight for stop(), however its thread leaves it.
  class InFlight {
   public:
    explicit InFlight(Engine& engine) : engine_(engine) {
      MutexLock f(engine_.flight_mutex);
      ++engine_.in_flight;
    }
    ~InFlight() {
      {
        MutexLock f(engine_.flight_mutex);
        --engine_.in_flight;
      }
      engine_.flight_done.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    Engine& engine_;
  };

  // --- delivery.cc
  // Queues what the store recovered, and FloodLimit's minute.
  void recover();
  void worker(DeliveryLane& lane, HttpClient& client) EXCLUDES(lane.mutex);
  // Records a request about to be made in the spool (FloodLimit's minute).
  void note_sent(DeliveryLane& lane, EventType type) noexcept EXCLUDES(lane.mutex);
  void count_refusal(DeliveryLane& lane) EXCLUDES(lane.mutex);
  // Log lines gathered under the lane's mutex, written without it.
  void write(const LogLines& logs) noexcept;
  // The event leaves the spool (or the clears held in memory).
  void acknowledge(const Event& event) { store->acknowledge(event.event_id); }

  // --- delivery_attempt.cc
  // Without the lane's mutex: the request takes its time.
  Outcome attempt(DeliveryLane& lane, HttpClient& client, const Pending& p, Mode mode) EXCLUDES(lane.mutex);
  // attempt(), whatever it throws a failed try, so that the outage is not
  // stuck in flight.
  Outcome try_attempt(DeliveryLane& lane, HttpClient& client, const Pending& p, Mode mode) noexcept
      EXCLUDES(lane.mutex);
  // A dead letter written for o, and the event acknowledged when it was.
  void dead_letter(const Event& e, const std::string& body, const std::string& url, int attempts, Outcome& o);
  bool expired(const IntegrationConfig& c, const Pending& p) const {
    return wall_now() - p.event.created - p.paced >= c.retry_max_age;
  }

  // --- delivery_settle.cc
  void settle(DeliveryLane& lane, const std::string& outage_id, const Pending& p, Outcome& o, LogLines& logs)
      REQUIRES(lane.mutex);
  bool settle_test(DeliveryLane& lane, const std::string& outage_id, const Pending& p, const Outcome& o,
                   LogLines& logs) REQUIRES(lane.mutex);

  // --- delivery_operator.cc
  // The lane of an event the operator sends (resend, test); throws
  // std::invalid_argument for an unknown integration, std::logic_error
  // after stop().
  DeliveryLane& lane_for_operator(const Event& event);
};

}  // namespace xmatters
