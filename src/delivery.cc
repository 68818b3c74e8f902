#include "delivery.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <jansson.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http_client.h"
#include "payload.h"
#include "redact.h"
#include "resources.h"
#include "spool.h"
#include "throttle.h"

// How it works. Each integration has a lane: its queue of outages, each a
// FIFO of events, and `Connections` worker threads, each owning one kept-alive
// libcurl handle. An outage is handed to at most one worker at a time and only
// its head event is sent, so an outage's events go out strictly in order while
// different outages go out in parallel. Blocking easy handles on a few threads
// were chosen over one curl multi loop: a worker's state is then just "the
// request in hand", and stop() bounds the wait with curl's own Timeout plus an
// abort flag checked by curl's progress callback.
//
// A failed request sets back its event (exponential backoff with jitter, or
// Retry-After) and also pauses the whole lane for a while, since a failure is
// usually the endpoint's, not the event's: a down xMatters is then probed
// gently instead of with every queued event at once. A success clears the
// lane's pause.

namespace xmatters {

namespace {

using Steady = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kStillFailingEvery = std::chrono::seconds(60);
constexpr auto kDropLogEvery = std::chrono::seconds(10);

// A JSON string from any bytes: invalid UTF-8 must not make jansson refuse
// the whole dead-letter line.
json_t* json_text(const std::string& s) {
  if (json_t* j = json_stringn(s.data(), s.size())) return j;
  std::string ascii = s;
  for (char& c : ascii)
    if (static_cast<unsigned char>(c) > 0x7e) c = '?';
  return json_stringn(ascii.data(), ascii.size());
}

std::string seconds_text(Steady::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(d).count());
  return buf;
}

// The delivery threads are woken by collectd's threads, which must not wait
// for them: as SCHED_BATCH threads they do not preempt the thread that woke
// them (a woken thread that did would run its HTTP request inside collectd's
// notification callback, so to speak, on a machine with few cores).
void run_in_background() {
  const sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
}

// An event as it waits in the queue: its body is in the spool, and is read
// back from there when the event is sent (see Spool::read_body).
Event without_body(Event event) {
  event.body.clear();
  event.body.shrink_to_fit();
  return event;
}

struct Pending {
  Event event;  // without its body
  int attempts = 0;  // failed requests so far
};

struct OutageQueue {
  // The head is sent next, or is in flight. A vector: an outage has one to a
  // few events queued, and a deque would cost two allocations (about 600
  // bytes) per open outage, on collectd's thread.
  std::vector<Pending> events;
  bool in_flight = false;
};

enum class Verdict { Delivered, Retry, DeadLetter, Abandoned };

struct Outcome {
  Verdict verdict = Verdict::Retry;
  HttpResult http;
  std::string reason;  // why it failed, for the logs and the dead-letter file
  bool dead_letter_written = true;
};

using LogLines = std::vector<std::pair<LogLevel, std::string>>;

struct Lane {
  const IntegrationConfig& config;
  std::mutex mutex;
  std::condition_variable wake;
  std::unordered_map<std::string, OutageQueue> outages;
  // Outages whose head may be sent, by earliest attempt, then arrival.
  std::map<std::pair<Steady::time_point, std::uint64_t>, std::string> schedule;
  std::uint64_t arrivals = 0;
  std::size_t queued = 0;  // undelivered events, in flight included

  Steady::time_point paused_until{};
  bool watching = false;  // an idle worker looks for new events (see worker())
  unsigned pause_streak = 0;     // lane pauses since the last success
  unsigned failures_since_ok = 0;
  Steady::time_point last_failing_warning{};
  std::mt19937_64 rng{std::random_device{}()};

  std::uint64_t delivered = 0, retried = 0, dead_lettered = 0, dropped = 0;
  double latency_sum = 0;
  std::uint64_t latency_count = 0;

  std::vector<std::thread> threads;

  explicit Lane(const IntegrationConfig& c) : config(c) {}

  void schedule_head(const std::string& outage_id, Steady::time_point when) {
    schedule.emplace(std::make_pair(when, arrivals++), outage_id);
  }

  // Adds an event; the caller holds the mutex. No worker is woken: the
  // watching one finds it (see worker()).
  void enqueue(Event event) {
    auto [it, fresh] = outages.try_emplace(event.outage_id);
    it->second.events.push_back(Pending{std::move(event), 0});
    ++queued;
    if (fresh) schedule_head(it->first, Steady::time_point{});
  }
};

}  // namespace

