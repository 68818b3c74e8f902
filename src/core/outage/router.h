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

#include "config/config.h"
#include "silence/coverage.h"
#include "outage/event.h"
#include "util/function_ref.h"
#include "util/log.h"
#include "outage/notification.h"
#include "outage/outage_tracker.h"
#include "payload/payload.h"

namespace xmatters {

class Router {
 public:
  // Outage state of each integration is recovered from the sink's spool
  // (EventSink::recovered_changes) and logged through it. config must
  // outlive the router. Open outages of an integration that is no longer
  // configured are kept as they are (snapshot, for_each_open), each named
  // in a WARNING, until it is configured again (collectd-xmatters(5) OUTAGES).
  // coverage (silences and maintenance windows), when given, must outlive
  // the router too.
  Router(const Config& config, EventSink& sink, Logger& log, const Coverage* coverage = nullptr);

  // Thread-safe; called from collectd's threads.
  void dispatch(const Notification& n);

  std::size_t open_outages(std::size_t integration) const;
  // Outages folded into the integration's flood outage since start (FloodLimit).
  std::uint64_t folded(std::size_t integration) const;
  // Outage events held back by silences and maintenance windows since start.
  std::uint64_t silenced(std::size_t integration) const;

  // Pages the outages held back that nothing covers at now any more
  // (OutageTracker::release), every integration's. Thread-safe.
  std::size_t release(TimePoint now);

  // Every integration's open outages (OutageTracker::for_each_open), by
  // integration name, those kept for an integration no longer configured
  // last. Thread-safe.
  void for_each_open(FunctionRef<void(const std::string& integration, const OutageKey&, const Outage&)> visit) const;

  // Every integration's open outages as framed records, passed to write a
  // few at a time: the spool's snapshot for compaction (SnapshotSource).
  // Thread-safe.
  void snapshot(FunctionRef<void(std::string_view)> write) const;

 private:
  struct Route {
    Route(const IntegrationConfig& i, Logger& log, const std::vector<std::string>& recovered, EventSink& sink,
          const Coverage* coverage);
    const IntegrationConfig& integration;
    OutageTracker tracker;
    PayloadBuilder payload;
  };
  // Builds a route's event and submits it; false when it is refused.
  bool submit(Route& route, Transition& t, const Notification& n);
  std::vector<std::unique_ptr<Route>> routes_;
  // The open outages of integrations no longer configured: never changed,
  // only written again by each compaction.
  struct Kept {
    std::string integration;
    std::unique_ptr<OutageTracker> tracker;
  };
  std::vector<Kept> kept_;
  EventSink& sink_;
  Logger& log_;
};

}  // namespace xmatters
