// What a reply means (src/core/delivery/reply.h): every status class, transport errors,
// Retry-After in both forms, and what the reason shows.
#include "delivery/reply.h"
#include "testing.h"

using namespace std::chrono_literals;
using xmatters::classify;
using xmatters::Clock;
using xmatters::HttpResult;
using xmatters::parse_retry_after;
using Kind = xmatters::Verdict::Kind;

namespace {

HttpResult reply(long status, std::string start = "", std::string retry_after = "") {
  HttpResult r;
  r.status = status;
  r.reply_start = std::move(start);
  r.retry_after = retry_after;
  return r;
}

void test_2xx_delivered() {
  for (long status : {200L, 201L, 202L, 204L, 299L}) CU_ASSERT(classify(reply(status)).kind == Kind::Delivered);
  CU_ASSERT(classify(reply(202)).reason.empty());
}

// A 2xx status line is the delivery, whatever happened to the body after it
// (collectd-xmatters(5) DELIVERY): sending again would page twice.
void test_2xx_delivered_even_when_the_transfer_then_failed() {
  HttpResult r = reply(202);
  r.error = "Operation timed out after 10000 milliseconds with 0 bytes received";
  r.timed_out = true;
  CU_ASSERT(classify(r).kind == Kind::Delivered);
  r.timed_out = false;
  r.cancelled = true;  // cut by shutdown while the body was still coming
  CU_ASSERT(classify(r).kind == Kind::Delivered);
  r.status = 503;
  CU_ASSERT(classify(r).kind == Kind::Retry);
}

void test_retryable_statuses() {
  for (long status : {408L, 425L, 429L, 500L, 502L, 503L, 504L, 599L}) {
    const auto v = classify(reply(status, "busy"));
    CU_ASSERT(v.kind == Kind::Retry);
    CU_ASSERT_EQUAL(v.reason, "HTTP " + std::to_string(status) + ": busy");
  }
}

void test_other_statuses_dead_lettered() {
  for (long status : {100L, 199L, 300L, 301L, 302L, 304L, 400L, 405L, 410L, 413L, 422L, 600L, 999L}) {
    const auto v = classify(reply(status));
    CU_ASSERT(v.kind == Kind::DeadLetter);
    CU_ASSERT_EQUAL(v.reason, "HTTP " + std::to_string(status));
  }
  CU_ASSERT_EQUAL(classify(reply(400, "{\"reason\":\"bad\"}")).reason, "HTTP 400: {\"reason\":\"bad\"}");
}

// A revoked key, a missing permission, a wrong URL: the integration is
// refused, not the event (collectd-xmatters(5) DELIVERY).
void test_integration_refusals_pause() {
  for (long status : {401L, 403L, 404L}) {
    const auto v = classify(reply(status, "no"));
    CU_ASSERT(v.kind == Kind::Pause);
    CU_ASSERT_EQUAL(v.reason, "HTTP " + std::to_string(status) + ": no");
  }
}

void test_transport_error_retried() {
  HttpResult r;
  r.error = "Connection refused";
  const auto v = classify(r);
  CU_ASSERT(v.kind == Kind::Retry);
  CU_ASSERT_EQUAL(v.reason, "Connection refused");
  CU_ASSERT(!v.after.has_value());
  r.timed_out = true;
  CU_ASSERT(classify(r).kind == Kind::Retry);
}

void test_retry_after_kept_for_retries_only() {
  CU_ASSERT(classify(reply(429, "", "7")).after == 7s);
  CU_ASSERT(classify(reply(503, "", "0")).after == 0s);
  CU_ASSERT(!classify(reply(503)).after.has_value());
  CU_ASSERT(!classify(reply(503, "", "soon")).after.has_value());
  CU_ASSERT(!classify(reply(400, "", "7")).after.has_value());
  CU_ASSERT(!classify(reply(202, "", "7")).after.has_value());
}

void test_parse_retry_after() {
  const auto now = Clock::now();
  CU_ASSERT(parse_retry_after("120", now) == 120s);
  CU_ASSERT(parse_retry_after(" 0 ", now) == 0s);
  CU_ASSERT(parse_retry_after("\t3600\t", now) == 3600s);
  CU_ASSERT(!parse_retry_after("soon", now).has_value());
  CU_ASSERT(!parse_retry_after("", now).has_value());
  CU_ASSERT(!parse_retry_after("   ", now).has_value());
  CU_ASSERT(!parse_retry_after("-5", now).has_value());
  CU_ASSERT(!parse_retry_after("1.5", now).has_value());
  // Too many digits for any real wait: a century, not an overflow.
  CU_ASSERT(parse_retry_after("99999999999", now) == std::chrono::seconds(3153600000LL));
  CU_ASSERT(parse_retry_after("99999999999999999999999999", now) == std::chrono::seconds(3153600000LL));
  // An HTTP date: 1994-11-06 08:49:37 UTC is 784111777.
  const auto date_now = Clock::from_time_t(784111777 - 90);
  CU_ASSERT(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date_now) == 90s);
  // A date in the past means now.
  CU_ASSERT(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == 0s);
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {{"reply",
                       {{"2xx_delivered", test_2xx_delivered},
                        {"2xx_delivered_even_when_the_transfer_then_failed",
                         test_2xx_delivered_even_when_the_transfer_then_failed},
                        {"retryable_statuses", test_retryable_statuses},
                        {"other_statuses_dead_lettered", test_other_statuses_dead_lettered},
                        {"integration_refusals_pause", test_integration_refusals_pause},
                        {"transport_error_retried", test_transport_error_retried},
                        {"retry_after_kept_for_retries_only", test_retry_after_kept_for_retries_only},
                        {"parse_retry_after", test_parse_retry_after}}}});
}
