// The operator's verbs on delivery (collectd-xmatters(1)): status, queue,
// resend and test, each under the lanes' mutexes.
#include <map>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "delivery/delivery_engine.h"

namespace xmatters {

using std::chrono::duration_cast;

std::vector<IntegrationStatus> Delivery::status() const {
  std::vector<IntegrationStatus> out;
  const auto now = engine_->steady_now();
  for (const auto& lane : engine_->lanes) {
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
  const auto steady_now = engine_->steady_now();
  const auto wall_now = engine_->wall_now();
  for (const auto& lane : engine_->lanes) {
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
  for (const auto& lane : engine_->lanes) {
    MutexLock lock(lane->mutex);
    lane->schedule.for_each_paced([&](const std::string& id) { out.emplace(lane->config.name, id); });
  }
  return out;
}

DeliveryLane& Delivery::Engine::lane_for_operator(const Event& event) {
  const auto found = by_name.find(event.integration);
  if (found == by_name.end()) throw std::invalid_argument("no integration " + event.integration + " is configured");
  if (!accepting) throw std::logic_error("delivery has stopped");
  return *found->second;
}

Delivery::Resent Delivery::resend(std::vector<Event> events, const std::set<std::string>& letters) {
  Engine& engine = *engine_;
  std::vector<DeliveryLane*> lanes;
  for (Event& e : events) {
    lanes.push_back(&engine.lane_for_operator(e));
    e.change.clear();  // its outage's state is the tracker's, not the letter's
    e.created = engine.wall_now();
    e.not_before = {};
  }
  // A clear sent again (--include-cleared) while the delivered one is still
  // in the spool, between its mark and its acknowledgement: the two would
  // be one event_id in the spool, and the first one's acknowledgement would
  // take the second out of it. Refused, nothing changed: resend again.
  for (const Event& e : events)
    if (e.type == EventType::Clear && engine.store->body(e.event_id, false))
      throw std::runtime_error("the clear " + e.event_id + " is being delivered now, try again in a moment");
  // In the spool, durably, before the letters leave the file: a crash in
  // between leaves both, and the next start removes the letters.
  std::vector<std::string> appended;
  try {
    for (const Event& e : events) {
      engine.store->append(e);
      appended.push_back(e.event_id);
    }
    for (const Event& e : events)
      if (!engine.store->make_durable(e.event_id))
        throw std::system_error(std::make_error_code(std::errc::io_error), "cannot sync the spool");
  } catch (...) {
    for (const std::string& id : appended) engine.store->acknowledge(id);
    throw;
  }
  engine.store->add(events.size());
  // Outages sent again with their clear (--include-cleared): those go
  // whatever happened since.
  std::set<std::pair<std::string, std::string>> with_clear;
  for (const Event& e : events)
    if (e.type == EventType::Clear) with_clear.emplace(e.integration, e.outage_id);
  std::map<DeliveryLane*, std::vector<Event>> by_lane;
  for (std::size_t i = 0; i < events.size(); ++i) by_lane[lanes[i]].push_back(without_body(std::move(events[i])));
  Resent r;
  std::set<std::string> leaving = letters;
  {
    // Decided as they are queued, no clear marked meanwhile: a clear
    // delivered since the letters were read (marked), or in flight now
    // (marked once answered), goes before the outage event, which would then
    // page for a resolved outage that nothing clears.
    DeadLetterFile& file = *engine.dead_letters;
    const DeadLetterFile::MarksHeld marks(file);
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
              (clearing.count(e.outage_id) > 0 || file.marked_cleared(e)))
            r.skipped.push_back(std::move(e));
          else
            kept.push_back(std::move(e));
        }
        lane->schedule.enqueue_front(std::move(kept));
      }
      lane->wake.notify_one();
    }
    // Their letters leave the file in the same step, the marks still held:
    // an event refused again meanwhile writes its new letter (same
    // event_id) only after this rewrite, which would otherwise drop it.
    for (const Event& e : r.skipped) leaving.erase(e.event_id);
    if (engine.options.before_resend_rewrite) engine.options.before_resend_rewrite();
    r.rewritten = file.remove(marks, leaving);
  }
  for (const Event& e : r.skipped) {
    engine.acknowledge(e);
    engine.store->release();
  }
  if (r.rewritten) return r;
  engine.log.error(std::to_string(leaving.size()) + " dead letter(s) sent again are still in " +
                   engine.dead_letters->path() + ", which cannot be rewritten: do not resend them");
  return r;
}

std::future<FirstAnswer> Delivery::test(Event event) {
  Engine& engine = *engine_;
  DeliveryLane& lane = engine.lane_for_operator(event);
  event.change.clear();  // it opens no outage
  event.not_before = {};
  event.test = true;  // not sent after a restart (doc/storage.md)
  engine.store->append(event);
  engine.store->add();
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
