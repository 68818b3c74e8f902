#include "router.h"

#include <exception>
#include <utility>

#include "uuid.h"

namespace xmatters {

namespace {

TrackerOptions tracker_options(const IntegrationConfig& i) {
  TrackerOptions o;
  o.min_severity = i.min_severity;
  o.renotify_interval = i.renotify_interval;
  o.send_clear = i.send_clear;
  return o;
}


}  // namespace

Router::Route::Route(const IntegrationConfig& i, const std::string& spool_dir, Logger& log,
                     const std::vector<std::string>& recovered)
    : integration(i),
      tracker(spool_dir + "/outages-" + i.name + ".json", tracker_options(i), log, recovered),
      payload(i) {}

Router::Router(const Config& config, const std::string& spool_dir, EventSink& sink, Logger& log)
    : sink_(sink), log_(log) {
  routes_.reserve(config.integrations.size());
  for (const auto& integration : config.integrations)
    routes_.push_back(std::make_unique<Route>(integration, spool_dir, log, sink.recovered_changes(integration.name)));
}

void Router::dispatch(const Notification& n) {
  for (const auto& route : routes_) {
    const std::string& name = route->integration.name;
    // One integration's failure (spool I/O, payload) must not keep the
    // notification from the others.
    try {
      if (!route->integration.matches(n)) continue;
      route->tracker.process(n, [&](Transition& t) {
        try {
          Event event;
          event.event_id = random_uuid();
          event.integration = name;
          event.outage_id = t.outage.id;
          event.type = t.type;
          event.created = Clock::now();
          event.body = route->payload.build(t, event.event_id);
          event.change = std::move(t.change);
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
      });
    } catch (const std::exception& e) {
      log_.error("integration \"" + name + "\": notification for " + OutageKey::of(n).identifier() + " not processed: " + e.what());
    } catch (...) {
      log_.error("integration \"" + name + "\": notification for " + OutageKey::of(n).identifier() +
                 " not processed: unknown exception");
    }
  }
}

void Router::persist(const Event& event) {
  if (event.change.empty()) return;
  for (const auto& route : routes_)
    if (route->integration.name == event.integration) {
      route->tracker.persist(event.change);
      return;
    }
  // An integration no longer configured: no tracker keeps its outages.
}

std::size_t Router::open_outages(std::size_t integration) const {
  return routes_.at(integration)->tracker.open_outages();
}

void Router::sync() {
  for (const auto& route : routes_) route->tracker.sync();
}

}  // namespace xmatters
