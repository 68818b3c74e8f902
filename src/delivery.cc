#include "delivery.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "background.h"
#include "dead_letter.h"
#include "flood_budget.h"
#include "flood_minute.h"
#include "http_client.h"
#include "lane.h"
#include "mutex.h"
#include "redact.h"
#include "reply.h"
#include "store.h"

// How it works. Each integration has a lane: its schedule of outages, each a
// FIFO of events (lane.h), and `Connections` worker threads, each owning one
// kept-alive libcurl handle. An outage is handed to at most one worker at a
// time and only its head event is sent, so an outage's events go out strictly
// in order while different outages go out in parallel. Blocking easy handles
// on a few threads were chosen over one curl multi loop: a worker's state is
// then just "the request in hand", and stop() bounds the wait with curl's own
// Timeout plus an abort flag checked by curl's progress callback.
//
// This file is the engine that ties the parts: the reply says what became of
// a request (reply.h), the lane says when each event goes next, the
// dead-letter file keeps what can never go (dead_letter.h), the store keeps
// everything until then (store.h).

namespace xmatters {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kStillFailingEvery = std::chrono::seconds(60);
// A Retry-After longer than this is worth a WARNING (at most one a minute).
constexpr auto kLongPause = std::chrono::seconds(60);

std::string seconds_text(Steady::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(d).count());
  return buf;
}

// An event as it waits in the queue: its body is in the spool, and is read
// back from there when the event is sent (see Spool::read_body).
Event without_body(Event event) {
  event.body.clear();
  event.body.shrink_to_fit();
  return event;
}

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

using LogLines = std::vector<std::pair<LogLevel, std::string>>;

// What a lane's log lines are held back by: a storm is a few lines a
// minute, not a line an event.
struct LaneLines {
  Steady::time_point last_failing_warning{};
  std::optional<Steady::time_point> last_long_pause_warning;
  // Deliveries' INFO lines (log_delivered): those of the window starting at
  // info_window, and those only at debug since, by type.
  Steady::time_point info_window{};
  unsigned info_lines = 0;
  std::uint64_t quiet[2] = {0, 0};
  // Dead-letter ERRORs: the last, and the letters written since, not in one.
  std::optional<Steady::time_point> last_dead_letter_error;
  std::uint64_t dead_letters_unreported = 0;
  std::string last_unreported;  // the last of those, as an ERROR would say it
  // When a summary of lines held back is due (report_held_back).
  Steady::time_point report_due = Steady::time_point::max();
  // The last ERROR saying the integration is paused.
  std::optional<Steady::time_point> last_paused_error;
};

// What stats() and status() report of a lane.
struct LaneCounts {
  unsigned failures_since_ok = 0;
  std::uint64_t delivered = 0, retried = 0, dead_lettered = 0, dropped = 0;
  double latency_sum = 0;  // since the last stats()
  std::uint64_t latency_count = 0;
  std::optional<IntegrationStatus::Delivered> last_delivery;
  std::optional<IntegrationStatus::Failure> last_failure;
  std::optional<TimePoint> failing_since;  // the first failure since the last delivery
};

struct Lane {
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

  Lane(const IntegrationConfig& c, const DeliveryOptions& o)
      : config(c),
        budget(std::make_shared<FloodBudget>(c.name, c.flood_limit)),
        schedule(Backoff(o.initial_backoff, o.max_backoff), budget) {}
};

}  // namespace

struct Delivery::State {
  const Config& config;
  Logger& log;
  DeliveryOptions options;
  std::unique_ptr<Store> owned_store;  // when the delivery opened its own
  Store* store = nullptr;             // set once the clients are made
  std::unique_ptr<DeadLetterFile> dead_letters;
  std::vector<std::unique_ptr<Lane>> lanes;
  std::unordered_map<std::string, Lane*> by_name;
  milliseconds max_timeout{0};

  std::atomic<bool> accepting{true};
  std::atomic<bool> stopping{false};
  std::atomic<bool> abort{false};  // cancels requests still in flight after the grace time

  Mutex control;  // start / stop
  bool started GUARDED_BY(control) = false;
  bool stopped GUARDED_BY(control) = false;

  Mutex flight_mutex;
  std::condition_variable flight_done;
  std::size_t in_flight GUARDED_BY(flight_mutex) = 0;

  State(const Config& c, Logger& l, DeliveryOptions o) : config(c), log(l), options(o) {}

