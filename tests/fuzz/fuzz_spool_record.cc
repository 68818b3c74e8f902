// The spool's record reader (spool_format.h). The first byte picks a mode:
// - any bytes as a log file: every record the scan accepts
//   is checked again here, against the frame and a CRC computed by the
//   table code; an accepted EVENT re-encodes to exactly its bytes;
// - a record written from drawn fields, between drawn bytes, then maybe
//   truncated or with one bit flipped: undamaged, it reads back equal to
//   what was written; damaged, it is refused (a flip in the length field
//   moves the frame, so there only the check of what is accepted holds).
#include <string_view>

#include "delivery/flood_minute.h"
#include "fuzz_support.h"
#include "outage/outage.h"
#include "silence/silence.h"
#include "store/spool_format.h"

namespace {

namespace sf = xmatters::spool_format;

void check_accepted(std::string_view data, const sf::Record& rec, std::size_t offset, std::size_t size) {
  if (offset + size > data.size() || size < sf::kHeaderSize) xmfuzz::fail("a record outside the data");
  const auto* h = reinterpret_cast<const unsigned char*>(data.data() + offset);
  const std::uint32_t length = sf::load_u32le(h + 4);
  const std::uint8_t type = h[8];
  const bool type_ok = type >= 1 && type <= sf::kLastType;  // spool_format.h's RecordType
  if (!type_ok || type != static_cast<std::uint8_t>(rec.type)) xmfuzz::fail("a record of an unknown type");
  if (length != size - sf::kHeaderSize || rec.payload.size() != length ||
      rec.payload.data() != data.data() + offset + sf::kHeaderSize)
    xmfuzz::fail("a record whose frame does not match its length");
  if (sf::load_u32le(h) != sf::mask_crc(sf::crc32(data.substr(offset + 8, 1 + length))))
    xmfuzz::fail("a record whose CRC does not match was accepted");
  // What decodes (in either format) re-encodes in the current one to a
  // record that decodes to the same.
  xmatters::Event e;
  if (sf::decode_event(rec, &e)) {
    const std::string again = sf::encode_event(e);
    sf::Record r2{};
    xmatters::Event back;
    if (sf::parse_record(again, 0, &r2) != again.size() || !sf::decode_event(r2, &back) ||
        !xmfuzz::same_event(back, e) || back.change != e.change)
      xmfuzz::fail("a decoded EVENT does not re-encode to the same event");
  }
  xmatters::Change c;
  if (sf::is_change(rec.type) && xmatters::decode_change(data.substr(offset, size), &c)) {
    const std::string again =
        xmatters::encode_change(std::string(c.integration), c.key, c.set ? &*c.set : nullptr, c.last_time, c.closed_start,
                                &c.closed_members);
    xmatters::Change back;
    if (!xmatters::decode_change(again, &back) || back.integration != c.integration || !(back.key == c.key) ||
        back.set.has_value() != c.set.has_value() || back.last_time != c.last_time || back.closed_start != c.closed_start ||
        back.closed_members.size() != c.closed_members.size() ||
        (c.set && (back.set->id != c.set->id || back.set->sequence != c.set->sequence ||
                   back.set->members.size() != c.set->members.size() || back.set->folded != c.set->folded)))
      xmfuzz::fail("a decoded outage change does not re-encode to the same change");
  }
  // A silence decodes to one that re-encodes to the same bytes.
  xmatters::Silence silence;
  if (xmatters::decode_silence(data.substr(offset, size), &silence)) {
    const std::string again = xmatters::encode_silence(silence);
    xmatters::Silence back;
    if (!xmatters::decode_silence(again, &back) || xmatters::encode_silence(back) != again)
      xmfuzz::fail("a decoded SILENCE does not re-encode to the same silence");
  }
  // A FLOOD_SENT decodes to one that re-encodes to the same send.
  if (const auto send = xmatters::decode_flood_send(data.substr(offset, size))) {
    const auto back = xmatters::decode_flood_send(xmatters::encode_flood_send(*send));
    if (!back || back->integration != send->integration || back->type != send->type || back->at != send->at)
      xmfuzz::fail("a decoded FLOOD_SENT does not re-encode to the same send");
  }
  std::uint32_t version = 0;
  if (sf::decode_header(rec, &version) && version < 2) xmfuzz::fail("a HEADER of a version before 2");
}

void scan_checked(std::string_view data) {
  const sf::Damage damage = sf::scan_records(data, [&](const sf::Record& rec, std::uint64_t off, std::string_view bytes) {
    if (bytes.data() != data.data() + off) xmfuzz::fail("a record's bytes are not where its offset says");
    check_accepted(data, rec, static_cast<std::size_t>(off), bytes.size());
  });
  if (damage.bytes > data.size()) xmfuzz::fail("more damage than data");
}

void write_damage_read(FuzzedDataProvider& in) {
  xmatters::Event e;
  e.event_id = xmfuzz::bytes(in, 40);
  if (e.event_id.empty()) e.event_id = "e";  // the writer never writes an empty id
  e.integration = xmfuzz::bytes(in, 16);
  e.outage_id = xmfuzz::bytes(in, 40);
  e.type = in.ConsumeBool() ? xmatters::EventType::Clear : xmatters::EventType::Outage;
  e.created = xmfuzz::time_point(in);
  e.body = xmfuzz::bytes(in, 512);
  e.change = xmfuzz::bytes(in, 128);
  const std::string rec = sf::encode_event(e);
  const std::string prefix = xmfuzz::bytes(in, 64);
  const int damage = in.ConsumeIntegralInRange<int>(0, 2);  // none, truncated, flipped
  std::string region = rec;
  std::size_t flipped = 0;
  if (damage == 1) {
    region.resize(in.ConsumeIntegralInRange<std::size_t>(0, rec.size() - 1));
  } else if (damage == 2) {
    flipped = in.ConsumeIntegralInRange<std::size_t>(0, rec.size() * 8 - 1);
    region[flipped / 8] = static_cast<char>(region[flipped / 8] ^ (1 << (flipped % 8)));
  }
  if (damage != 1) region += in.ConsumeRemainingBytesAsString();
  const std::string data = prefix + region;

  sf::Record r{};
  const std::size_t n = sf::parse_record(data, prefix.size(), &r);
  if (damage == 0) {
    xmatters::Event back;
    if (n != rec.size() || r.type != sf::RecordType::Event || !sf::decode_event(r, &back) ||
        !xmfuzz::same_event(back, e))
      xmfuzz::fail("a record read back differs from the record written");
  } else if (n != 0) {
    const bool in_length = damage == 2 && flipped / 8 >= 4 && flipped / 8 < 8;
    if (!in_length) xmfuzz::fail(damage == 1 ? "a truncated record was accepted" : "a flipped bit went unnoticed");
    check_accepted(data, r, prefix.size(), n);
  }
  scan_checked(data);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    FuzzedDataProvider in(data + 1, size - 1);
    write_damage_read(in);
  } else {
    scan_checked(rest);
    std::uint64_t seq = 0;
    sf::classify_name(rest.substr(0, 64), &seq);
  }
  return 0;
}
