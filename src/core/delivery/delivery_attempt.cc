// One attempt of one event (delivery_engine.h): its body read back from
// the store (durable first), the request, what the reply means (reply.h),
// and the dead letter when it can never go.
#include <stdexcept>
#include <system_error>
#include <utility>

#include "delivery/delivery_engine.h"
#include "delivery/reply.h"

namespace xmatters {

Delivery::Engine::Outcome Delivery::Engine::attempt(DeliveryLane& lane, HttpClient& client, const Pending& p, Mode mode) {
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
  if (options.wall_now) o.http.received = wall_now();  // a test's clock: an HTTP date counts from it
  const Verdict v = classify(o.http);
  o.reason = client.scrub(v.reason);  // it goes to log lines and the dead letter
  o.retry_after = v.after;
  if (v.kind == Verdict::Kind::Delivered) {
    o.result = Result::Delivered;
    // The dead letters of its outage, if any, record (durably) that it has
    // cleared before it leaves the spool: a crash in between sends the clear
    // again, never its outage event (collectd-xmatters(1) RESEND).
    if (e.type == EventType::Clear && !dead_letters->mark_cleared(e, body))
      log.warning("integration " + c.name + ": outage " + e.outage_id + " has cleared, but " +
                  dead_letters->path() + " cannot be written to say so");
    acknowledge(e);
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
    if (wall_now() - e.created - p.paced < c.retry_max_age) {
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

Delivery::Engine::Outcome Delivery::Engine::try_attempt(DeliveryLane& lane, HttpClient& client, const Pending& p,
                                                      Mode mode) noexcept {
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

void Delivery::Engine::dead_letter(const Event& e, const std::string& body, const std::string& url, int attempts,
                                  Outcome& o) {
  const DeadLetterFile::Written w =
      dead_letters->write({e, body, url, attempts, o.http.status, o.reason, o.http.reply_start});
  o.dead_letter_written = w.ok;
  o.dead_letters_dropped = w.dropped;
  if (w.ok) acknowledge(e);
}

}  // namespace xmatters
