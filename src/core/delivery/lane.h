// One integration's queue of undelivered events and when each may go: the
// events of an outage leave strictly in order, one at a time; different
// outages go in parallel; with a FloodLimit, as its budget (flood_budget.h,
// shared with the integration's tracker) allows. Not thread-safe: the
// delivery engine holds the lane's mutex around every call.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "outage/event.h"
#include "util/function_ref.h"
#include "outage/flood_budget.h"

namespace xmatters {

using Steady = std::chrono::steady_clock;

// Exponential backoff with jitter: about initial after the first failure,
// doubling with each further one, up to ceiling.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds ceiling)
      : initial_(initial), ceiling_(ceiling) {}
  Steady::duration after(unsigned failures);
  std::chrono::milliseconds ceiling() const { return ceiling_; }

 private:
  std::chrono::milliseconds initial_, ceiling_;
  std::mt19937_64 rng_{std::random_device{}()};
};

// An event as it waits: its body is in the spool, read back when it is sent.
struct Pending {
  Event event;       // without its body
  int attempts = 0;  // failed requests so far
  // Time spent waiting for the FloodLimit, which RetryMaxAge does not count:
  // pacing delays an event, it does not make it undeliverable.
  Steady::duration paced{};
  std::string last_error;  // why its last request failed (redacted); "" before any
};

class LaneSchedule {
 public:
  // budget: FloodLimit's, shared with the integration's tracker. Each
  // request takes it (retries included: xMatters' Alert Rate Filter counts
  // what it receives), and the lane tells it how many outage events wait.
  // wall_now stamps each request for the budget (system_clock::now when
  // null; DeliveryOptions::wall_now).
  LaneSchedule(Backoff backoff, std::shared_ptr<FloodBudget> budget, std::function<TimePoint()> wall_now = nullptr)
      : backoff_(std::move(backoff)), budget_(std::move(budget)), wall_now_(std::move(wall_now)) {}
  // With a budget of its own: flood_limit 0 = no limit.
  explicit LaneSchedule(Backoff backoff, unsigned flood_limit = 0)
      : LaneSchedule(std::move(backoff), std::make_shared<FloodBudget>("", flood_limit)) {}

  // Adds an event at its outage's tail; a new outage's is due at once, or
  // at its not_before, as is a later event when it comes to the head. An
  // outage has at most one undelivered outage event: a newer one (a re-page,
  // an escalation) takes the place of its outage's last event when that is
  // an outage event not in flight, keeping its place (and due time), its
  // attempts and so its backoff. Returns the event replaced, for the spool
  // to forget.
  std::optional<Event> enqueue(Event event);
  // Adds an event of an outage of its own that goes before every other,
  // through a pause or a hold (a test page); it still takes (and waits for)
  // its type's FloodLimit.
  void enqueue_urgent(Event event);
  // Adds events at the head of their outages, before the events queued
  // there (after the one in flight), in the order given: dead letters sent
  // again are older than anything their outage has queued.
  void enqueue_front(std::vector<Event> events);
  // Whether enqueue() would replace an event for an outage event of outage_id.
  bool has_queued_page(const std::string& outage_id) const;

  // The earliest time a head may go (never within the lane's pause, nor
  // before FloodLimit's budget lets it); time_point::max() when nothing is
  // scheduled.
  Steady::time_point next_due() const;

  struct Taken {
    std::string outage_id;
    Pending head;  // a copy: the queue may change while it is in flight
  };
  // Takes a due head that the budget lets go, its outage then in flight;
  // nullopt when none is. A due head without budget waits, in arrival order
  // with the others of its kind (page, the flood outage's page, clear),
  // without holding up the other kinds': the flood outage's page never
  // waits behind other pages.
  std::optional<Taken> take(Steady::time_point now);

  // The head was delivered or dead-lettered: it leaves, and the outage's
  // next event is due at once.
  void pop(const std::string& outage_id, Steady::time_point now);
  // The head failed for the attempts-th time: it is due again after the
  // backoff, or after `asked` (Retry-After) when longer, but never after the
  // backoff's ceiling nor later than `left` from now (the RetryMaxAge
  // deadline). A failure also pauses the whole lane, since it is usually the
  // endpoint's, not the event's: a down xMatters is probed gently instead of
  // with every queued event at once. Returns the event's delay.
  Steady::duration retry(const std::string& outage_id, int attempts, std::optional<Steady::duration> asked,
                         Steady::duration left, Steady::time_point now);
  // The head stays and is due at `when` (the request was not made, or its
  // outcome could not be recorded), with attempts failures when given.
  void release(const std::string& outage_id, Steady::time_point when, std::optional<int> attempts = std::nullopt);
  // Records why the head's last request failed (Pending::last_error).
  void note_error(const std::string& outage_id, std::string error);
  // Each outage whose head is due but waits for FloodLimit's budget
  // (collectd-xmatters(1) outages shows it waiting).
  void for_each_paced(FunctionRef<void(const std::string& outage_id)> f) const;
  // A success ends the lane's pause, and its hold.
  void resume();

