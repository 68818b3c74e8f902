// What becomes of an event after its attempt (delivery_engine.h): its lane
// told (acknowledged and popped, retried after a backoff, held while the
// integration is paused), its statistics, and its log lines, held back by
// LaneLines (delivery_log.h).
#include <algorithm>
#include <cstdio>

#include "delivery/delivery_engine.h"
#include "util/redact.h"

namespace xmatters {

namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;

constexpr auto kStillFailingEvery = std::chrono::seconds(60);
// A Retry-After longer than this is worth a WARNING (at most one a minute).
constexpr auto kLongPause = std::chrono::seconds(60);

std::string seconds_text(Steady::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(d).count());
  return buf;
}

}  // namespace

// A test event's first answer goes to its future, whatever it is; it is
// then out of the lane (and the spool), delivered or not. False when p is
// not a test event, or was delivered (settled then as any delivery).
bool Delivery::Engine::settle_test(DeliveryLane& lane, const std::string& outage_id, const Pending& p, const Outcome& o,
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
  lane.counts.last_failure = IntegrationStatus::Failure{wall_now(), answer.reason};
  lane.schedule.pop(outage_id, steady_now());
  store->release();
  return true;
}

void Delivery::Engine::settle(DeliveryLane& lane, const std::string& outage_id, const Pending& p, Outcome& o,
                             LogLines& logs) {
  const Event& e = p.event;
  const IntegrationConfig& c = lane.config;
  const bool test = lane.tests.count(e.event_id) > 0;
  const std::string what = std::string(test ? "test " : "") + event_type_name(e.type) + " event " + e.event_id +
                           " of outage " + e.outage_id;
  const std::string prefix = "integration " + c.name + ": ";
  const std::string& url = e.type == EventType::Clear ? c.clear_url : c.outage_url;
  const auto now = steady_now();
  if (settle_test(lane, outage_id, p, o, logs)) return;
  if (o.result != Result::Delivered && o.result != Result::Abandoned) {
    lane.counts.last_failure = IntegrationStatus::Failure{wall_now(), o.reason};
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
      const auto left = duration_cast<Steady::duration>(e.created + c.retry_max_age - wall_now()) + p.paced;
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
      lane.lines.dead_letter(
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
      const TimePoint wall = wall_now();
      lane.counts.latency_sum += std::chrono::duration<double>(wall - e.created).count();
      ++lane.counts.latency_count;
      lane.counts.last_delivery =
          IntegrationStatus::Delivered{wall, o.http.status, o.http.request_id, e.type, e.outage_id};
      lane.counts.failing_since.reset();
      if (lane.paused != 0)
        logs.emplace_back(LogLevel::Notice, prefix + "accepted again (HTTP " + std::to_string(o.http.status) +
                                                "): delivery resumed, " +
                                                std::to_string(lane.schedule.queued() - 1) + " event(s) waiting");
      else if (lane.counts.failures_since_ok > 0)
        logs.emplace_back(LogLevel::Notice, prefix + "delivering again after " +
                                                std::to_string(lane.counts.failures_since_ok) + " failed attempts");
      lane.lines.delivered(what, o.http.status, o.http.request_id, e.type, now, lane.schedule, logs);
      lane.counts.failures_since_ok = 0;
      lane.paused = 0;
      lane.schedule.resume();
      break;
  }
  lane.schedule.pop(outage_id, now);
  store->release();
}

}  // namespace xmatters
