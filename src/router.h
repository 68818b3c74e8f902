// The pipeline from a notification to events: route to the integrations
// whose filters match, track outages per integration, build the payload and
// hand the event to the sink.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "event.h"
#include "log.h"
#include "notification.h"
#include "outage_tracker.h"
#include "payload.h"

namespace xmatters {

class Router {
 public:
  // Outage state of each integration persists in spool_dir, and in the
  // sink's undelivered events (EventSink::recovered_changes). config must
  // outlive the router.
  Router(const Config& config, const std::string& spool_dir, EventSink& sink, Logger& log);

  // Thread-safe; called from collectd's threads.
  void dispatch(const Notification& n);

  std::size_t open_outages(std::size_t integration) const;

  // Records the outage change an event carries (Event::change) in its
  // integration's tracker; called just before the event leaves the spool.
  // Thread-safe.
  void persist(const Event& event);

  // Flushes the open outages' journals to stable storage (see OutageTracker::sync).
  void sync();

 private:
  struct Route {
    // recovered: the change fields of the integration's undelivered events.
    Route(const IntegrationConfig& i, const std::string& spool_dir, Logger& log,
          const std::vector<std::string>& recovered);
    const IntegrationConfig& integration;
    OutageTracker tracker;
    PayloadBuilder payload;
  };
  std::vector<std::unique_ptr<Route>> routes_;
  EventSink& sink_;
  Logger& log_;
};

}  // namespace xmatters
