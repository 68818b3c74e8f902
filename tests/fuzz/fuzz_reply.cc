// A reply's classification (reply.h): the Retry-After value as any bytes,
// the rest of the reply drawn. parse_retry_after gives nothing or a wait of
// at least 0 s, and delta-seconds their own number; classify delivers
// exactly the 2xx replies and keeps a Retry-After only for a retry.
#include <cctype>
#include <chrono>
#include <string>

#include "fuzz_support.h"
#include "delivery/reply.h"

namespace {

void check_retry_after(const std::string& value) {
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  const auto wait = xmatters::parse_retry_after(value, now);
  if (wait && wait->count() < 0) xmfuzz::fail("a negative Retry-After wait", value);
  const std::size_t b = value.find_first_not_of(" \t");
  if (b == std::string::npos) return;
  const std::string v = value.substr(b, value.find_last_not_of(" \t") - b + 1);
  bool digits = true;
  for (unsigned char c : v) digits = digits && std::isdigit(c);
  if (digits && v.size() <= 10 && (!wait || wait->count() != std::stoll(v)))
    xmfuzz::fail("delta-seconds read as another wait", value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The corpus's plain inputs are Retry-After values as they are.
  check_retry_after(std::string(reinterpret_cast<const char*>(data), size));

  FuzzedDataProvider in(data, size);
  xmatters::HttpResult r;
  r.status = in.ConsumeBool() ? in.ConsumeIntegralInRange<long>(0, 999) : in.ConsumeIntegral<long>();
  r.error = xmfuzz::bytes(in, 64);
  r.timed_out = in.ConsumeBool();
  r.cancelled = in.ConsumeBool();
  r.reply_start = xmfuzz::bytes(in, 200);
  r.request_id = xmfuzz::bytes(in, 40);
  const std::string retry_after = in.ConsumeRemainingBytesAsString();
  check_retry_after(retry_after);
  r.retry_after = retry_after;
  r.received = std::chrono::system_clock::now();

  const xmatters::Verdict v = xmatters::classify(r);
  const bool two_xx = r.status >= 200 && r.status <= 299;
  if ((v.kind == xmatters::Verdict::Kind::Delivered) != two_xx)
    xmfuzz::fail("delivered is not the same as a 2xx status", std::to_string(r.status));
  if (v.after && (v.kind != xmatters::Verdict::Kind::Retry || v.after->count() < 0))
    xmfuzz::fail("a Retry-After kept for something other than a retry, or negative");
  return 0;
}
