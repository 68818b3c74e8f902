#include "delivery/reply.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>

namespace xmatters {

Verdict classify(const HttpResult& r) {
  Verdict v;
  // A 2xx status line is the delivery, even when the body's transfer then
  // failed (timed out, cut short): sending again would page twice.
  if (r.status >= 200 && r.status < 300) {
    v.kind = Verdict::Kind::Delivered;
    return v;
  }
  // Worth another try: no reply at all, or a reply that says "later".
  const bool retryable = r.status == 0 || r.status == 408 || r.status == 425 || r.status == 429 ||
                         (r.status >= 500 && r.status <= 599);
  const bool integration_refused = r.status == 401 || r.status == 403 || r.status == 404;
  v.kind = retryable ? Verdict::Kind::Retry
                     : integration_refused ? Verdict::Kind::Pause : Verdict::Kind::DeadLetter;
  if (r.status != 0)
    v.reason = "HTTP " + std::to_string(r.status) + (r.reply_start.empty() ? "" : ": " + r.reply_start);
  else
    v.reason = r.error;
  if (retryable && !r.retry_after.empty()) v.after = parse_retry_after(r.retry_after, r.received);
  return v;
}

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value,
                                                      std::chrono::system_clock::time_point now) {
  const std::size_t b = value.find_first_not_of(" \t");
  if (b == std::string::npos) return std::nullopt;
  const std::string v = value.substr(b, value.find_last_not_of(" \t") - b + 1);
  if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
    // A century is "forever" for a retry; longer would only overflow.
    if (v.size() > 10) return std::chrono::seconds(3153600000LL);
    return std::chrono::seconds(std::stoll(v));
  }
  const time_t when = curl_getdate(v.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  // Clamped first: a date past 2262, or long before 1970, would overflow the
  // clock's nanoseconds; a century is "forever" as above, a past date 0.
  const time_t now_t = std::chrono::system_clock::to_time_t(now);
  const auto wait =
      std::chrono::system_clock::from_time_t(std::clamp<time_t>(when, now_t, now_t + 3153600000LL)) - now;
  return std::max(std::chrono::seconds(0), std::chrono::duration_cast<std::chrono::seconds>(wait));
}

}  // namespace xmatters
