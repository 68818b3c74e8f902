// What the outage tracking produces and the delivery consumes.
#pragma once

#include <string>
#include <vector>

#include "notification.h"

namespace xmatters {

enum class EventType { Outage, Clear };

// "outage" / "clear", as in the payload's event_type.
const char* event_type_name(EventType t);

struct Event {
  std::string event_id;     // unique; the Idempotency-Key of every try
  std::string integration;  // name of the <Integration> it goes to
  std::string outage_id;    // events of one outage are delivered in order
  EventType type = EventType::Outage;
  TimePoint created;        // when the event was made; RetryMaxAge counts from here
  std::string body;         // the JSON payload, sent as it is
  // The outage change this event makes (OutageTracker's encoding). It is
  // spooled with the event, in the same write(2), and recorded by the
  // tracker only when the event leaves the spool: until then the spool is
  // where a crash recovers it from.
  std::string change;
};

// Takes finished events into custody. Implemented by the delivery engine.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Thread-safe; never waits on the network. Returns false when the event is
  // refused (QueueLimit reached for an outage event); a clear is never
  // refused. Once it returns true the event survives a crash of the process.
  virtual bool submit(Event event) = 0;
  // The change fields of the integration's events that were recovered from
  // an earlier run and are still undelivered (see Event::change).
  virtual std::vector<std::string> recovered_changes(const std::string& /*integration*/) const { return {}; }
};

}  // namespace xmatters
