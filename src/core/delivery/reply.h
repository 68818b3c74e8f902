// What an integration's reply means for the event it answers (collectd-xmatters(5) DELIVERY):
// delivered, worth another try (and when), or never deliverable. Pure: no
// I/O, no clock but the one passed in.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "delivery/http_client.h"

namespace xmatters {

// No retry delay and no pause of an integration is longer than this.
constexpr std::chrono::milliseconds kBackoffCeiling{std::chrono::minutes(5)};

struct Verdict {
  // Pause: the integration itself is refused (its credentials, its
  // permissions or its URL), not the event.
  enum class Kind { Delivered, Retry, Pause, DeadLetter };
  Kind kind = Kind::Retry;
  // Retry: the wait the integration asked for (Retry-After), if it did.
  std::optional<std::chrono::seconds> after;
  // Retry, Pause, DeadLetter: the status and the start of the reply, or why no
  // reply arrived; for the logs and the dead-letter file.
  std::string reason;
};

// Delivered for any 2xx status (whatever became of the body); Retry for
// 408, 425, 429, 5xx and no reply at all; Pause for 401, 403 and 404;
// DeadLetter for the rest. A retry keeps the reply's Retry-After, an HTTP
// date counted from when the reply came.
Verdict classify(const HttpResult& reply);

// Seconds to wait from a Retry-After value: delta-seconds or an HTTP date
// (relative to now, at least 0). nullopt when it is neither.
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value,
                                                      std::chrono::system_clock::time_point now);

}  // namespace xmatters