  // The integration refused the plugin's credentials or URL (401, 403,
  // 404): nothing goes before `until`, then one request (the head due
  // first), and nothing more until that request is settled and hold() or
  // resume() called again. Urgent outages go meanwhile.
  void hold(Steady::time_point until);
  bool held() const { return held_; }
  // Takes every head (not in flight) that is_expired says has waited too
  // long (RetryMaxAge), its outage then in flight, without a request:
  // while the lane is held, events expire without being tried.
  std::vector<Taken> take_expired(FunctionRef<bool(const Pending&)> is_expired);

  // Each queued event, each outage's in order: whether it is in flight,
  // and when the next request of its outage may go (for the head not in
  // flight; nullopt for the others).
  void for_each(FunctionRef<void(const Pending&, bool in_flight, std::optional<Steady::time_point> next)> f) const;
  // Requests of that type in the minute before now (FloodLimit use); 0
  // without a limit.
  std::size_t flood_used(EventType type, Steady::time_point now) const { return budget_->used(type, now); }
  unsigned flood_limit() const { return budget_->limit(); }

  Steady::duration backoff(unsigned failures) { return backoff_.after(failures); }
  std::size_t queued() const { return queued_; }  // in flight included
  // Outages whose due head waits for the FloodLimit.
  std::size_t paced() const { return waiting_[0].size() + waiting_[1].size() + waiting_[2].size(); }

 private:
  struct OutageQueue {
    // The head is sent next, or is in flight. A vector: an outage has one to
    // a few events queued, and a deque would cost two allocations (about 600
    // bytes) per open outage, on collectd's thread.
    std::vector<Pending> events;
    bool in_flight = false;
    // Listed in waiting_ since then (and not in schedule_ meanwhile).
    std::optional<Steady::time_point> waiting_since;
  };
  void schedule(const std::string& outage_id, Steady::time_point when);
  // The event a new outage event of this outage would replace, or nullptr.
  static const Pending* queued_page(const OutageQueue& outage);
  // A test page may take the request kept for the flood outage's page, as
  // the flood outage's may: the operator waits for its answer.
  FloodRequest kind_of(const Pending& head) const {
    if (head.event.test && head.event.type == EventType::Outage) return FloodRequest::FloodPage;
    return budget_->kind_of(head.event.type, head.event.outage_id);
  }
  std::deque<std::string>& waiting(FloodRequest kind) { return waiting_[static_cast<int>(kind)]; }
  // The outage's head starts (true) or stops being in flight: an outage
  // event not in flight waits, for the budget's count.
  void set_in_flight(OutageQueue& outage, bool in_flight);
  void count_waiting(const Event& event, long delta) {
    if (event.type == EventType::Outage) budget_->waiting(delta);
  }
  // The outage, if its head may be taken (it has one, not in flight).
  OutageQueue* takeable(const std::string& outage_id);
  Taken grant(std::string outage_id, OutageQueue& outage, Steady::time_point now);
  std::optional<Taken> take_urgent(Steady::time_point now);
  std::optional<Taken> take_due(Steady::time_point now);  // take() without pause or hold

  Backoff backoff_;
  std::unordered_map<std::string, OutageQueue> outages_;
  // Outages whose head may be sent, by earliest attempt, then arrival. An
  // outage may be listed twice (see release()); take() skips the extra.
  std::map<std::pair<Steady::time_point, std::uint64_t>, std::string> schedule_;
  std::uint64_t arrivals_ = 0;
  std::shared_ptr<FloodBudget> budget_;
  std::function<TimePoint()> wall_now_;
  // Outages whose due head has no budget left, by FloodRequest (page, the
  // flood outage's page, clear), in the order they became due.
  std::deque<std::string> waiting_[3];
  std::size_t queued_ = 0;
  Steady::time_point paused_until_{};
  unsigned pause_streak_ = 0;  // lane pauses since the last success
  bool held_ = false;
  std::optional<std::string> probe_;  // the outage whose head a held lane tries
  // Outages of enqueue_urgent() not taken yet (also in schedule_).
  std::vector<std::string> urgent_;
};

}  // namespace xmatters
