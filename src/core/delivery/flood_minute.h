// FloodLimit's minute across restarts (collectd-xmatters(5) OUTAGES): the
// requests an integration sent in the last minute, at most FloodLimit of
// each event type, kept in the spool as FLOOD_SENT records (doc/storage.md)
// so that a restart starts from them, not from an empty minute. The
// records' codec; FloodBudget (flood_budget.h) counts them.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outage/event.h"

namespace xmatters {

// One request sent (FLOOD_SENT): its integration, its event type and when.
struct FloodSend {
  std::string integration;
  EventType type = EventType::Outage;
  TimePoint at{};
};

// One framed FLOOD_SENT record.
std::string encode_flood_send(const FloodSend& send);
// The send of bytes when it is exactly one well-formed FLOOD_SENT record.
std::optional<FloodSend> decode_flood_send(std::string_view bytes);

// The sends of integration's event type found in the spool's recovered
// records (Spool::take_recovered_changes: each one or more framed records)
// that are within the minute before now, oldest first, the last `limit` of
// them. A send stamped after now (the clock went back) counts as now.
std::vector<TimePoint> recovered_sends(const std::vector<std::string>& recovered, const std::string& integration,
                                       EventType type, unsigned limit, TimePoint now);

// A send at wall-clock `at` as an instant of the steady clock, now being
// both steady_now and wall_now: FloodLimit's budgets count on the steady
// clock, which does not survive a restart.
inline std::chrono::steady_clock::time_point steady_of(TimePoint at, std::chrono::steady_clock::time_point steady_now,
                                                       TimePoint wall_now) {
  const auto ago = at < wall_now ? wall_now - at : TimePoint::duration::zero();
  return steady_now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(ago);
}

}  // namespace xmatters
