#include "delivery/flood_minute.h"

#include <algorithm>
#include <cstdint>

#include "store/spool_format.h"

namespace xmatters {

namespace sf = spool_format;

namespace {

// FLOOD_SENT's tags (doc/storage.md, Records). Never reuse or renumber one.
enum : std::uint32_t { kIntegration = 1, kType = 2, kAt = 3 };
constexpr std::uint8_t kRecordOutage = 1, kRecordClear = 2;

std::int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string encode_flood_send(const FloodSend& send) {
  return sf::encode_tagged(sf::RecordType::FloodSent, [&](auto& w) {
    w.bytes(kIntegration, send.integration);
    w.u8(kType, send.type == EventType::Clear ? kRecordClear : kRecordOutage);
    w.i64(kAt, to_ns(send.at));
  });
}

std::optional<FloodSend> decode_flood_send(std::string_view bytes) {
  sf::Record rec{};
  if (bytes.empty() || sf::parse_record(bytes, 0, &rec) != bytes.size() || rec.type != sf::RecordType::FloodSent)
    return std::nullopt;
  sf::FieldReader r(rec.payload);
  FloodSend out;
  std::uint8_t type = 0;
  std::int64_t at = 0;
  bool good = true, has_at = false;
  std::uint32_t tag = 0;
  std::string_view v;
  while (r.next(&tag, &v)) {
    switch (tag) {
      case kIntegration: out.integration = std::string(v); break;
      case kType: good &= sf::field_u8(v, &type); break;
      case kAt: good &= has_at = sf::field_i64(v, &at); break;
      default: break;  // a newer plugin's field
    }
  }
  if (!r.ok() || !good || !has_at || (type != kRecordOutage && type != kRecordClear)) return std::nullopt;
  out.type = type == kRecordClear ? EventType::Clear : EventType::Outage;
  out.at = TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(at)));
  return out;
}

std::vector<TimePoint> recovered_sends(const std::vector<std::string>& recovered, const std::string& integration,
                                       EventType type, unsigned limit, TimePoint now) {
  std::vector<TimePoint> out;
  if (limit == 0) return out;
  for (const std::string& bytes : recovered) {
    // One record of its own (Spool::append_change), never part of a fold's pair.
    const auto send = decode_flood_send(bytes);
    if (!send || send->type != type || send->integration != integration) continue;
    const TimePoint at = std::min(send->at, now);
    if (now - at < std::chrono::minutes(1)) out.push_back(at);
  }
  std::sort(out.begin(), out.end());
  if (out.size() > limit) out.erase(out.begin(), out.end() - limit);
  return out;
}

}  // namespace xmatters
