// A reply's Retry-After value (parse_retry_after): any bytes give nothing or
// a wait of at least 0 s; delta-seconds give their own number.
#include <cctype>
#include <chrono>
#include <string>

#include "fuzz_support.h"
#include "http_client.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string value(reinterpret_cast<const char*>(data), size);
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1795000000));
  const auto wait = xmatters::parse_retry_after(value, now);
  if (wait && wait->count() < 0) xmfuzz::fail("a negative Retry-After wait", value);
  const std::size_t b = value.find_first_not_of(" \t");
  if (b == std::string::npos) return 0;
  const std::string v = value.substr(b, value.find_last_not_of(" \t") - b + 1);
  bool digits = true;
  for (unsigned char c : v) digits = digits && std::isdigit(c);
  if (digits && v.size() <= 10 && (!wait || wait->count() != std::stoll(v)))
    xmfuzz::fail("delta-seconds read as another wait", value);
  return 0;
}