struct Delivery::State {
  const Config& config;
  Logger& log;
  DeliveryOptions options;
  std::string dead_letter_path;
  std::unique_ptr<Spool> spool;
  std::vector<std::unique_ptr<Lane>> lanes;
  std::unordered_map<std::string, Lane*> by_name;
  // The outage changes found in the spool at start.
  std::vector<std::string> recovered_changes;
  milliseconds max_timeout{0};

  std::atomic<std::size_t> total_queued{0};  // for QueueLimit, across lanes
  std::atomic<bool> accepting{true};
  std::atomic<bool> stopping{false};
  std::atomic<bool> abort{false};  // cancels requests still in flight after the grace time

  std::mutex control;  // start / stop
  bool started = false;
  bool stopped = false;

  std::mutex flight_mutex;
  std::condition_variable flight_done;
  std::size_t in_flight = 0;

  std::mutex sync_mutex;
  std::condition_variable sync_wake;
  std::thread sync_thread;

  std::mutex dead_letter_mutex;

  std::mutex drop_mutex;
  bool drop_logged = false;
  Steady::time_point last_drop_log{};
  std::uint64_t dropped_since_log = 0;
  Throttle no_room_errors;
  Throttle held_errors;

  // Clears the spool could not take (a full or failing disk), with their
  // bodies, by event_id: sent from here, and spooled by the maintenance
  // thread once it can. Never compacted away meanwhile (maintain's flag).
  std::mutex held_mutex;
  std::unordered_map<std::string, Event> held;

  State(const Config& c, Logger& l, DeliveryOptions o) : config(c), log(l), options(o) {}

