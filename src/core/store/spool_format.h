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

#include "outage/event.h"

namespace xmatters {
namespace spool_format {

// The format this code writes, and the newest it reads. The rule for
// changing the format: doc/storage.md, "Changing the format".
inline constexpr std::uint32_t kFormatVersion = 3;

inline constexpr std::size_t kHeaderSize = 9;
// A larger length is damage, not a record: no event comes near it.
inline constexpr std::uint32_t kMaxPayload = 16u << 20;

// The record types (doc/storage.md, Records). A type's number says how its
// payload is encoded: the types of format 1 have positional payloads and
// are only read, never written; those of format 2 on have tagged fields
// (below). A new type takes the next number, raises kLastType and
// kFormatVersion (an older plugin would take it for damage), and gets a
// case in replay_spool (spool_replay.cc).
enum class RecordType : std::uint8_t {
  EventV1 = 1,        // format 1, read only
  Ack = 2,            // the event_id's bytes
  OutageSetV1 = 3,    // format 1, read only
  OutageCloseV1 = 4,  // format 1, read only
  Snapshot = 5,       // empty: "the outage table is exactly what follows"
  Header = 6,         // first in every segment since format 2: its format version
  Event = 7,
  OutageSet = 8,
  OutageClose = 9,
  Silence = 10,    // since format 3: an operator's silence (silence.h)
  FloodSent = 11,  // since format 3: a request of FloodLimit's minute (flood_minute.h)
};
inline constexpr std::uint8_t kLastType = 11;
// A HEADER's payload is at most this long (a longer one is damage): the
// format is checked from the first bytes of each segment only.
inline constexpr std::uint32_t kMaxHeaderPayload = 4096;

inline bool is_event(RecordType t) { return t == RecordType::Event || t == RecordType::EventV1; }
inline bool is_change(RecordType t) {
  return t == RecordType::OutageSet || t == RecordType::OutageClose || t == RecordType::OutageSetV1 ||
         t == RecordType::OutageCloseV1;
}

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
  // LEB128: 7 bits a byte, low first.
  void varint(std::uint64_t v) {
    for (; v >= 0x80; v >>= 7) u8(static_cast<std::uint8_t>(v | 0x80));
    u8(static_cast<std::uint8_t>(v));
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

// --- tagged fields (format 2 on) -------------------------------------------------
//
// A payload is a sequence of fields: varint tag, varint length, that many
// bytes. An integer's bytes are little-endian, of its size (u8 1, u32 4,
// i64 8); a nested message's are fields again. A reader skips tags it does
// not know (a newer plugin's) and takes a default for tags that are absent
// (an older plugin's); a repeated tag is a list. Adding a field is a new
// tag, never a new meaning for an old one.

inline std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// Counts the bytes that FieldWriter would write for the same calls: an
// encoder is written once, as a template over both, and the record is
// built in one allocation of the exact size.
class FieldSizer {
 public:
  void u8(std::uint32_t tag, std::uint8_t) { add(tag, 1); }
  void u32(std::uint32_t tag, std::uint32_t) { add(tag, 4); }
  void i64(std::uint32_t tag, std::int64_t) { add(tag, 8); }
  void bytes(std::uint32_t tag, std::string_view s) { add(tag, s.size()); }
  template <typename Fill>
  void message(std::uint32_t tag, Fill&& fill) {
    FieldSizer inner;
    fill(inner);
    add(tag, inner.size());
  }
  std::size_t size() const { return size_; }

 private:
  void add(std::uint32_t tag, std::size_t n) { size_ += varint_size(tag) + varint_size(n) + n; }
  std::size_t size_ = 0;
};

class FieldWriter {
 public:
  explicit FieldWriter(RecordBuilder& b) : b_(b) {}
  void u8(std::uint32_t tag, std::uint8_t v) {
    head(tag, 1);
    b_.u8(v);
  }
  void u32(std::uint32_t tag, std::uint32_t v) {
    head(tag, 4);
    b_.u32(v);
  }
  void i64(std::uint32_t tag, std::int64_t v) {
    head(tag, 8);
    b_.i64(v);
  }
  void bytes(std::uint32_t tag, std::string_view s) {
    head(tag, s.size());
    b_.bytes(s);
  }
  // fill(w) writes the nested fields, called once with a FieldSizer, once
  // with this writer.
  template <typename Fill>
  void message(std::uint32_t tag, Fill&& fill) {
    FieldSizer inner;
    fill(inner);
    head(tag, inner.size());
    fill(*this);
  }

 private:
  void head(std::uint32_t tag, std::size_t n) {
    b_.varint(tag);
    b_.varint(n);
  }
  RecordBuilder& b_;
};

// One framed record of tagged fields: put(w) writes them, called with a
// FieldSizer and then a FieldWriter. Throws std::length_error past
// kMaxPayload.
template <typename Put>
std::string encode_tagged(RecordType type, Put&& put) {
  FieldSizer sizer;
  put(sizer);
  RecordBuilder b(type, sizer.size());
  FieldWriter w(b);
  put(w);
  return std::move(b).finish();
}

// Reads tagged fields front to back.
class FieldReader {
 public:
  explicit FieldReader(std::string_view s) : s_(s) {}
  // The next field; false at the end, or where the rest is malformed (ok()
  // is then false).
  bool next(std::uint32_t* tag, std::string_view* value) {
    if (s_.empty()) return false;
    std::uint64_t t = 0, n = 0;
    if (!varint(&t) || !varint(&n) || t == 0 || t > 0xFFFFFFFFu || n > s_.size()) {
      ok_ = false;
      s_ = {};
      return false;
    }
    *tag = static_cast<std::uint32_t>(t);
    *value = s_.substr(0, static_cast<std::size_t>(n));
    s_.remove_prefix(static_cast<std::size_t>(n));
    return true;
  }
  bool ok() const { return ok_; }

 private:
  bool varint(std::uint64_t* v) {
    *v = 0;
    for (unsigned shift = 0; shift < 64 && !s_.empty(); shift += 7) {
      const auto byte = static_cast<unsigned char>(s_[0]);
      s_.remove_prefix(1);
      *v |= std::uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }
  std::string_view s_;
  bool ok_ = true;
};

// A field's value as an integer; false when its size is not the integer's.
inline bool field_u8(std::string_view v, std::uint8_t* out) {
  if (v.size() != 1) return false;
  *out = static_cast<unsigned char>(v[0]);
  return true;
}
inline bool field_u32(std::string_view v, std::uint32_t* out) {
  if (v.size() != 4) return false;
  *out = load_u32le(reinterpret_cast<const unsigned char*>(v.data()));
  return true;
}
inline bool field_i64(std::string_view v, std::int64_t* out) {
  if (v.size() != 8) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  *out = static_cast<std::int64_t>(std::uint64_t{load_u32le(p + 4)} << 32 | load_u32le(p));
  return true;
}

// --- format 1's positional payloads (read only) -------------------------------------

// Reads a payload front to back: u8, u32, i64 little-endian, a string as a
// u32 length and its bytes; any overrun makes it malformed (false), and
// done() says whether nothing is left over.
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

// Whole framed records in the current format, ready for one write(2).
// Throw std::length_error when the payload would exceed kMaxPayload.
std::string encode_header();  // this code's kFormatVersion
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
      if (h[8] >= 1 && h[8] <= kLastType && length <= kMaxPayload)
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

// Decodes an EVENT record (of either format); false when it is malformed
// or not an EVENT.
bool decode_event(const Record& rec, Event* out);
// Only its event_id; false when it has none.
bool decode_event_id(const Record& rec, std::string_view* id);
// A HEADER record's format version; false when it is malformed.
bool decode_header(const Record& rec, std::uint32_t* version);

// "spool-000042.log" / "spool-000042.log.tmp".
std::string segment_name(std::uint64_t seq);
std::string temporary_name(std::uint64_t seq);
enum class NameKind { Other, Segment, Temporary };
// Classifies a directory entry; *seq is set for a segment or temporary.
NameKind classify_name(std::string_view name, std::uint64_t* seq);

}  // namespace spool_format
}  // namespace xmatters
