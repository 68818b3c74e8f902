#include "delivery/lane.h"

#include <algorithm>

#include "util/hash_table.h"

namespace xmatters {

Steady::duration Backoff::after(unsigned failures) {
  // Half fixed, half random: spreads retries of many events without ever
  // retrying much sooner than the doubling says.
  double base = static_cast<double>(initial_.count());
  for (unsigned i = 1; i < failures && base < ceiling_.count(); ++i) base *= 2;
  base = std::min(base, static_cast<double>(ceiling_.count()));
  std::uniform_real_distribution<double> half(0.0, base / 2);
  return std::chrono::duration_cast<Steady::duration>(
      std::chrono::duration<double, std::milli>(base / 2 + half(rng_)));
}

void LaneSchedule::schedule(const std::string& outage_id, Steady::time_point when) {
  schedule_.emplace(std::make_pair(when, arrivals_++), outage_id);
}

const Pending* LaneSchedule::queued_page(const OutageQueue& outage) {
  if (outage.events.empty()) return nullptr;
  const Pending& last = outage.events.back();
  if (last.event.type != EventType::Outage) return nullptr;  // a clear keeps what it follows
  if (outage.in_flight && outage.events.size() == 1) return nullptr;
  return &last;
}

bool LaneSchedule::has_queued_page(const std::string& outage_id) const {
  const auto found = outages_.find(outage_id);
  return found != outages_.end() && queued_page(found->second) != nullptr;
}

std::optional<Event> LaneSchedule::enqueue(Event event) {
  auto [it, fresh] = outages_.try_emplace(event.outage_id);
  OutageQueue& outage = it->second;
  if (event.type == EventType::Outage && queued_page(outage) != nullptr) {
    Event replaced = std::move(outage.events.back().event);
    // An escalation must not wait for the re-page it replaces, and a page
    // never leaves later than the one whose place it takes: a flood
    // outage's first page, still queued when the next outage joins, leaves
    // at once with the flood's size then (its minute was counted for it).
    const bool sooner = event.not_before < replaced.not_before;
    if (sooner && outage.events.size() == 1) schedule(it->first, event.not_before);
    event.not_before = std::min(event.not_before, replaced.not_before);
    outage.events.back().event = std::move(event);
    return replaced;
  }
  const Steady::time_point due = event.not_before;
  count_waiting(event, 1);
  outage.events.push_back(Pending{std::move(event), 0, {}, {}});
  ++queued_;
  if (fresh) schedule(it->first, due);
  return std::nullopt;
}

void LaneSchedule::enqueue_urgent(Event event) {
  const std::string outage_id = event.outage_id;
  event.not_before = Steady::time_point{};
  enqueue(std::move(event));
  urgent_.push_back(outage_id);
}

void LaneSchedule::enqueue_front(std::vector<Event> events) {
  std::unordered_map<std::string, std::size_t> next_place;  // per outage, where its next one goes
  for (Event& event : events) {
    auto [it, fresh] = outages_.try_emplace(event.outage_id);
    OutageQueue& outage = it->second;
    auto [place, first] = next_place.try_emplace(it->first, outage.in_flight ? 1 : 0);
    const Steady::time_point due = event.not_before;
    count_waiting(event, 1);
    outage.events.insert(outage.events.begin() + static_cast<std::ptrdiff_t>(place->second++),
                         Pending{std::move(event), 0, {}, {}});
    ++queued_;
    // An outage already queued keeps its place in schedule_ (or waiting_):
    // whatever its head now is goes when that comes.
    if (fresh) schedule(it->first, due);
  }
}

Steady::time_point LaneSchedule::next_due() const {
  auto due = schedule_.empty() ? Steady::time_point::max() : schedule_.begin()->first.first;
  // A waiting head is due when its budget frees: next_free() of the epoch is
  // that instant (or the epoch, when it is free already).
  for (const FloodRequest kind : {FloodRequest::Page, FloodRequest::FloodPage, FloodRequest::Clear})
    if (!waiting_[static_cast<int>(kind)].empty()) due = std::min(due, budget_->next_free(kind, Steady::time_point{}));
  // A held lane's one request is out: nothing else goes until it settles.
  if (held_ && probe_) due = Steady::time_point::max();
  if (due != Steady::time_point::max()) due = std::max(due, paused_until_);
  for (const std::string& id : urgent_) {
    const auto found = outages_.find(id);
    if (found == outages_.end() || found->second.in_flight || found->second.events.empty()) continue;
    due = std::min(due, budget_->next_free(kind_of(found->second.events.front()), Steady::time_point{}));
  }
  return due;
}

LaneSchedule::OutageQueue* LaneSchedule::takeable(const std::string& outage_id) {
  auto found = outages_.find(outage_id);
  if (found == outages_.end() || found->second.in_flight || found->second.events.empty()) return nullptr;
  return &found->second;
}

void LaneSchedule::set_in_flight(OutageQueue& outage, bool in_flight) {
  if (outage.in_flight == in_flight) return;
  outage.in_flight = in_flight;
  if (!outage.events.empty()) count_waiting(outage.events.front().event, in_flight ? -1 : 1);
}

LaneSchedule::Taken LaneSchedule::grant(std::string outage_id, OutageQueue& outage, Steady::time_point now) {
  Pending& head = outage.events.front();
  budget_->sent(kind_of(head), now, wall_now_ ? wall_now_() : Clock::now());
  set_in_flight(outage, true);
  urgent_.erase(std::remove(urgent_.begin(), urgent_.end(), outage_id), urgent_.end());
  return Taken{std::move(outage_id), head};
}

std::optional<LaneSchedule::Taken> LaneSchedule::take_urgent(Steady::time_point now) {
  for (const std::string& id : urgent_) {
    OutageQueue* outage = takeable(id);
    if (outage == nullptr || !budget_->available(kind_of(outage->events.front()), now)) continue;
    outage->waiting_since.reset();
    return grant(id, *outage, now);  // a copy of id: grant() erases it from urgent_
  }
  return std::nullopt;
}

std::optional<LaneSchedule::Taken> LaneSchedule::take(Steady::time_point now) {
  if (!urgent_.empty())
    if (auto taken = take_urgent(now)) return taken;
  if (now < paused_until_ || (held_ && probe_)) return std::nullopt;
  auto taken = take_due(now);
  if (taken && held_) probe_ = taken->outage_id;
  return taken;
}

std::optional<LaneSchedule::Taken> LaneSchedule::take_due(Steady::time_point now) {
  // The waiting heads first: they were due before any still scheduled.
  for (auto& queue : waiting_) {
    while (!queue.empty()) {
      OutageQueue* outage = takeable(queue.front());
      if (outage != nullptr && !budget_->available(kind_of(outage->events.front()), now)) break;
      std::string outage_id = std::move(queue.front());
      queue.pop_front();
      if (outage == nullptr) continue;
      outage->events.front().paced += now - outage->waiting_since.value_or(now);
      outage->waiting_since.reset();
      return grant(std::move(outage_id), *outage, now);
    }
  }
  while (!schedule_.empty() && schedule_.begin()->first.first <= now) {
    std::string outage_id = std::move(schedule_.begin()->second);
    schedule_.erase(schedule_.begin());
    OutageQueue* outage = takeable(outage_id);
    if (outage == nullptr || outage->waiting_since) continue;
    // Listed for an earlier event than the head (release(), enqueue()).
    if (const auto not_before = outage->events.front().event.not_before; not_before > now) {
      schedule(outage_id, not_before);
      continue;
    }
    const FloodRequest kind = kind_of(outage->events.front());
    if (!budget_->available(kind, now)) {
      outage->waiting_since = now;
      waiting(kind).push_back(std::move(outage_id));
      continue;
    }
    return grant(std::move(outage_id), *outage, now);
  }
  return std::nullopt;
}

void LaneSchedule::pop(const std::string& outage_id, Steady::time_point now) {
  if (probe_ == outage_id) probe_.reset();
  auto found = outages_.find(outage_id);
  if (found == outages_.end()) return;
  OutageQueue& outage = found->second;
  if (!outage.in_flight && !outage.events.empty()) count_waiting(outage.events.front().event, -1);
  outage.in_flight = false;
  outage.events.erase(outage.events.begin());
  --queued_;
  if (!outage.events.empty()) {
    schedule(outage_id, std::max(now, outage.events.front().event.not_before));
    return;
  }
  outages_.erase(found);
  shrink_if_sparse(outages_);
}

Steady::duration LaneSchedule::retry(const std::string& outage_id, int attempts,
                                     std::optional<Steady::duration> asked, Steady::duration left,
                                     Steady::time_point now) {
  if (probe_ == outage_id) probe_.reset();
  OutageQueue& outage = outages_[outage_id];
  set_in_flight(outage, false);
  outage.events.front().attempts = attempts;
  auto delay = backoff_.after(static_cast<unsigned>(attempts));
  if (asked) {
    // Whatever the header says: a wrong or hostile one must not silence
    // the integration for a day.
    const Steady::duration wait = std::min<Steady::duration>(*asked, backoff_.ceiling());
    delay = std::max(delay, wait);
    paused_until_ = std::max(paused_until_, now + wait);
  }
  // The last try is made at the deadline, not after it.
  delay = std::max(Steady::duration::zero(), std::min(delay, left));
  schedule(outage_id, now + delay);
  if (now >= paused_until_) {
    ++pause_streak_;
    paused_until_ = now + backoff_.after(pause_streak_);
  }
  return delay;
}

void LaneSchedule::release(const std::string& outage_id, Steady::time_point when, std::optional<int> attempts) {
  if (probe_ == outage_id) probe_.reset();
  auto found = outages_.find(outage_id);
  if (found == outages_.end()) return;
  OutageQueue& outage = found->second;
  set_in_flight(outage, false);
  if (outage.events.empty()) return;
  if (attempts) outage.events.front().attempts = *attempts;
  schedule(outage_id, when);
}

void LaneSchedule::note_error(const std::string& outage_id, std::string error) {
  auto found = outages_.find(outage_id);
  if (found != outages_.end() && !found->second.events.empty())
    found->second.events.front().last_error = std::move(error);
}

void LaneSchedule::for_each_paced(FunctionRef<void(const std::string& outage_id)> f) const {
  for (const auto& queue : waiting_)
    for (const std::string& id : queue) {
      const auto found = outages_.find(id);  // take_due() skips those gone or in flight
      if (found != outages_.end() && !found->second.in_flight && !found->second.events.empty()) f(id);
    }
}

void LaneSchedule::resume() {
  pause_streak_ = 0;
  paused_until_ = Steady::time_point{};
  held_ = false;
  probe_.reset();
}

void LaneSchedule::hold(Steady::time_point until) {
  held_ = true;
  probe_.reset();
  paused_until_ = until;
}

std::vector<LaneSchedule::Taken> LaneSchedule::take_expired(FunctionRef<bool(const Pending&)> is_expired) {
  std::vector<Taken> out;
  for (auto& [id, outage] : outages_) {
    if (outage.in_flight || outage.events.empty() || !is_expired(outage.events.front())) continue;
    set_in_flight(outage, true);
    out.push_back(Taken{id, outage.events.front()});
  }
  return out;
}

void LaneSchedule::for_each(
    FunctionRef<void(const Pending&, bool in_flight, std::optional<Steady::time_point> next)> f) const {
  std::unordered_map<std::string, Steady::time_point> due;
  for (const auto& [when, id] : schedule_) due.try_emplace(id, when.first);  // the earliest listing
  for (const auto& queue : waiting_)
    for (const std::string& id : queue) {
      const auto found = outages_.find(id);
      if (found != outages_.end() && !found->second.events.empty())
        due[id] = budget_->next_free(kind_of(found->second.events.front()), Steady::time_point{});
    }
  for (const auto& [id, outage] : outages_) {
    for (std::size_t i = 0; i < outage.events.size(); ++i) {
      std::optional<Steady::time_point> next;
      if (i == 0 && !outage.in_flight) {
        const auto found = due.find(id);
        if (found != due.end()) next = std::max(std::max(found->second, outage.events[0].event.not_before), paused_until_);
      }
      f(outage.events[i], i == 0 && outage.in_flight, next);
    }
  }
}

}  // namespace xmatters
