// The flood outage (flood_outage.h). Its change rides in the same write as
// the folded outage's; the records' format: doc/storage.md.
#include "outage/flood_outage.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "outage/host_members.h"  // member_of

namespace xmatters {

FloodOutage::FloodOutage(std::string integration, unsigned limit, std::shared_ptr<FloodBudget> budget, bool send_clear)
    : integration_(std::move(integration)),
      send_clear_(send_clear),
      own_budget_(!budget),
      budget_(budget ? std::move(budget) : std::make_shared<FloodBudget>(integration_, limit)) {}

FloodOutage::Fold FloodOutage::plan(const Notification& n, std::optional<EventType> send, const Outage& after,
                                    bool opens, bool closes, Steady::time_point now) {
  Fold f;
  f.opens = opens;
  f.closes = closes;
  // A folded outage always has its flood outage: the recovery unfolds any other.
  std::optional<Outage>& next = f.outage;
  next = flood_.outage;
  if (!opens && !next) throw std::logic_error("folded outage without its flood outage");
  bool changed = false;
  const auto page = [&] {
    next->last_page = n.time;
    next->sequence += 1;
    f.send = EventType::Outage;
  };
  if (opens) {
    changed = true;
    if (!next) {
      next = Outage{outage_id_of(integration_, OutageKind::Flood, OutageKey{}, n.time), after.severity, n.time, n.time, 1,
                    OutageKind::Flood, {}, false, 0, 0};
      f.send = EventType::Outage;
      // Before its page is queued: the lane lets it take the request that
      // other pages leave free, so that it leaves at once.
      budget_->set_flood_outage(next->id);
    }
    next->outages += 1;
    if (flood_.hosts.count(n.host) == 0) {
      next->hosts += 1;
      f.new_host = n.host;
    }
    if (next->members.size() < kFloodListed) next->members.push_back(member_of(n));
    if (!f.send && after.severity > next->severity) {
      next->severity = after.severity;
      page();
    } else if (!f.send) {
      // It grew: re-paged, at most a minute after its last page. A re-page
      // waits in the lane for that (and for the budget, as any request),
      // and each outage joining meanwhile takes its place there, so that
      // what leaves tells the flood's size then.
      page();
      if (flood_.paged && *flood_.paged > now)
        f.not_before = *flood_.paged;  // replaces the re-page waiting
      else if (flood_.paged && now - *flood_.paged < std::chrono::minutes(1))
        f.not_before = *flood_.paged + std::chrono::minutes(1);
    }
  } else if (send == EventType::Outage && after.severity > next->severity) {
    changed = true;
    next->severity = after.severity;
    page();
  } else if (closes && flood_.held == 1) {
    changed = f.flood_closes = true;
    if (send_clear_) f.send = EventType::Clear;
  }
  if (changed) f.record = encode_change(integration_, OutageKey{}, f.flood_closes ? nullptr : &*next, TimePoint{});
  return f;
}

int FloodOutage::apply(Fold f, Steady::time_point now) {
  int opened = 0;
  if (f.send == EventType::Outage) {
    // A re-page that waits is counted when it leaves.
    if (f.not_before <= now) decided(FloodRequest::FloodPage, now);
    flood_.paged = std::max(now, f.not_before);
  }
  if (f.opens) {
    if (!flood_.outage) opened = 1;
    ++flood_.held;
    if (f.new_host) flood_.hosts.insert(std::move(*f.new_host));
    folded_total_.fetch_add(1, std::memory_order_relaxed);
  }
  if (f.closes) --flood_.held;
  if (f.flood_closes) {
    flood_.outage.reset();
    flood_.hosts.clear();
    flood_.paged.reset();
    return -1;
  }
  flood_.outage = std::move(f.outage);
  return opened;
}

void FloodOutage::recover(std::optional<Outage> set) {
  MutexLock lock(mutex);  // only for the analysis: no other thread sees it yet
  flood_.outage = std::move(set);
}

void FloodOutage::recover_budget(const std::vector<std::string>& recovered, Steady::time_point now) {
  // The requests of the minute before a restart still count: new outages
  // beyond FloodLimit fold at once instead of paging on their own and then
  // waiting for the minute in the lane (collectd-xmatters(5) OUTAGES).
  if (own_budget_) budget_->recover(recovered, now, Clock::now());
  MutexLock lock(mutex);
  if (flood_.outage) budget_->set_flood_outage(flood_.outage->id);
}

bool FloodOutage::recover_held(const std::string& host) {
  MutexLock lock(mutex);
  if (!flood_.outage) return false;
  ++flood_.held;
  flood_.hosts.insert(host);
  return true;
}

std::size_t FloodOutage::recover_end(Logger& log) {
  MutexLock lock(mutex);
  if (flood_.outage && flood_.held == 0) {
    log.warning("integration " + integration_ + ": the flood outage " + flood_.outage->id +
                " holds no outage: closed without a clear");
    flood_.outage.reset();
  }
  return flood_.outage ? 1 : 0;
}

}  // namespace xmatters
