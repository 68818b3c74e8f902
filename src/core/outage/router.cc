#include "outage/router.h"

#include <algorithm>
#include <exception>
#include <set>
#include <utility>

#include "store/spool_format.h"


namespace xmatters {

namespace {

TrackerOptions tracker_options(const IntegrationConfig& i, const Coverage* coverage, const EventSink& sink) {
  TrackerOptions o;
  o.group_by = i.group_by == GroupBy::Host ? OutageKind::Host : OutageKind::ValueList;
  o.min_severity = i.min_severity;
  o.renotify_interval = i.renotify_interval;
  o.send_clear = i.send_clear;
  o.flood_limit = i.flood_limit;
  o.flood_budget = sink.flood_budget(i.name);  // the one its lane paces with
  if (coverage != nullptr) {
    const std::string name = i.name;
    o.covering = [coverage, name](const OutageKey& key) { return coverage->covering(name, key, Clock::now()); };
  }
  return o;
}

// The integrations that the recovered outage changes name.
std::set<std::string> integrations_of(const std::vector<std::string>& recovered) {
  std::set<std::string> names;
  for (const std::string& bytes : recovered) {
    // A change may be two records written together (a folded outage's).
    std::size_t offset = 0;
    spool_format::Record rec{};
    while (offset < bytes.size()) {
      const std::size_t size = spool_format::parse_record(bytes, offset, &rec);
      if (size == 0) break;
      Change c;
      if (decode_change(std::string_view(bytes).substr(offset, size), &c)) names.emplace(c.integration);
      offset += size;
    }
  }
  return names;
}

}  // namespace

Router::Route::Route(const IntegrationConfig& i, Logger& log, const std::vector<std::string>& recovered,
                     EventSink& sink, const Coverage* coverage)
    : integration(i),
      tracker(i.name, tracker_options(i, coverage, sink), log, recovered,
              [&sink](const std::string& record) { sink.record_change(record); }),
      payload(i) {}

Router::Router(const Config& config, EventSink& sink, Logger& log, const Coverage* coverage)
    : sink_(sink), log_(log) {
  const std::vector<std::string> recovered = sink.recovered_changes();
  routes_.reserve(config.integrations.size());
  for (const auto& integration : config.integrations)
    routes_.push_back(std::make_unique<Route>(integration, log, recovered, sink, coverage));
  // An integration renamed or removed by mistake must not lose its open
  // outages: they stay in the spool, named at each start, and its name
  // restored resumes them (their OKAY clears them).
  for (const std::string& name : integrations_of(recovered)) {
    if (std::any_of(config.integrations.begin(), config.integrations.end(),
                    [&](const IntegrationConfig& i) { return i.name == name; }))
      continue;
    auto tracker = std::make_unique<OutageTracker>(name, TrackerOptions{}, log, recovered);
    tracker->for_each_open([&](const OutageKey& key, const Outage& outage) {
      log.warning("integration " + name + " is not configured: its open outage " + outage.id + " (" +
                  (outage.kind == OutageKind::Flood ? std::string("flood outage") : key.identifier()) +
                  ") is kept until it is again, and cleared by its OKAY then");
    });
    if (tracker->open_outages() > 0) kept_.push_back({name, std::move(tracker)});
  }
}

bool Router::submit(Route& route, Transition& t, const Notification& n) {
  const std::string& name = route.integration.name;
  try {
    Event event;
    event.event_id = event_id_of(t.outage.id, t.sequence);
    event.integration = name;
    event.outage_id = t.outage.id;
    event.type = t.type;
    event.created = Clock::now();
    event.body = route.payload.build(t, event.event_id);
    event.change = std::move(t.change);
    event.not_before = t.not_before;
    // Nothing is logged here, on collectd's thread: the sink logs a
    // refusal (QueueLimit, with its count), and each event at INFO
    // when xMatters has it.
    return sink_.submit(std::move(event));
  } catch (const std::exception& e) {
    // Returning false leaves the outage as it was, so a later
    // notification tries again.
    log_.error("integration \"" + name + "\": cannot queue the " + event_type_name(t.type) + " event for " +
               OutageKey::of(n).identifier() + ": " + e.what());
    return false;
  }
}

std::size_t Router::release(TimePoint now) {
  std::size_t paged = 0;
  for (const auto& route : routes_) {
    try {
      paged += route->tracker.release(now, [&](Transition& t) { return submit(*route, t, t.notification); });
    } catch (const std::exception& e) {
      log_.error("integration \"" + route->integration.name + "\": outages held back not paged: " + e.what());
    }
  }
  return paged;
}

std::uint64_t Router::silenced(std::size_t integration) const { return routes_.at(integration)->tracker.silenced(); }

void Router::dispatch(const Notification& n) {
  for (const auto& route : routes_) {
    const std::string& name = route->integration.name;
    // One integration's failure (spool I/O, payload) must not keep the
    // notification from the others.
    try {
      // Filters decide what opens an outage; an OKAY closes an open one
      // whatever they say since a configuration change (the tracker opens
      // nothing on an OKAY).
      if (n.severity != Severity::Okay && !route->integration.matches(n)) continue;
      route->tracker.process(n, [&](Transition& t) { return submit(*route, t, n); });
    } catch (const std::exception& e) {
      log_.error("integration \"" + name + "\": notification for " + OutageKey::of(n).identifier() + " not processed: " + e.what());
    } catch (...) {
      log_.error("integration \"" + name + "\": notification for " + OutageKey::of(n).identifier() +
                 " not processed: unknown exception");
    }
  }
}

std::size_t Router::open_outages(std::size_t integration) const {
  return routes_.at(integration)->tracker.open_outages();
}

std::uint64_t Router::folded(std::size_t integration) const { return routes_.at(integration)->tracker.folded(); }

void Router::for_each_open(
    FunctionRef<void(const std::string& integration, const OutageKey&, const Outage&)> visit) const {
  for (const auto& route : routes_)
    route->tracker.for_each_open(
        [&](const OutageKey& key, const Outage& outage) { visit(route->integration.name, key, outage); });
  for (const Kept& k : kept_)
    k.tracker->for_each_open([&](const OutageKey& key, const Outage& outage) { visit(k.integration, key, outage); });
}

void Router::snapshot(FunctionRef<void(std::string_view)> write) const {
  for (const auto& route : routes_) route->tracker.snapshot(write);
  for (const Kept& k : kept_) k.tracker->snapshot(write);
}

}  // namespace xmatters
