// An integration's flood outage (collectd-xmatters(5) FloodLimit and
// OUTAGES): opened by the first outage folded into it, paged once,
// escalated once, re-paged as outages join it (at most a minute after its
// last page: the re-page waits in the lane); cleared when its last outage
// clears. The tracker decides under a key's lock whether an outage folds;
// this unit decides what that does to the flood outage, in two steps so
// that it never calls out: plan() says what to send and record, the
// tracker emits it, and apply() makes it the state once the event was
// accepted (a refused one changes nothing).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "outage/event.h"
#include "outage/flood_budget.h"
#include "outage/notification.h"
#include "outage/outage.h"
#include "util/log.h"
#include "util/mutex.h"

namespace xmatters {

class FloodOutage {
 public:
  using Steady = std::chrono::steady_clock;

  // budget: FloodLimit's, shared with the lane; null: one of its own, in
  // which each outage event counts as a request made as it is decided.
  // send_clear: SendClear, for the flood outage's clear.
  FloodOutage(std::string integration, unsigned limit, std::shared_ptr<FloodBudget> budget, bool send_clear);

  // Taken under a key's mutex, never the other way round, and held across
  // the handler (doc/design.md, lock order: key -> flood -> lane).
  mutable Mutex mutex;

  // Whether FloodLimit is set at all (the budget's own lock).
  bool limited() const { return budget_->limited(); }
  // The fold decision: whether a new outage's page would leave now.
  bool pages_on_its_own(Steady::time_point now) const { return budget_->pages_on_its_own(now); }
  // An outage event handed over: with a budget of its own (no lane), it is
  // the request.
  void decided(FloodRequest kind, Steady::time_point now) {
    if (own_budget_) budget_->sent(kind, now, Clock::now());
  }

  // What a folded outage's change does to the flood outage.
  struct Fold {
    std::optional<Outage> outage;           // the flood outage after it (its last state when it closes)
    std::optional<EventType> send;          // the flood outage's event, if any
    Steady::time_point not_before{};        // of a re-page that waits (Event::not_before)
    std::string record;                     // the flood outage's change, to write after the folded one's
    bool opens = false, closes = false;     // the folded outage's
    bool flood_closes = false;
    std::optional<std::string> new_host;
  };
  // For a folded outage that opens, changes (send) or closes; after is its
  // state after the change. Calls nothing but the budget (its flood
  // outage's id, before that outage's first page is queued).
  Fold plan(const Notification& n, std::optional<EventType> send, const Outage& after, bool opens, bool closes,
            Steady::time_point now) REQUIRES(mutex);
  // The fold's event was accepted: it is the state now. Returns the change
  // in open outages (+1 when the flood outage opened, -1 when it cleared).
  int apply(Fold fold, Steady::time_point now) REQUIRES(mutex);

  // Outages folded since start.
  std::uint64_t folded() const { return folded_total_.load(std::memory_order_relaxed); }
  // Its committed state; none when it is not open.
  const std::optional<Outage>& outage() const REQUIRES(mutex) { return flood_.outage; }

  // Recovery, before any other thread sees the tracker. The spool's record
  // of the flood outage (the last one wins; none: closed).
  void recover(std::optional<Outage> set) EXCLUDES(mutex);
  // The spool's records done: FloodLimit's minute (a budget of its own
  // only: a shared one has it from the delivery) and the flood outage's id.
  void recover_budget(const std::vector<std::string>& recovered, Steady::time_point now) EXCLUDES(mutex);
  // A folded outage recovered: false when there is no flood outage to hold it.
  bool recover_held(const std::string& host) EXCLUDES(mutex);
  // Drops a flood outage that holds nothing (one WARNING); returns 1 when
  // it stays open, else 0.
  std::size_t recover_end(Logger& log) EXCLUDES(mutex);

 private:
  struct State {
    std::optional<Outage> outage;  // its key is OutageKey{}
    std::size_t held = 0;          // folded outages open
    // Hosts of the outages it had; after a restart, of those it still holds.
    std::unordered_set<std::string> hosts;
    // Its last outage event, or when the re-page waiting in the lane leaves;
    // none after a restart.
    std::optional<Steady::time_point> paged;
  };

  const std::string integration_;
  const bool send_clear_;
  // No lane counts the requests: each outage event counts as it is decided.
  const bool own_budget_;
  // FloodLimit's budget that decides folding (flood_budget.h; its own lock).
  const std::shared_ptr<FloodBudget> budget_;
  State flood_ GUARDED_BY(mutex);
  std::atomic<std::uint64_t> folded_total_{0};
};

}  // namespace xmatters