  Steady::duration backoff(unsigned failures, std::mt19937_64& rng) const;
  bool write_dead_letter(const Event& event, const std::string& body, const std::string& url, int attempts, long status,
                         const std::string& reason, const std::string& reply);
  void worker(Lane& lane);
  // Counts a request in flight for stop(), however its thread leaves it.
  class InFlight {
   public:
    explicit InFlight(State& s) : s_(s) {
      std::lock_guard<std::mutex> f(s_.flight_mutex);
      ++s_.in_flight;
    }
    ~InFlight() {
      {
        std::lock_guard<std::mutex> f(s_.flight_mutex);
        --s_.in_flight;
      }
      s_.flight_done.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    State& s_;
  };
  // The event leaves the spool, its outage change recorded first.
  void acknowledge(const Event& event);
  Outcome attempt(Lane& lane, HttpClient& client, const Pending& p);
  void settle(Lane& lane, const std::string& outage_id, const Pending& p, Outcome& o, LogLines& logs);
  void sync_loop();
  void spool_held();
  void refuse(Lane& lane, const Event& event);
  void refuse_no_room(Lane& lane, const Event& event, const std::string& why);
};

Steady::duration Delivery::State::backoff(unsigned failures, std::mt19937_64& rng) const {
  // Half fixed, half random: spreads retries of many events without ever
  // retrying much sooner than the doubling says.
  double base = static_cast<double>(options.initial_backoff.count());
  for (unsigned i = 1; i < failures && base < options.max_backoff.count(); ++i) base *= 2;
  base = std::min(base, static_cast<double>(options.max_backoff.count()));
  std::uniform_real_distribution<double> half(0.0, base / 2);
  return duration_cast<Steady::duration>(std::chrono::duration<double, std::milli>(base / 2 + half(rng)));
}

bool Delivery::State::write_dead_letter(const Event& event, const std::string& body, const std::string& url,
                                        int attempts, long status,
                                        const std::string& reason, const std::string& reply) {
  Json line(json_object());
  json_object_set_new(line.get(), "time", json_text(format_rfc3339(Clock::now())));
  json_object_set_new(line.get(), "integration", json_text(event.integration));
  json_object_set_new(line.get(), "event_id", json_text(event.event_id));
  json_object_set_new(line.get(), "outage_id", json_text(event.outage_id));
  json_object_set_new(line.get(), "event_type", json_text(event_type_name(event.type)));
  json_object_set_new(line.get(), "created", json_text(format_rfc3339(event.created)));
  json_object_set_new(line.get(), "attempts", json_integer(attempts));
  json_object_set_new(line.get(), "status", json_integer(status));
  json_object_set_new(line.get(), "reason", json_text(reason));
  json_object_set_new(line.get(), "url", url.empty() ? json_null() : json_text(redact_url(url)));
  json_object_set_new(line.get(), "reply", json_text(reply));
  json_t* parsed = json_loadb(body.data(), body.size(), 0, nullptr);
  json_object_set_new(line.get(), "body", parsed != nullptr ? parsed : json_text(body));
  DumpedJson text(json_dumps(line.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
  if (!text) return false;
  const std::string data = std::string(text.get()) + "\n";

  std::lock_guard<std::mutex> lock(dead_letter_mutex);
  UniqueFd fd(::open(dead_letter_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (fd.get() < 0) return false;
  // One write, so that a crash leaves at worst a torn last line.
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void Delivery::State::acknowledge(const Event& event) {
  // Under held_mutex, so that spool_held() cannot spool it after this.
  std::lock_guard<std::mutex> lock(held_mutex);
  held.erase(event.event_id);
  spool->acknowledge(event.event_id);
}

Outcome Delivery::State::attempt(Lane& lane, HttpClient& client, const Pending& p) {
  const Event& e = p.event;
  const IntegrationConfig& c = lane.config;
  const std::string& url = e.type == EventType::Clear ? c.clear_url : c.outage_url;
  Outcome o;
  std::string body;
  try {
    std::optional<std::string> spooled;
    {
      std::lock_guard<std::mutex> lock(held_mutex);
      auto found = held.find(e.event_id);
      if (found != held.end()) spooled = found->second.body;
    }
    if (!spooled) {
      spooled = spool->read_body(e.event_id);
      if (!spooled) throw std::runtime_error("it is no longer in the spool");
      // Sent only once a power loss cannot take it back (doc/storage.md).
      spool->make_durable(e.event_id);
    }
    body = std::move(*spooled);
  } catch (const std::system_error& ex) {
    o.verdict = stopping ? Verdict::Abandoned : Verdict::Retry;
    o.reason = std::string("cannot read it from the spool: ") + ex.what();
    return o;
  } catch (const std::runtime_error& ex) {
    // It can never be sent; its outage's later events (the clear) still can.
    o.verdict = Verdict::DeadLetter;
    o.reason = ex.what();
    o.dead_letter_written = write_dead_letter(e, body, "", p.attempts, 0, o.reason, "");
    if (o.dead_letter_written) acknowledge(e);
    return o;
  }
  o.http = client.post(url, body, e.event_id);
  const HttpResult& r = o.http;

  if (r.cancelled) {
    o.verdict = Verdict::Abandoned;
    return o;
  }
  if (r.status >= 200 && r.status < 300) {
    o.verdict = Verdict::Delivered;
    acknowledge(e);
    return o;
  }
  const bool retryable = r.status == 0 || r.status == 408 || r.status == 425 || r.status == 429 ||
                         (r.status >= 500 && r.status <= 599);
  if (r.status != 0)
    o.reason = "HTTP " + std::to_string(r.status) + (r.reply_start.empty() ? "" : ": " + r.reply_start);
  else
    o.reason = r.error;

  if (!retryable) {
    o.verdict = Verdict::DeadLetter;
  } else if (stopping) {
    o.verdict = Verdict::Abandoned;
    return o;
  } else if (Clock::now() - e.created >= c.retry_max_age) {
    o.verdict = Verdict::DeadLetter;
    o.reason = "not delivered within RetryMaxAge (" + std::to_string(c.retry_max_age.count()) +
               " s); last attempt: " + o.reason;
  } else {
    o.verdict = Verdict::Retry;
    return o;
  }

  // Dead letter: written and acknowledged before the outage's next event goes.
  o.dead_letter_written = write_dead_letter(e, body, url, p.attempts + 1, r.status, o.reason, r.reply_start);
  if (o.dead_letter_written) acknowledge(e);
  return o;
}

void Delivery::State::settle(Lane& lane, const std::string& outage_id, const Pending& p, Outcome& o,
                             LogLines& logs) {
  const Event& e = p.event;
  const IntegrationConfig& c = lane.config;
  const std::string what = std::string(event_type_name(e.type)) + " event " + e.event_id + " of outage " +
                           e.outage_id;
  const std::string prefix = "integration " + c.name + ": ";
  const auto now = Steady::now();
  OutageQueue& outage = lane.outages[outage_id];
  outage.in_flight = false;

  switch (o.verdict) {
    case Verdict::Abandoned:
      lane.schedule_head(outage_id, now);
      logs.emplace_back(LogLevel::Info, prefix + what + " left in the spool for the next start");
      return;

    case Verdict::Retry: {
      Pending& head = outage.events.front();
      head.attempts = p.attempts + 1;
      ++lane.retried;
      ++lane.failures_since_ok;
      auto delay = backoff(static_cast<unsigned>(head.attempts), lane.rng);
      const auto& ra = o.http.retry_after;
      if (ra) {
        // Honoured, but never past the time the event would be given up.
        const auto wait = duration_cast<Steady::duration>(std::min<seconds>(*ra, c.retry_max_age));
        delay = std::max(delay, wait);
        lane.paused_until = std::max(lane.paused_until, now + wait);
      }
      // The last try is made at the RetryMaxAge deadline, not after it.
      const auto left = duration_cast<Steady::duration>(e.created + c.retry_max_age - Clock::now());
      delay = std::max(Steady::duration::zero(), std::min(delay, left));
      lane.schedule_head(outage_id, now + delay);
      if (now >= lane.paused_until) {
        ++lane.pause_streak;
        lane.paused_until = now + backoff(lane.pause_streak, lane.rng);
      }
      const std::string line = prefix + what + " not delivered (" + o.reason + "); retry " +
                               std::to_string(head.attempts) + " in " + seconds_text(delay);
      if (lane.failures_since_ok == 1 && head.attempts == 1) {
        logs.emplace_back(LogLevel::Warning, line + "; sending to " + redact_url(e.type == EventType::Clear
                                                                                     ? c.clear_url
                                                                                     : c.outage_url));
        lane.last_failing_warning = now;
      } else if (now - lane.last_failing_warning >= kStillFailingEvery) {
        logs.emplace_back(LogLevel::Warning, prefix + "delivery still failing (" + o.reason + "); " +
                                                 std::to_string(lane.queued) + " events waiting");
        lane.last_failing_warning = now;
      } else {
        logs.emplace_back(LogLevel::Debug, line);
      }
      return;
    }

    case Verdict::DeadLetter:
      if (!o.dead_letter_written) {
        // The event stays at its outage's head, so that nothing of the
        // outage (its clear) overtakes it; the whole attempt is made again
        // later, when the disk may have room.
        const auto delay = backoff(static_cast<unsigned>(p.attempts + 1), lane.rng);
        outage.events.front().attempts = p.attempts + 1;
        lane.schedule_head(outage_id, now + delay);
        logs.emplace_back(LogLevel::Error, prefix + what + " should be dead-lettered (" + o.reason +
                                               ") but " + dead_letter_path + " cannot be written; trying again in " +
                                               seconds_text(delay));
        return;
      }
      break;

    case Verdict::Delivered:
      break;
  }

  if (o.verdict == Verdict::Delivered) {
    ++lane.delivered;
    lane.latency_sum += std::chrono::duration<double>(Clock::now() - e.created).count();
    ++lane.latency_count;
    if (lane.failures_since_ok > 0)
      logs.emplace_back(LogLevel::Notice, prefix + "delivering again after " +
                                              std::to_string(lane.failures_since_ok) + " failed attempts");
    lane.failures_since_ok = 0;
    lane.pause_streak = 0;
    lane.paused_until = Steady::time_point{};
    // The page is out: worth an INFO line, written here rather than on
    // collectd's thread when the event was queued.
    logs.emplace_back(LogLevel::Info, prefix + "delivered " + what + " (requestId " +
                                          (o.http.request_id.empty() ? "none" : o.http.request_id) + ")");
  } else {
    ++lane.dead_lettered;
    const std::string& url = e.type == EventType::Clear ? c.clear_url : c.outage_url;
    // The reason carries the status and the start of the reply.
    logs.emplace_back(LogLevel::Error, prefix + what + " dead-lettered: " + o.reason +
                                           (o.http.status != 0 && o.http.reply_start.empty() ? " (empty reply)" : "") +
                                           "; sent to " + redact_url(url) + "; kept in " + dead_letter_path);
  }
  outage.events.erase(outage.events.begin());
  --lane.queued;
  --total_queued;
  if (!outage.events.empty())
    lane.schedule_head(outage_id, now);
  else
    lane.outages.erase(outage_id);
  lane.wake.notify_one();
}

// collectd's threads never wake a worker: in a virtual machine, waking a
// thread that sleeps on another CPU costs the waker more than all the rest
// of the notification callback. Instead, one idle worker per lane at a
// time, the watcher, looks for new events every pickup_interval; a worker
// that takes an event wakes an idle peer, which takes the next due outage
// or the watch, so a burst spreads over the Connections within a few
// hand-offs and a worker held by a slow request never leaves new events
// unseen. A page waits at most pickup_interval longer; an idle lane costs
// one short wake-up per interval.
void Delivery::State::worker(Lane& lane) {
  run_in_background();
  const std::string prefix = "integration " + lane.config.name + ": ";
  try {
    HttpClient client(lane.config, &abort);
    std::unique_lock<std::mutex> lock(lane.mutex);
    while (!stopping) {
      std::string outage_id;  // set while this thread holds an outage in flight
      try {
        const auto now = Steady::now();
        const auto due = lane.schedule.empty()
                             ? Steady::time_point::max()
                             : std::max(lane.schedule.begin()->first.first, lane.paused_until);
        if (due > now) {
          const bool watch = !lane.watching;
          if (watch) lane.watching = true;
          const auto until = watch ? std::min(due, now + options.pickup_interval) : due;
          if (until == Steady::time_point::max())
            lane.wake.wait(lock);
          else
            lane.wake.wait_until(lock, until);
          if (watch) lane.watching = false;
          continue;
        }
        outage_id = lane.schedule.begin()->second;
        lane.schedule.erase(lane.schedule.begin());
        // An idle peer takes over the watch, or the next due outage.
        lane.wake.notify_one();
        auto found = lane.outages.find(outage_id);
        // An outage scheduled twice (see the catch below) is taken once.
        if (found == lane.outages.end() || found->second.in_flight || found->second.events.empty()) {
          outage_id.clear();
          continue;
        }
        found->second.in_flight = true;
        const Pending p = found->second.events.front();
        {
          const InFlight counted(*this);
          lock.unlock();
          Outcome o;
          try {
            o = attempt(lane, client, p);
          } catch (const std::exception& ex) {
            // Treated as a failed try, so the outage is not stuck in flight.
            o.verdict = stopping ? Verdict::Abandoned : Verdict::Retry;
            o.reason = std::string("internal error: ") + ex.what();
          }
          LogLines logs;
          lock.lock();
          settle(lane, outage_id, p, o, logs);
          outage_id.clear();
          lock.unlock();
          for (const auto& [level, line] : logs) log.log(level, line);
        }
        lock.lock();
      } catch (const std::exception& ex) {
        // Out of memory half way through: the outage must not stay in
        // flight, or none of its events would ever go again.
        if (!lock.owns_lock()) lock.lock();
        if (!outage_id.empty()) {
          auto found = lane.outages.find(outage_id);
          if (found != lane.outages.end()) {
            found->second.in_flight = false;
            if (!found->second.events.empty()) lane.schedule_head(outage_id, Steady::now() + options.initial_backoff);
          }
        }
        lock.unlock();
        log.error(prefix + "delivery interrupted (" + ex.what() + "); trying again");
        lock.lock();
      }
    }
  } catch (const std::exception& ex) {
    log.error(prefix + "delivery thread failed: " + ex.what());
  }
}

void Delivery::State::sync_loop() {
  run_in_background();
  std::unique_lock<std::mutex> lock(sync_mutex);
  while (!stopping) {
    sync_wake.wait_for(lock, options.sync_interval, [this] { return stopping.load(); });
    if (stopping) break;
    lock.unlock();
    // Here rather than on a delivery thread: copying a large backlog must
    // not hold up a delivery, nor stop() waiting for it.
    try {
      spool_held();
      bool holding;
      {
        std::lock_guard<std::mutex> held_lock(held_mutex);
        holding = !held.empty();
      }
      // A compaction now would drop the records of the outages whose
      // clears are only in memory.
      spool->maintain(!holding);
    } catch (const std::exception& ex) {
      log.error(std::string("spool maintenance: ") + ex.what());
    }
    lock.lock();
  }
}

void Delivery::State::spool_held() {
  std::lock_guard<std::mutex> lock(held_mutex);
  for (auto it = held.begin(); it != held.end();) {
    try {
      spool->append(it->second);
    } catch (const std::system_error&) {
      return;  // the spool logged it; tried again on the next tick
    }
    it = held.erase(it);
  }
}

void Delivery::State::refuse_no_room(Lane& lane, const Event& event, const std::string& why) {
  {
    std::lock_guard<std::mutex> l(lane.mutex);
    ++lane.dropped;
  }
  if (const auto held_back = no_room_errors.admit())
    log.error("integration " + event.integration + ": the spool cannot take new outage events (" + why + "); " +
              std::to_string(*held_back + 1) + " outage event(s) refused" + (*held_back > 0 ? " since the last report" : "") +
              "; paging resumes by itself when there is room");
}

void Delivery::State::refuse(Lane& lane, const Event& event) {
  {
    std::lock_guard<std::mutex> l(lane.mutex);
    ++lane.dropped;
  }
  std::lock_guard<std::mutex> lock(drop_mutex);
  ++dropped_since_log;
  const auto now = Steady::now();
  if (drop_logged && now - last_drop_log < kDropLogEvery) return;
  log.error("integration " + event.integration + ": queue full (QueueLimit " +
            std::to_string(config.queue_limit) + " undelivered events): refused the outage event of outage " +
            event.outage_id + "; " + std::to_string(dropped_since_log) + " outage event(s) refused" +
            (drop_logged ? " since the last report" : ""));
  drop_logged = true;
  last_drop_log = now;
  dropped_since_log = 0;
}

Delivery::Delivery(const Config& config, const std::string& spool_dir, Logger& log, DeliveryOptions options)
    : state_(std::make_unique<State>(config, log, options)) {
  State& s = *state_;
  s.dead_letter_path = spool_dir + "/dead-letter.jsonl";
  for (const auto& integration : config.integrations) {
    s.lanes.push_back(std::make_unique<Lane>(integration));
    s.by_name[integration.name] = s.lanes.back().get();
    s.max_timeout = std::max(s.max_timeout, duration_cast<milliseconds>(integration.timeout));
  }
  s.spool = std::make_unique<Spool>(spool_dir, log);

  struct Orphans {
    std::size_t moved = 0, kept = 0;
  };
  std::map<std::string, Orphans> orphans;
  std::size_t recovered = 0;
  for (auto& event : s.spool->take_recovered()) {
    auto lane = s.by_name.find(event.integration);
    if (lane == s.by_name.end()) {
      // Without its <Integration> there is no URL to send it to; kept in
      // the spool it would count against QueueLimit forever.
      if (s.write_dead_letter(event, event.body, "", 0, 0, "integration no longer configured", "")) {
        s.spool->acknowledge(event.event_id);
        ++orphans[event.integration].moved;
      } else {
        ++orphans[event.integration].kept;
      }
      continue;
    }
    lane->second->enqueue(without_body(std::move(event)));
    ++s.total_queued;
    ++recovered;
  }
  for (const auto& [name, o] : orphans) {
    std::string line = "integration " + name + " is no longer configured: " + std::to_string(o.moved) +
                       " spooled event(s) for it moved to " + s.dead_letter_path;
    if (o.kept > 0) line += "; " + std::to_string(o.kept) + " could not be written there and stay in the spool";
    log.error(line);
  }
  if (recovered > 0) log.info(std::to_string(recovered) + " undelivered event(s) recovered from the spool");
  s.recovered_changes = s.spool->take_recovered_changes();
}

Delivery::~Delivery() {
  try {
    stop();
  } catch (const std::exception& e) {
    state_->log.error(std::string("stopping delivery: ") + e.what());
  }
}

std::vector<std::string> Delivery::recovered_changes() const { return state_->recovered_changes; }

void Delivery::record_change(const std::string& record) { state_->spool->append_change(record); }

void Delivery::set_snapshot_source(std::function<std::string()> source) {
  state_->spool->set_snapshot_source(std::move(source));
}

bool Delivery::submit(Event event) {
  State& s = *state_;
  auto found = s.by_name.find(event.integration);
  if (found == s.by_name.end()) {
    s.log.error("event " + event.event_id + " names an unknown integration " + event.integration);
    return false;
  }
  Lane& lane = *found->second;
  if (!s.accepting) {
    s.log.warning("integration " + event.integration + ": delivery has stopped; " + event_type_name(event.type) +
                  " event of outage " + event.outage_id + " refused");
    return false;
  }
  if (event.type == EventType::Outage) {
    std::size_t n = s.total_queued.load();
    do {
      if (n >= s.config.queue_limit) {
        s.refuse(lane, event);
        return false;
      }
    } while (!s.total_queued.compare_exchange_weak(n, n + 1));
  } else {
    ++s.total_queued;  // a clear is never refused: its outage was paged
  }
  try {
    s.spool->append(event);
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::file_too_large) {
      --s.total_queued;
      throw;
    }
    if (event.type == EventType::Outage) {
      --s.total_queued;
      s.refuse_no_room(lane, event, e.what());
      return false;
    }
    // A clear is never lost: its outage closes, and it is sent from memory
    // until the spool can take it (a crash meanwhile: the outage is still
    // open in the spool, and collectd's OKAY after the restart clears it).
    if (const auto held_back = s.held_errors.admit())
      s.log.error("integration " + event.integration + ": the spool cannot take a clear (" + e.what() +
                  "); held in memory and sent from there" +
                  (*held_back > 0 ? " (and " + std::to_string(*held_back) + " more since the last report)" : ""));
    std::lock_guard<std::mutex> held_lock(s.held_mutex);
    s.held.emplace(event.event_id, event);
  } catch (...) {
    --s.total_queued;
    throw;
  }
  std::lock_guard<std::mutex> lock(lane.mutex);
  lane.enqueue(without_body(std::move(event)));
  return true;
}

void Delivery::start() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.control);
  if (s.started || s.stopped) return;
  s.started = true;
  for (auto& lane : s.lanes)
    for (int i = 0; i < std::max(1, lane->config.connections); ++i)
      lane->threads.emplace_back([&s, l = lane.get()] { s.worker(*l); });
  s.sync_thread = std::thread([&s] { s.sync_loop(); });
}

void Delivery::stop() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.control);
  if (s.stopped) return;
  s.stopped = true;
  s.accepting = false;
  s.stopping = true;
  // Under each mutex, so that no thread misses the wake-up between its check
  // and its wait.
  for (auto& lane : s.lanes) {
    std::lock_guard<std::mutex> l(lane->mutex);
    lane->wake.notify_all();
  }
  {
    std::lock_guard<std::mutex> l(s.sync_mutex);
    s.sync_wake.notify_all();
  }
  {
    // Requests in flight get up to Timeout to finish (curl's own time-out
    // ends them by then too); then they are aborted.
    std::unique_lock<std::mutex> f(s.flight_mutex);
    s.flight_done.wait_for(f, s.max_timeout, [&s] { return s.in_flight == 0; });
  }
  s.abort = true;
  for (auto& lane : s.lanes)
    for (auto& t : lane->threads)
      if (t.joinable()) t.join();
  if (s.sync_thread.joinable()) s.sync_thread.join();
  s.spool_held();
  s.spool->sync();
  for (auto& lane : s.lanes) {
    std::lock_guard<std::mutex> l(lane->mutex);
    if (lane->queued > 0)
      s.log.info("integration " + lane->config.name + ": " + std::to_string(lane->queued) +
                 " undelivered event(s) kept in the spool for the next start");
  }
}

DeliveryStats Delivery::stats(const std::string& integration) {
  DeliveryStats out;
  auto found = state_->by_name.find(integration);
  if (found == state_->by_name.end()) return out;
  Lane& lane = *found->second;
  std::lock_guard<std::mutex> lock(lane.mutex);
  out.queue_length = lane.queued;
  out.delivered = lane.delivered;
  out.retried = lane.retried;
  out.dead_lettered = lane.dead_lettered;
  out.dropped = lane.dropped;
  out.latency_seconds = lane.latency_count > 0 ? lane.latency_sum / static_cast<double>(lane.latency_count) : 0;
  lane.latency_sum = 0;
  lane.latency_count = 0;
  return out;
}

}  // namespace xmatters
