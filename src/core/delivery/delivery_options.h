// The delivery's tuning (delivery.h), in a header of its own so that the
// tests and the lanes' log lines see it without the whole engine.
#pragma once

#include <chrono>
#include <functional>

#include "delivery/reply.h"
#include "outage/notification.h"

namespace xmatters {

// Tuning that the configuration does not expose; the tests shorten it.
struct DeliveryOptions {
  // A failed request is retried after about initial_backoff, doubling with
  // each failure up to max_backoff (with jitter), or after Retry-After, but
  // never after more than max_backoff.
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{kBackoffCeiling};
  // StoreOptions::sync_interval of the store a delivery opens itself.
  std::chrono::milliseconds sync_interval{1000};
  // A paused integration (401, 403, 404) is tried again, and said so with
  // an ERROR, this often.
  std::chrono::milliseconds paused_retry_every{std::chrono::minutes(1)};
  // Deliveries have INFO lines at most delivered_info_lines per window per
  // integration, then one summary line; dead letters an ERROR at most each
  // dead_letter_error_every, with the count.
  std::chrono::milliseconds delivered_info_window{std::chrono::minutes(1)};
  unsigned delivered_info_lines = 10;
  std::chrono::milliseconds dead_letter_error_every{std::chrono::seconds(10)};
  // The clocks delivery decides by (steady_clock::now and
  // system_clock::now when null; tests set them, as TrackerOptions::
  // steady_now): steady_now for every due time and wait (backoff,
  // Retry-After, pauses, log lines' windows, FloodLimit's minute),
  // wall_now for an event's age (RetryMaxAge) and the times delivery
  // reports. A test that moves them calls Delivery::wake() after.
  std::function<std::chrono::steady_clock::time_point()> steady_now = nullptr;
  std::function<TimePoint()> wall_now = nullptr;
  // Tests only: called by resend() just before its letters leave the file,
  // so that a test can order a worker's new letter against that rewrite.
  std::function<void()> before_resend_rewrite;
};

}  // namespace xmatters
