// What the outage tracking produces and the delivery consumes.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "outage/notification.h"

namespace xmatters {

class FloodBudget;

enum class EventType { Outage, Clear };

// "outage" / "clear", as in the payload's event_type.
inline const char* event_type_name(EventType t) { return t == EventType::Clear ? "clear" : "outage"; }

struct Event {
  std::string event_id;     // unique; the Idempotency-Key of every try
  std::string integration;  // name of the <Integration> it goes to
  std::string outage_id;    // events of one outage are delivered in order
  EventType type = EventType::Outage;
  TimePoint created;        // when the event was made; RetryMaxAge counts from here
  std::string body;         // the JSON payload, sent as it is
  // The outage change this event makes, one framed record (doc/storage.md).
  // It is spooled with the event, in the same write(2), so that a crash
  // cannot keep one without the other.
  std::string change;
  // A test page of collectd-xmatters test (collectd-xmatters(1)): sent once
  // and never after a restart, since nobody waits for its answer then.
  bool test = false;
  // Not sent before this (a growing flood outage's re-page, which leaves at
  // most a minute after its last page). Not spooled: after a restart, at once.
  std::chrono::steady_clock::time_point not_before{};
};

// Takes finished events into custody. Implemented by the delivery engine.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Thread-safe; never waits on the network. Returns false when the event is
  // refused (QueueLimit reached, or no room on disk, for an outage event); a
  // clear is never refused while delivery runs. Once it returns true the
  // event survives a crash of the process (a clear the disk could not take
  // is held in memory until it can).
  virtual bool submit(Event event) = 0;
  // Records an outage change that sends no event (one framed record).
  // Thread-safe; never throws.
  virtual void record_change(const std::string& /*record*/) {}
  // The outage changes found in the spool at start, every integration's, in
  // log order (Spool::take_recovered_changes).
  virtual std::vector<std::string> recovered_changes() const { return {}; }
  // The integration's FloodLimit budget, which its lane counts requests in
  // (flood_budget.h), for the tracker's fold decision; null: none is shared.
  virtual std::shared_ptr<FloodBudget> flood_budget(const std::string& /*integration*/) const { return nullptr; }
};

}  // namespace xmatters