  void worker(Lane& lane, HttpClient& client) EXCLUDES(lane.mutex);
  // Counts a request in flight for stop(), however its thread leaves it.
  class InFlight {
   public:
    explicit InFlight(State& s) : s_(s) {
      MutexLock f(s_.flight_mutex);
      ++s_.in_flight;
    }
    ~InFlight() {
      {
        MutexLock f(s_.flight_mutex);
        --s_.in_flight;
      }
      s_.flight_done.notify_all();
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    State& s_;
  };
  // The event leaves the spool (or the clears held in memory).
  void acknowledge(const Event& event);
  // Without the lane's mutex: the request takes its time.
  Outcome attempt(Lane& lane, HttpClient& client, const Pending& p, Mode mode) EXCLUDES(lane.mutex);
  // attempt(), whatever it throws a failed try, so that the outage is not
  // stuck in flight.
  Outcome try_attempt(Lane& lane, HttpClient& client, const Pending& p, Mode mode) noexcept EXCLUDES(lane.mutex) {
    Outcome o;
    try {
      o = attempt(lane, client, p, mode);
    } catch (const std::exception& ex) {
      o.result = stopping ? Result::Abandoned : Result::Retry;
      try {
        o.reason = std::string("internal error: ") + ex.what();
      } catch (const std::exception&) {
      }
    }
    return o;
  }
  // A dead letter written for o, and the event acknowledged when it was.
  void dead_letter(const Event& e, const std::string& body, const std::string& url, int attempts, Outcome& o);
  void settle(Lane& lane, const std::string& outage_id, const Pending& p, Outcome& o, LogLines& logs)
      REQUIRES(lane.mutex);
  // Records a request about to be made in the spool (FloodLimit's minute).
  void note_sent(Lane& lane, EventType type) noexcept EXCLUDES(lane.mutex);
  bool settle_test(Lane& lane, const std::string& outage_id, const Pending& p, const Outcome& o, LogLines& logs)
      REQUIRES(lane.mutex);
  void log_delivered(Lane& lane, const std::string& what, long status, const std::string& request_id,
                     EventType type, Steady::time_point now, LogLines& logs) REQUIRES(lane.mutex);
  void log_dead_letter(Lane& lane, const std::string& line, Steady::time_point now, LogLines& logs)
      REQUIRES(lane.mutex);
  // The summaries of lines held back whose time has come.
  void report_held_back(Lane& lane, Steady::time_point now, LogLines& logs) REQUIRES(lane.mutex);
  // Log lines gathered under the lane's mutex, written without it.
  void write(const LogLines& logs) noexcept;
  bool expired(const IntegrationConfig& c, const Pending& p) const {
    return Clock::now() - p.event.created - p.paced >= c.retry_max_age;
  }
  void count_refusal(Lane& lane) EXCLUDES(lane.mutex);
  // The lane of an event the operator sends (resend, test); throws
  // std::invalid_argument for an unknown integration, std::logic_error
  // after stop().
  Lane& lane_for_operator(const Event& event);
};

void Delivery::State::acknowledge(const Event& event) { store->acknowledge(event.event_id); }

void Delivery::State::write(const LogLines& logs) noexcept {
  try {
    for (const auto& [level, line] : logs) log.log(level, line);
  } catch (const std::exception&) {
    // Out of memory: the lines are lost, the delivery is not.
  }
}

Outcome Delivery::State::attempt(Lane& lane, HttpClient& client, const Pending& p, Mode mode) {
  const Event& e = p.event;
  const IntegrationConfig& c = lane.config;
  const std::string& url = e.type == EventType::Clear ? c.clear_url : c.outage_url;
  Outcome o;
  std::string body;
  try {
    // Made durable before it is sent (doc/storage.md).
    std::optional<std::string> spooled = store->body(e.event_id, mode != Mode::Expire);
    if (!spooled) throw std::runtime_error("it is no longer in the spool");
    body = std::move(*spooled);
  } catch (const std::system_error& ex) {
    o.result = stopping || mode == Mode::Test ? Result::Abandoned : Result::Retry;
    o.reason = std::string("cannot read it from the spool: ") + ex.what();
    if (mode == Mode::Test) acknowledge(e);
    return o;
  } catch (const std::runtime_error& ex) {
    o.reason = ex.what();
    if (mode == Mode::Test) {
      o.result = Result::Tested;
      acknowledge(e);
      return o;
    }
    // It can never be sent; its outage's later events (the clear) still can.
    o.result = Result::DeadLetter;
    dead_letter(e, body, "", p.attempts, o);
    return o;
  }
  if (mode == Mode::Expire) {
    // Its integration is paused: given up without a request.
    o.http.status = lane.paused;
    o.reason = "not delivered within RetryMaxAge (" + std::to_string(c.retry_max_age.count()) +
               " s) while the integration is paused; last attempt: " + p.last_error;
    o.result = Result::DeadLetter;
    dead_letter(e, body, url, p.attempts, o);
    return o;
  }
  o.http = client.post(url, body, e.event_id);
  const Verdict v = classify(o.http);
  o.reason = client.scrub(v.reason);  // it goes to log lines and the dead letter
  o.retry_after = v.after;
  if (v.kind == Verdict::Kind::Delivered) {
    o.result = Result::Delivered;
    acknowledge(e);
    // The dead letters of its outage, if any, record that it has cleared.
    if (e.type == EventType::Clear && !dead_letters->mark_cleared(e, body))
      log.warning("integration " + c.name + ": outage " + e.outage_id + " has cleared, but " +
                  dead_letters->path() + " cannot be written to say so");
    return o;
  }
  if (mode == Mode::Test) {
    o.result = stopping ? Result::Abandoned : Result::Tested;
    acknowledge(e);
    return o;
  }
  if (v.kind != Verdict::Kind::DeadLetter) {
    if (stopping) {
      o.result = Result::Abandoned;
      return o;
    }
    if (Clock::now() - e.created - p.paced < c.retry_max_age) {
      o.result = v.kind == Verdict::Kind::Pause ? Result::Pause : Result::Retry;
      return o;
    }
    o.reason = "not delivered within RetryMaxAge (" + std::to_string(c.retry_max_age.count()) +
               " s); last attempt: " + o.reason;
  }
  // Dead letter: written and acknowledged before the outage's next event goes.
  o.result = Result::DeadLetter;
  dead_letter(e, body, url, p.attempts + 1, o);
  return o;
}

void Delivery::State::dead_letter(const Event& e, const std::string& body, const std::string& url, int attempts,
                                  Outcome& o) {
  const DeadLetterFile::Written w =
      dead_letters->write({e, body, url, attempts, o.http.status, o.reason, o.http.reply_start});
  o.dead_letter_written = w.ok;
  o.dead_letters_dropped = w.dropped;
  if (w.ok) acknowledge(e);
}

// Every page and clear delivered is one INFO line, so that "did the 03:12
// page go out?" is answered at Debian's default log level; but at most
// options.delivered_info_lines (10) per integration a minute, then at debug and counted
// in one summary line (report_held_back): a line per event through
// collectd's logfile plugin was about a fifth of the delivery threads' CPU
// in a storm (doc/benchmarks.md).
void Delivery::State::log_delivered(Lane& lane, const std::string& what, long status,
                                    const std::string& request_id, EventType type, Steady::time_point now,
                                    LogLines& logs) {
  std::string line = "integration " + lane.config.name + ": delivered " + what + ": HTTP " + std::to_string(status) +
                     ", requestId " + (request_id.empty() ? "none" : request_id);
  if (now - lane.lines.info_window >= options.delivered_info_window) {
    report_held_back(lane, now, logs);
    lane.lines.info_window = now;
    lane.lines.info_lines = 0;
  }
  if (lane.lines.info_lines < options.delivered_info_lines) {
    ++lane.lines.info_lines;
    logs.emplace_back(LogLevel::Info, std::move(line));
    return;
  }
  ++lane.lines.quiet[type == EventType::Clear ? 1 : 0];
  lane.lines.report_due = std::min(lane.lines.report_due, lane.lines.info_window + options.delivered_info_window);
  logs.emplace_back(LogLevel::Debug, std::move(line));
}

// One ERROR per options.dead_letter_error_every (10 s) at most; the letters in between are
// counted in the next, or in report_held_back's line when none comes.
void Delivery::State::log_dead_letter(Lane& lane, const std::string& line, Steady::time_point now,
                                      LogLines& logs) {
  if (lane.lines.last_dead_letter_error && now - *lane.lines.last_dead_letter_error < options.dead_letter_error_every) {
    ++lane.lines.dead_letters_unreported;
    lane.lines.last_unreported = line;
    lane.lines.report_due = std::min(lane.lines.report_due, *lane.lines.last_dead_letter_error + options.dead_letter_error_every);
    logs.emplace_back(LogLevel::Debug, line);
    return;
  }
  std::string text = line;
  if (lane.lines.dead_letters_unreported > 0)
    text += " (and " + std::to_string(lane.lines.dead_letters_unreported) + " more dead-lettered since the last such line)";
  lane.lines.dead_letters_unreported = 0;
  lane.lines.last_dead_letter_error = now;
  logs.emplace_back(LogLevel::Error, std::move(text));
}

void Delivery::State::report_held_back(Lane& lane, Steady::time_point now, LogLines& logs) {
  const std::string prefix = "integration " + lane.config.name + ": ";
  if (lane.lines.dead_letters_unreported > 0 && lane.lines.last_dead_letter_error &&
      now - *lane.lines.last_dead_letter_error >= options.dead_letter_error_every) {
    logs.emplace_back(LogLevel::Error, prefix + std::to_string(lane.lines.dead_letters_unreported) +
                                           " more event(s) dead-lettered since the last such line, the last: " +
                                           lane.lines.last_unreported.substr(prefix.size()));
    lane.lines.dead_letters_unreported = 0;
    lane.lines.last_unreported.clear();
    lane.lines.last_dead_letter_error = now;
  }
  const std::uint64_t quiet = lane.lines.quiet[0] + lane.lines.quiet[1];
  if (quiet > 0 && now - lane.lines.info_window >= options.delivered_info_window) {
    std::string line = prefix + std::to_string(quiet) + " more event(s) delivered in the minute since the first " +
                       std::to_string(options.delivered_info_lines) + " (" + std::to_string(lane.lines.quiet[0]) + " outage, " +
                       std::to_string(lane.lines.quiet[1]) + " clear), logged at debug only";
    if (const std::size_t paced = lane.schedule.paced(); paced > 0)
      line += "; " + std::to_string(paced) + " wait for FloodLimit " + std::to_string(lane.config.flood_limit);
    logs.emplace_back(LogLevel::Info, std::move(line));
    lane.lines.quiet[0] = lane.lines.quiet[1] = 0;
    // A new window: the next deliveries have their lines again.
    lane.lines.info_window = now;
    lane.lines.info_lines = 0;
  }
  lane.lines.report_due = Steady::time_point::max();
  if (lane.lines.dead_letters_unreported > 0 && lane.lines.last_dead_letter_error)
    lane.lines.report_due = *lane.lines.last_dead_letter_error + options.dead_letter_error_every;
  if (lane.lines.quiet[0] + lane.lines.quiet[1] > 0)
    lane.lines.report_due = std::min(lane.lines.report_due, lane.lines.info_window + options.delivered_info_window);
}

// A test event's first answer goes to its future, whatever it is; it is
// then out of the lane (and the spool), delivered or not. False when p is
// not a test event, or was delivered (settled then as any delivery).
bool Delivery::State::settle_test(Lane& lane, const std::string& outage_id, const Pending& p, const Outcome& o,
                                  LogLines& logs) {
  const auto found = lane.tests.find(p.event.event_id);
  if (found == lane.tests.end()) return false;
  FirstAnswer answer;
  answer.delivered = o.result == Result::Delivered;
  answer.status = o.http.status;
  answer.request_id = o.http.request_id;
  if (!answer.delivered) answer.reason = o.reason.empty() ? "delivery stopped" : o.reason;
  found->second.set_value(answer);
  lane.tests.erase(found);
  if (answer.delivered) return false;
  logs.emplace_back(LogLevel::Warning, "integration " + lane.config.name + ": test " +
                                           event_type_name(p.event.type) + " event " + p.event.event_id +
                                           " not delivered: " + answer.reason);
  lane.counts.last_failure = IntegrationStatus::Failure{Clock::now(), answer.reason};
  lane.schedule.pop(outage_id, Steady::now());
  store->release();
  return true;
}

void Delivery::State::settle(Lane& lane, const std::string& outage_id, const Pending& p, Outcome& o,
                             LogLines& logs) {
  const Event& e = p.event;
  const IntegrationConfig& c = lane.config;
  const bool test = lane.tests.count(e.event_id) > 0;
  const std::string what = std::string(test ? "test " : "") + event_type_name(e.type) + " event " + e.event_id +
                           " of outage " + e.outage_id;
  const std::string prefix = "integration " + c.name + ": ";
  const std::string& url = e.type == EventType::Clear ? c.clear_url : c.outage_url;
  const auto now = Steady::now();
  if (settle_test(lane, outage_id, p, o, logs)) return;
  if (o.result != Result::Delivered && o.result != Result::Abandoned) {
    lane.counts.last_failure = IntegrationStatus::Failure{Clock::now(), o.reason};
    if (!lane.counts.failing_since) lane.counts.failing_since = lane.counts.last_failure->time;
  }

  switch (o.result) {
    case Result::Abandoned:
    case Result::Tested:  // only for tests, settled above
      lane.schedule.release(outage_id, now);
      logs.emplace_back(LogLevel::Info, prefix + what + " left in the spool for the next start");
      return;

    case Result::Pause: {
      // The integration, not the event: it waits in its place, and the
      // whole lane with it, tried again with one request a minute.
      ++lane.counts.retried;
      ++lane.counts.failures_since_ok;
      lane.paused = o.http.status;
      lane.schedule.note_error(outage_id, o.reason);
      lane.schedule.hold(now + options.paused_retry_every);
      // Due at once, held back by the hold only: a success (a test) resumes all.
      lane.schedule.release(outage_id, now, p.attempts + 1);
      if (!lane.lines.last_paused_error || now - *lane.lines.last_paused_error >= options.paused_retry_every) {
        lane.lines.last_paused_error = now;
        logs.emplace_back(LogLevel::Error,
                          prefix + "paused: " + o.reason + " from " + redact_url(url) + "; " +
                              std::to_string(lane.schedule.queued()) +
                              " event(s) waiting, kept in order; one request a minute tries again, and delivery "
                              "resumes by itself once the integration accepts it (RetryMaxAge " +
                              std::to_string(c.retry_max_age.count()) + " s still applies)");
      }
      return;
    }

    case Result::Retry: {
      const int attempts = p.attempts + 1;
      ++lane.counts.retried;
      ++lane.counts.failures_since_ok;
      lane.schedule.note_error(outage_id, o.reason);
      std::optional<Steady::duration> asked;
      // Honoured up to the backoff ceiling, and never past the time the
      // event would be given up.
      if (o.retry_after) asked = duration_cast<Steady::duration>(std::min<seconds>(*o.retry_after, c.retry_max_age));
      const auto left = duration_cast<Steady::duration>(e.created + c.retry_max_age - Clock::now()) + p.paced;
      const auto delay = lane.schedule.retry(outage_id, attempts, asked, left, now);
      // A paused integration that does not answer stays paused.
      if (lane.schedule.held()) lane.schedule.hold(now + options.paused_retry_every);
      if (o.retry_after && *o.retry_after > kLongPause &&
          (!lane.lines.last_long_pause_warning || now - *lane.lines.last_long_pause_warning >= kStillFailingEvery)) {
        lane.lines.last_long_pause_warning = now;
        logs.emplace_back(LogLevel::Warning,
                          prefix + "Retry-After asks to wait " + std::to_string(o.retry_after->count()) +
                              " s; delivery paused for " +
                              seconds_text(std::min<Steady::duration>(*o.retry_after, options.max_backoff)) +
                              ", the most it pauses");
      }
      const std::string line = prefix + what + " not delivered (" + o.reason + "); retry " +
                               std::to_string(attempts) + " in " + seconds_text(delay);
      if (lane.counts.failures_since_ok == 1 && attempts == 1) {
        logs.emplace_back(LogLevel::Warning, line + "; sending to " + redact_url(url));
        lane.lines.last_failing_warning = now;
      } else if (now - lane.lines.last_failing_warning >= kStillFailingEvery) {
        logs.emplace_back(LogLevel::Warning, prefix + "delivery still failing (" + o.reason + "); " +
                                                 std::to_string(lane.schedule.queued()) + " events waiting");
        lane.lines.last_failing_warning = now;
      } else {
        logs.emplace_back(LogLevel::Debug, line);
      }
      return;
    }

    case Result::DeadLetter:
      if (!o.dead_letter_written) {
        // The event stays at its outage's head, so that nothing of the
        // outage (its clear) overtakes it; the whole attempt is made again
        // later, when the disk may have room.
        const auto delay = lane.schedule.backoff(static_cast<unsigned>(p.attempts + 1));
        lane.schedule.release(outage_id, now + delay, p.attempts + 1);
        logs.emplace_back(LogLevel::Error, prefix + what + " should be dead-lettered (" + o.reason + ") but " +
                                               dead_letters->path() + " cannot be written; trying again in " +
                                               seconds_text(delay));
        return;
      }
      ++lane.counts.dead_lettered;
      if (o.dead_letters_dropped > 0)
        logs.emplace_back(LogLevel::Warning, dead_letters->path() + " reached DeadLetterLimit (" +
                                                 std::to_string(config.dead_letter_limit) + " bytes): its oldest " +
                                                 std::to_string(o.dead_letters_dropped) + " line(s) dropped");
      // The reason carries the status and the start of the reply.
      log_dead_letter(lane,
                      prefix + what + " dead-lettered: " + o.reason +
                          (o.http.status != 0 && o.http.reply_start.empty() ? " (empty reply)" : "") +
                          "; sent to " + redact_url(url) + "; kept in " + dead_letters->path(),
                      now, logs);
      // The integration answered: it is not refusing the plugin (any more).
      if (lane.schedule.held() && o.http.status != 0 && o.http.status != lane.paused) {
        lane.paused = 0;
        lane.schedule.resume();
      }
      break;

    case Result::Delivered:
      ++lane.counts.delivered;
      lane.counts.latency_sum += std::chrono::duration<double>(Clock::now() - e.created).count();
      ++lane.counts.latency_count;
      lane.counts.last_delivery =
          IntegrationStatus::Delivered{Clock::now(), o.http.status, o.http.request_id, e.type, e.outage_id};
      lane.counts.failing_since.reset();
      if (lane.paused != 0)
        logs.emplace_back(LogLevel::Notice, prefix + "accepted again (HTTP " + std::to_string(o.http.status) +
                                                "): delivery resumed, " +
                                                std::to_string(lane.schedule.queued() - 1) + " event(s) waiting");
      else if (lane.counts.failures_since_ok > 0)
        logs.emplace_back(LogLevel::Notice, prefix + "delivering again after " +
                                                std::to_string(lane.counts.failures_since_ok) + " failed attempts");
      log_delivered(lane, what, o.http.status, o.http.request_id, e.type, now, logs);
      lane.counts.failures_since_ok = 0;
      lane.paused = 0;
      lane.schedule.resume();
      break;
  }
  lane.schedule.pop(outage_id, now);
  store->release();
}

// An idle worker sleeps until its lane's next event is due, or until
// submit() wakes it because a new event is due sooner than that (which, in
// a burst, is only its first event: the others find a worker awake). A
// worker that takes an event and sees another due wakes a peer, so a burst
// spreads over the Connections. An idle plugin does not wake at all; a
// summary of log lines held back, or a paused lane's expired events, wake
// it when due.
void Delivery::State::worker(Lane& lane, HttpClient& client) {
  run_in_background("xm-" + lane.config.name);
  const std::string prefix = "integration " + lane.config.name + ": ";
  try {
    MutexLock lock(lane.mutex);
    while (!stopping) {
      std::string outage_id;  // set while this thread holds an outage in flight
      std::vector<LaneSchedule::Taken> taken;
      std::size_t i = 0;  // taken[i] is in hand, those after it wait
      try {
        const auto now = Steady::now();
        if (lane.lines.report_due <= now) {
          LogLines logs;
          report_held_back(lane, now, logs);
          lock.unlock();
          write(logs);
          lock.lock();
          continue;
        }
        Mode mode = Mode::Send;
        if (lane.schedule.held() && lane.next_expiry_sweep <= now) {
          lane.next_expiry_sweep = now + options.paused_retry_every;
          taken = lane.schedule.take_expired([&](const Pending& p) { return expired(lane.config, p); });
          mode = Mode::Expire;
        }
        if (taken.empty()) {
          auto due = std::min(lane.schedule.next_due(), lane.lines.report_due);
          if (lane.schedule.held()) due = std::min(due, lane.next_expiry_sweep);
          if (due > now) {
            if (due == Steady::time_point::max())
              lock.wait(lane.wake);
            else
              lock.wait_until(lane.wake, due);
            continue;
          }
          std::optional<LaneSchedule::Taken> one = lane.schedule.take(now);
          if (!one) continue;
          if (lane.schedule.next_due() <= now) lane.wake.notify_one();
          mode = lane.tests.count(one->head.event.event_id) > 0 ? Mode::Test : Mode::Send;
          taken.push_back(std::move(*one));
        }
        // stop() gives requests in flight time to finish, but not a test's:
        // nobody waits for its answer then, and it is never sent again.
        std::optional<InFlight> counted;
        if (mode != Mode::Test) counted.emplace(*this);
        for (; i < taken.size(); ++i) {
          outage_id = taken[i].outage_id;
          const Pending& p = taken[i].head;
          lock.unlock();
          if (mode != Mode::Expire) note_sent(lane, p.event.type);
          Outcome o = try_attempt(lane, client, p, mode);
          LogLines logs;
          lock.lock();
          settle(lane, outage_id, p, o, logs);
          outage_id.clear();
          lock.unlock();
          write(logs);
          lock.lock();
        }
      } catch (const std::exception& ex) {
        // Out of memory half way through: the outage must not stay in
        // flight, or none of its events would ever go again.
        // (Nothing between an unlock and its lock above throws.)
        if (!outage_id.empty()) lane.schedule.release(outage_id, Steady::now() + options.initial_backoff);
        for (std::size_t j = i + 1; j < taken.size(); ++j) lane.schedule.release(taken[j].outage_id, Steady::now());
        lock.unlock();
        log.error(prefix + "delivery interrupted (" + ex.what() + "); trying again");
        lock.lock();
      }
    }
  } catch (const std::exception& ex) {
    log.error(prefix + "delivery thread failed: " + ex.what());
  }
}

void Delivery::State::count_refusal(Lane& lane) {
  MutexLock l(lane.mutex);
  ++lane.counts.dropped;
}

Delivery::Delivery(const Config& config, const std::string& spool_dir, Logger& log, DeliveryOptions options)
    : Delivery(config, nullptr, spool_dir, log, options) {}

Delivery::Delivery(const Config& config, Store& store, const std::string& spool_dir, Logger& log,
                   DeliveryOptions options)
    : Delivery(config, &store, spool_dir, log, options) {}

Delivery::Delivery(const Config& config, Store* store, const std::string& spool_dir, Logger& log,
                   DeliveryOptions options)
    : state_(std::make_unique<State>(config, log, options)) {
  State& s = *state_;
  s.dead_letters = std::make_unique<DeadLetterFile>(spool_dir + "/dead-letter.jsonl", config.dead_letter_limit);
  for (const auto& integration : config.integrations) {
    s.lanes.push_back(std::make_unique<Lane>(integration, options));
    Lane& lane = *s.lanes.back();
    s.by_name[integration.name] = &lane;
    s.max_timeout = std::max(s.max_timeout, duration_cast<milliseconds>(integration.timeout));
    // Here, so that a client that cannot be made fails the plugin's init
    // instead of ending its thread while events keep being spooled.
    try {
      for (int i = 0; i < std::max(1, integration.connections); ++i)
        lane.clients.push_back(std::make_unique<HttpClient>(integration, &s.abort));
    } catch (const std::exception& e) {
      throw std::runtime_error("integration " + integration.name + ": cannot set up its connections: " + e.what());
    }
  }
  // Opened only once the clients are made: a plugin that cannot start
  // leaves no SpoolDir behind.
  if (!store) {
    s.owned_store = std::make_unique<Store>(spool_dir, config.queue_limit, log, StoreOptions{options.sync_interval});
    store = s.owned_store.get();
  }
  s.store = store;

  // Events of an integration that is no longer configured stay in the
  // spool, not queued: its name restored sends them (its open outages are
  // kept likewise, collectd-xmatters(5) OUTAGES).
  std::map<std::string, std::size_t> kept;
  std::size_t recovered = 0;
  // A letter whose event is in the spool was being sent again (resend)
  // when the plugin stopped: it leaves the file now, so that it cannot be
  // sent again twice.
  const std::set<std::string> letters = s.dead_letters->load();
  std::set<std::string> resent;
  std::vector<Event> events = s.store->take_recovered();
  // But one that resend skipped (its outage has cleared) and had not taken
  // back out when collectd was killed is not sent, and its letter stays.
  std::set<std::string> skipped;
  if (std::any_of(events.begin(), events.end(), [&](const Event& e) { return letters.count(e.event_id) > 0; })) {
    try {
      skipped = skipped_resends(events, read_dead_letters(s.dead_letters->path()));
    } catch (const std::system_error& e) {
      log.warning("cannot read " + s.dead_letters->path() + " (" + e.what() + "): events resent are all sent");
    }
  }
  for (auto& event : events) {
    if (skipped.count(event.event_id) > 0) {
      s.store->acknowledge(event.event_id);
      continue;
    }
    if (letters.count(event.event_id) > 0) resent.insert(event.event_id);
    auto lane = s.by_name.find(event.integration);
    if (lane == s.by_name.end()) {
      ++kept[event.integration];
      continue;
    }
    // An older run may have left two pages of one outage queued.
    Lane& l = *lane->second;
    std::optional<Event> replaced;
    {
      MutexLock lock(l.mutex);  // no thread yet; for the analysis
      replaced = l.schedule.enqueue(without_body(std::move(event)));
    }
    if (replaced)
      s.store->acknowledge(replaced->event_id);
    else
      s.store->add();
    ++recovered;
  }
  for (const auto& [name, count] : kept)
    log.warning("integration " + name + " is not configured: " + std::to_string(count) +
                " undelivered event(s) for it are kept in the spool until it is again");
  if (recovered > 0) log.info(std::to_string(recovered) + " undelivered event(s) recovered from the spool");
  if (!skipped.empty())
    log.info(std::to_string(skipped.size()) + " outage event(s) left by a resend that skipped them (their outage " +
             "has cleared) dropped; their dead letters stay");
  if (!resent.empty() && !s.dead_letters->remove(resent))
    log.error(std::to_string(resent.size()) + " event(s) queued again are still in " + s.dead_letters->path() +
              ", which cannot be rewritten: do not resend them");
  // FloodLimit's minute goes on from the requests the last run sent in it
  // (collectd-xmatters(5) OUTAGES), and compaction keeps them.
  for (const auto& lane : s.lanes) lane->budget->recover(s.store->recovered_changes(), Steady::now(), Clock::now());
  set_snapshot_source(nullptr);
}

Delivery::~Delivery() {
  try {
    stop();
  } catch (const std::exception& e) {
    state_->log.error(std::string("stopping delivery: ") + e.what());
  }
}

std::vector<std::string> Delivery::recovered_changes() const { return state_->store->recovered_changes(); }

std::shared_ptr<FloodBudget> Delivery::flood_budget(const std::string& integration) const {
  const auto found = state_->by_name.find(integration);
  return found == state_->by_name.end() ? nullptr : found->second->budget;
}

void Delivery::record_change(const std::string& record) { state_->store->record_change(record); }

void Delivery::record_durably(const std::string& record) { state_->store->record_durably(record); }

void Delivery::set_snapshot_source(SnapshotSource source) {
  State& s = *state_;
  // The outage table, then FloodLimit's minute: the requests still in it.
  s.store->set_snapshot_source([&s, source = std::move(source)](SnapshotWriter write) {
    if (source) source(write);
    const TimePoint now = Clock::now();
    for (const auto& lane : s.lanes) lane->budget->snapshot(now, write);
  });
}

void Delivery::State::note_sent(Lane& lane, EventType type) noexcept {
  if (!lane.budget->limited()) return;
  // Before the request, so that a crash during it still counts it; no
  // sync of its own (the next event's covers it; a crash of collectd
  // keeps what the page cache has).
  try {
    store->record_change(encode_flood_send(FloodSend{lane.config.name, type, Clock::now()}));
  } catch (const std::exception&) {
    // A full disk: the request goes anyway; only a restart within the
    // minute could then send more than FloodLimit.
  }
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
  // A page that will replace its outage's queued page takes no new room
  // under QueueLimit (checked again when it is queued: a delivery thread may
  // take the queued one meanwhile).
  bool counted = true;
  if (event.type == EventType::Outage) {
    {
      MutexLock lock(lane.mutex);
      counted = !lane.schedule.has_queued_page(event.outage_id);
    }
    if (counted && !s.store->take_room(event)) {
      s.count_refusal(lane);
      return false;
    }
  } else {
    s.store->add();  // a clear is never refused: its outage was paged
  }
  // A clear the spool cannot take is held in memory by the store.
  Store::Accepted accepted;
  try {
    accepted = s.store->accept(event);
  } catch (...) {
    if (counted) s.store->release();
    throw;
  }
  if (accepted == Store::Accepted::NoRoom) {
    if (counted) s.store->release();
    s.count_refusal(lane);
    return false;
  }
  bool wake;
  std::optional<Event> replaced;
  {
    MutexLock lock(lane.mutex);
    const auto due_before = lane.schedule.next_due();
    replaced = lane.schedule.enqueue(without_body(std::move(event)));
    wake = lane.schedule.next_due() < due_before;
  }
  if (wake) lane.wake.notify_one();
  if (replaced) {
    // Its change needs no recording first: the new page carries a newer
    // change of the same outage (and collectd's thread is inside the
    // tracker here).
    s.store->acknowledge(replaced->event_id);
    if (counted) s.store->release();
  } else if (!counted) {
    s.store->add();
  }
  return true;
}

void Delivery::start() {
  State& s = *state_;
  MutexLock lock(s.control);
  if (s.started || s.stopped) return;
  s.started = true;
  for (auto& lane : s.lanes)
    for (auto& client : lane->clients)
      lane->threads.emplace_back([&s, l = lane.get(), c = client.get()] { s.worker(*l, *c); });
  s.store->start();
}

void Delivery::stop() {
  State& s = *state_;
  MutexLock lock(s.control);
  if (s.stopped) return;
  s.stopped = true;
  s.accepting = false;
  s.stopping = true;
  // Under each mutex, so that no thread misses the wake-up between its check
  // and its wait.
  for (auto& lane : s.lanes) {
    MutexLock l(lane->mutex);
    lane->wake.notify_all();
  }
  {
    // Requests in flight get up to Timeout to finish (curl's own time-out
    // ends them by then too); then they are aborted.
    MutexLock f(s.flight_mutex);
    const auto deadline = Steady::now() + s.max_timeout;
    while (s.in_flight > 0 && f.wait_until(s.flight_done, deadline) != std::cv_status::timeout) {
    }
  }
  s.abort = true;
  for (auto& lane : s.lanes)
    for (auto& t : lane->threads)
      if (t.joinable()) t.join();
  // Test events not answered: answered now, and not sent at the next start.
  for (auto& lane : s.lanes) {
    MutexLock l(lane->mutex);
    for (auto& [event_id, answer] : lane->tests) {
      FirstAnswer stopped;
      stopped.reason = "delivery stopped before it was sent";
      answer.set_value(stopped);
      s.store->acknowledge(event_id);
    }
    lane->tests.clear();
  }
  // What is held in memory is spooled, the spool synced.
  s.store->stop();
  for (auto& lane : s.lanes) {
    MutexLock l(lane->mutex);
    if (lane->schedule.queued() > 0)
      s.log.info("integration " + lane->config.name + ": " + std::to_string(lane->schedule.queued()) +
                 " undelivered event(s) kept in the spool for the next start");
  }
}

DeliveryStats Delivery::stats(const std::string& integration) {
  DeliveryStats out;
  auto found = state_->by_name.find(integration);
  if (found == state_->by_name.end()) return out;
  Lane& lane = *found->second;
  MutexLock lock(lane.mutex);
  out.queue_length = lane.schedule.queued();
  out.delivered = lane.counts.delivered;
  out.retried = lane.counts.retried;
  out.dead_lettered = lane.counts.dead_lettered;
  out.dropped = lane.counts.dropped;
  out.latency_seconds = lane.counts.latency_count > 0 ? lane.counts.latency_sum / static_cast<double>(lane.counts.latency_count) : 0;
  lane.counts.latency_sum = 0;
  lane.counts.latency_count = 0;
  return out;
}

std::vector<IntegrationStatus> Delivery::status() const {
  std::vector<IntegrationStatus> out;
  const auto now = Steady::now();
  for (const auto& lane : state_->lanes) {
    IntegrationStatus st;
    st.name = lane->config.name;
    MutexLock lock(lane->mutex);
    st.queued = lane->schedule.queued();
    lane->schedule.for_each([&](const Pending& p, bool, std::optional<Steady::time_point>) {
      if (!st.oldest_queued || p.event.created < *st.oldest_queued) st.oldest_queued = p.event.created;
    });
    st.dead_lettered = lane->counts.dead_lettered;
    st.last_delivery = lane->counts.last_delivery;
    st.last_failure = lane->counts.last_failure;
    st.failing_since = lane->counts.failing_since;
    if (lane->paused != 0) st.paused = lane->paused.load();
    st.flood_limit = lane->schedule.flood_limit();
    st.flood_used_outage = lane->schedule.flood_used(EventType::Outage, now);
    st.flood_used_clear = lane->schedule.flood_used(EventType::Clear, now);
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<QueuedEvent> Delivery::queue() const {
  std::vector<QueuedEvent> out;
  const auto steady_now = Steady::now();
  const auto wall_now = Clock::now();
  for (const auto& lane : state_->lanes) {
    MutexLock lock(lane->mutex);
    lane->schedule.for_each([&](const Pending& p, bool in_flight, std::optional<Steady::time_point> next) {
      QueuedEvent q;
      q.event_id = p.event.event_id;
      q.outage_id = p.event.outage_id;
      q.integration = p.event.integration;
      q.type = p.event.type;
      q.created = p.event.created;
      q.attempts = p.attempts;
      q.in_flight = in_flight;
      if (next) q.next_attempt = wall_now + duration_cast<Clock::duration>(std::max(*next, steady_now) - steady_now);
      q.last_error = p.last_error;
      out.push_back(std::move(q));
    });
  }
  return out;
}

std::set<std::pair<std::string, std::string>> Delivery::paced_outages() const {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& lane : state_->lanes) {
    MutexLock lock(lane->mutex);
    lane->schedule.for_each_paced([&](const std::string& id) { out.emplace(lane->config.name, id); });
  }
  return out;
}

Lane& Delivery::State::lane_for_operator(const Event& event) {
  const auto found = by_name.find(event.integration);
  if (found == by_name.end()) throw std::invalid_argument("no integration " + event.integration + " is configured");
  if (!accepting) throw std::logic_error("delivery has stopped");
  return *found->second;
}

Delivery::Resent Delivery::resend(std::vector<Event> events, const std::set<std::string>& letters) {
  State& s = *state_;
  std::vector<Lane*> lanes;
  for (Event& e : events) {
    lanes.push_back(&s.lane_for_operator(e));
    e.change.clear();  // its outage's state is the tracker's, not the letter's
    e.created = Clock::now();
    e.not_before = {};
  }
  // In the spool, durably, before the letters leave the file: a crash in
  // between leaves both, and the next start removes the letters.
  std::vector<std::string> appended;
  try {
    for (const Event& e : events) {
      s.store->append(e);
      appended.push_back(e.event_id);
    }
    for (const Event& e : events)
      if (!s.store->make_durable(e.event_id))
        throw std::system_error(std::make_error_code(std::errc::io_error), "cannot sync the spool");
  } catch (...) {
    for (const std::string& id : appended) s.store->acknowledge(id);
    throw;
  }
  s.store->add(events.size());
  // Outages sent again with their clear (--include-cleared): those go
  // whatever happened since.
  std::set<std::pair<std::string, std::string>> with_clear;
  for (const Event& e : events)
    if (e.type == EventType::Clear) with_clear.emplace(e.integration, e.outage_id);
  std::map<Lane*, std::vector<Event>> by_lane;
  for (std::size_t i = 0; i < events.size(); ++i) by_lane[lanes[i]].push_back(without_body(std::move(events[i])));
  Resent r;
  {
    // Decided as they are queued, no clear marked meanwhile: a clear
    // delivered since the letters were read (marked), or in flight now
    // (marked once answered), goes before the outage event, which would then
    // page for a resolved outage that nothing clears.
    const DeadLetterFile::MarksHeld marks = s.dead_letters->hold_marks();
    for (auto& [lane, queued] : by_lane) {
      {
        MutexLock lock(lane->mutex);
        std::set<std::string> clearing;  // outages whose clear is in flight
        lane->schedule.for_each([&clearing](const Pending& p, bool in_flight, std::optional<Steady::time_point>) {
          if (in_flight && p.event.type == EventType::Clear) clearing.insert(p.event.outage_id);
        });
        std::vector<Event> kept;
        for (Event& e : queued) {
          if (e.type == EventType::Outage && with_clear.count({e.integration, e.outage_id}) == 0 &&
              (clearing.count(e.outage_id) > 0 || marks.cleared(e)))
            r.skipped.push_back(std::move(e));
          else
            kept.push_back(std::move(e));
        }
        lane->schedule.enqueue_front(std::move(kept));
      }
      lane->wake.notify_one();
    }
  }
  std::set<std::string> leaving = letters;
  for (const Event& e : r.skipped) {
    s.acknowledge(e);
    s.store->release();
    leaving.erase(e.event_id);
  }
  if (s.dead_letters->remove(leaving)) return r;
  s.log.error(std::to_string(leaving.size()) + " dead letter(s) sent again are still in " + s.dead_letters->path() +
              ", which cannot be rewritten: do not resend them");
  r.rewritten = false;
  return r;
}

std::future<FirstAnswer> Delivery::test(Event event) {
  State& s = *state_;
  Lane& lane = s.lane_for_operator(event);
  event.change.clear();  // it opens no outage
  event.not_before = {};
  event.test = true;  // not sent after a restart (doc/storage.md)
  s.store->append(event);
  s.store->add();
  std::promise<FirstAnswer> answer;
  std::future<FirstAnswer> future = answer.get_future();
  {
    MutexLock lock(lane.mutex);
    lane.tests.emplace(event.event_id, std::move(answer));
    lane.schedule.enqueue_urgent(without_body(std::move(event)));
  }
  lane.wake.notify_all();
  return future;
}

}  // namespace xmatters
