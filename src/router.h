// The pipeline from a notification to events: route to the integrations
// whose filters match, track outages per integration, build the payload and
// hand the event to the sink.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "event.h"
#include "function_ref.h"
#include "log.h"
#include "notification.h"
#include "outage_tracker.h"
#include "payload.h"

namespace xmatters {

class Router {
 public:
  // Outage state of each integration is recovered from the sink's spool
  // (EventSink::recovered_changes) and logged through it. config must
  // outlive the router.
  Router(const Config& config, EventSink& sink, Logger& log);

  // Thread-safe; called from collectd's threads.
  void dispatch(const Notification& n);

  std::size_t open_outages(std::size_t integration) const;
  // Outages folded into the integration's flood outage since start (FloodLimit).
  std::uint64_t folded(std::size_t integration) const;

  // Every integration's open outages (OutageTracker::for_each_open), by
  // integration name. Thread-safe.
  void for_each_open(FunctionRef<void(const std::string& integration, const OutageKey&, const Outage&)> visit) const;

  // Every integration's open outages as framed records, passed to write a
  // few at a time: the spool's snapshot for compaction (SnapshotSource).
  // Thread-safe.
  void snapshot(FunctionRef<void(std::string_view)> write) const;

 private:
  struct Route {
    Route(const IntegrationConfig& i, Logger& log, const std::vector<std::string>& recovered, EventSink& sink);
    const IntegrationConfig& integration;
    OutageTracker tracker;
    PayloadBuilder payload;
  };
  std::vector<std::unique_ptr<Route>> routes_;
  EventSink& sink_;
  Logger& log_;
};

}  // namespace xmatters
