// The spool's on-disk format: segment files of CRC-framed records. The
// format, compaction, the recovery rule and the sync/delete ordering rule are
// stated in doc/storage.md; this header is its code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "event.h"

namespace xmatters {
namespace spool_format {

// The format this code writes, and the newest it reads (doc/storage.md,
// "Changing the format").
inline constexpr std::uint32_t kFormatVersion = 1;

inline constexpr std::size_t kHeaderSize = 9;
// A larger length is damage, not a record: no event comes near it.
inline constexpr std::uint32_t kMaxPayload = 16u << 20;

// Snapshot: "the outage table is exactly what follows" (doc/storage.md).
enum class RecordType : std::uint8_t { Event = 1, Ack = 2, OutageSet = 3, OutageClose = 4, Snapshot = 5 };

// CRC-32 (zlib's), extended over data from a previous value.
std::uint32_t crc32(std::string_view data, std::uint32_t crc = 0);
std::uint32_t mask_crc(std::uint32_t crc);
std::uint32_t unmask_crc(std::uint32_t masked);

// Byte by byte so that they are right on any endianness; compilers turn each
// into one load or store on little-endian machines (the store only when the
// bytes are assembled in a local first: stores through a char* may alias
// anything, which keeps them from being merged).
inline std::uint32_t load_u32le(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

inline void put_u32le(char* p, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  std::memcpy(p, b, 4);
}

// Builds one framed record in one buffer, for one write(2). The payload is
// written in place behind room left for the header, which is filled in last;
// given the payload's exact size, a record costs one allocation and no
// reallocation. Inline, because the tracker builds its records on
// collectd's thread, where a call per field would cost more than the field.
class RecordBuilder {
 public:
  // payload_size: the payload's size, or less (the buffer then grows).
  // Throws std::length_error when it exceeds kMaxPayload.
  RecordBuilder(RecordType type, std::size_t payload_size) {
    if (payload_size > kMaxPayload) throw std::length_error("record too large for the spool's framing");
    buf_.resize(kHeaderSize + payload_size);
    buf_[8] = static_cast<char>(type);
  }
  void u8(std::uint8_t v) { *room(1) = static_cast<char>(v); }
  void u32(std::uint32_t v) { put_u32le(room(4), v); }
  void i64(std::int64_t v) {
    const auto u = static_cast<std::uint64_t>(v);
    char* p = room(8);
    put_u32le(p, static_cast<std::uint32_t>(u & 0xFFFFFFFFu));
    put_u32le(p + 4, static_cast<std::uint32_t>(u >> 32));
  }
  void bytes(std::string_view s) {
    if (!s.empty()) std::memcpy(room(s.size()), s.data(), s.size());
  }
  // u32 length + bytes.
  void field(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    bytes(s);
  }
  // The whole record. Throws std::length_error when more than kMaxPayload
  // bytes were added after all.
  std::string finish() && {
    const std::size_t length = end_ - kHeaderSize;
    if (length > kMaxPayload) throw std::length_error("record too large for the spool's framing");
    buf_.resize(end_);  // a no-op unless payload_size was too large
    put_u32le(&buf_[4], static_cast<std::uint32_t>(length));
    put_u32le(&buf_[0], mask_crc(crc32(std::string_view(buf_).substr(8))));
    return std::move(buf_);
  }

 private:
  // Where the next n bytes of payload go.
  char* room(std::size_t n) {
    if (buf_.size() - end_ < n) buf_.resize(end_ + n);
    char* p = &buf_[end_];
    end_ += n;
    return p;
  }

  std::string buf_;
  std::size_t end_ = kHeaderSize;  // of the payload written so far
};

// Reads a payload front to back, in RecordBuilder's encoding; any overrun
// makes it malformed (false), and done() says whether nothing is left over.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view s) : s_(s) {}
  bool u8(std::uint8_t* v) {
    if (s_.size() < 1) return false;
    *v = static_cast<unsigned char>(s_[0]);
    s_.remove_prefix(1);
    return true;
  }
  bool u32(std::uint32_t* v) {
    if (s_.size() < 4) return false;
    *v = load_u32le(reinterpret_cast<const unsigned char*>(s_.data()));
    s_.remove_prefix(4);
    return true;
  }
  bool i64(std::int64_t* v) {
    std::uint32_t lo = 0, hi = 0;
    if (!u32(&lo) || !u32(&hi)) return false;
    *v = static_cast<std::int64_t>(std::uint64_t{hi} << 32 | lo);
    return true;
  }
  // u32 length + bytes; *v points into the payload.
  bool field(std::string_view* v) {
    std::uint32_t n = 0;
    if (!u32(&n) || s_.size() < n) return false;
    *v = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }
  bool done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

// Whole framed records, ready for one write(2). Throw std::length_error when
// the payload would exceed kMaxPayload.
std::string encode_event(const Event& event);
std::string encode_ack(std::string_view event_id);
std::string encode_snapshot();

struct Record {
  RecordType type;
  std::string_view payload;  // points into the parsed buffer
};

// The size of the valid record that starts at data[offset] (filling *out),
// or 0 when none starts there (bad CRC, unknown type, bad length, or
// truncated). Public for the fuzz targets.
std::size_t parse_record(std::string_view data, std::size_t offset, Record* out);

// What a scan found wrong in a log file.
struct Damage {
  std::uint64_t bytes = 0;  // skipped
  std::size_t places = 0;   // runs of skipped bytes
  bool at_end = false;      // the last run reaches the end of the data (a torn tail)
};

// Calls fn(record, offset, bytes) for every valid record in the size bytes
// that view(at, n) gives (the bytes from at on, at least n of them where
// there are so many; bytes: the whole record), in order. Where no valid
// record starts, moves on one byte at a time until one does (doc/storage.md
// says why that resynchronisation is sound). Only what may be a header asks
// view for more than a header's bytes, so that a reader in windows reads
// damage in windows too.
template <typename View, typename Fn>
Damage scan(std::uint64_t size, View&& view, Fn&& fn) {
  Damage damage;
  std::uint64_t damaged_from = 0;
  bool damaged = false;
  for (std::uint64_t pos = 0; pos < size;) {
    std::string_view data = view(pos, kHeaderSize);
    if (data.size() >= kHeaderSize) {
      const auto* h = reinterpret_cast<const unsigned char*>(data.data());
      const std::uint32_t length = load_u32le(h + 4);
      if (h[8] >= static_cast<unsigned char>(RecordType::Event) &&
          h[8] <= static_cast<unsigned char>(RecordType::Snapshot) && length <= kMaxPayload)
        data = view(pos, kHeaderSize + length);
    }
    Record rec{};
    const std::size_t n = parse_record(data, 0, &rec);
    if (n == 0) {
      if (!damaged) damaged_from = pos;
      damaged = true;
      ++pos;
      continue;
    }
    if (damaged) {
      damage.bytes += pos - damaged_from;
      ++damage.places;
      damaged = false;
    }
    fn(rec, pos, data.substr(0, n));
    pos += n;
  }
  if (damaged) {
    damage.bytes += size - damaged_from;
    ++damage.places;
    damage.at_end = true;
  }
  return damage;
}

// scan() over bytes in memory.
template <typename Fn>
Damage scan_records(std::string_view data, Fn&& fn) {
  return scan(data.size(), [data](std::uint64_t at, std::size_t) { return data.substr(static_cast<std::size_t>(at)); },
              std::forward<Fn>(fn));
}

// Decode an EVENT payload; false when it is malformed.
bool decode_event(std::string_view payload, Event* out);
// Only the event_id of an EVENT payload; false when it is malformed.
bool decode_event_id(std::string_view payload, std::string_view* id);

// "spool-000042.log" / "spool-000042.log.tmp".
std::string segment_name(std::uint64_t seq);
std::string temporary_name(std::uint64_t seq);
enum class NameKind { Other, Segment, Temporary };
// Classifies a directory entry; *seq is set for a segment or temporary.
NameKind classify_name(std::string_view name, std::uint64_t* seq);

}  // namespace spool_format
}  // namespace xmatters
