// The spool's on-disk format (CONTRACT §5).
//
// SpoolDir holds segment files named spool-NNNNNN.log (a decimal sequence
// number, zero-padded to at least six digits; replayed in numeric order).
// Every other file in SpoolDir (dead-letter.jsonl, outages-*.json, anything
// an operator left there) belongs to someone else and is never read or
// removed. spool-NNNNNN.log.tmp is a compacted segment being written; one
// left by a crash is incomplete by definition and is removed at open.
//
// A segment is a plain sequence of records, each written with one write(2):
//
//   +-----------+-----------+------+-----------------+
//   | crc (4)   | length (4)| type | payload         |
//   +-----------+-----------+------+-----------------+
//     masked CRC32C of type and payload, little-endian
//                 payload length in bytes, little-endian
//                             1 byte: 1 = EVENT, 2 = ACK
//
// EVENT payload: u32 length + bytes of event_id, integration and outage_id,
// u8 event type (1 outage, 2 clear), i64 created (nanoseconds since the Unix
// epoch), u32 length + bytes of body; all integers little-endian.
// ACK payload: the bytes of the acknowledged event_id.
//
// Why no fixed blocks (as LevelDB's log has): records are small and written
// whole, so the only damage we expect is a torn tail (a crash or power loss in
// the middle of a write, or a file system that extends the size before the
// data and leaves zeros) and, rarely, a flipped byte. The reader recovers from
// both by resynchronising: where no valid record starts, it moves forward one
// byte at a time until a header with a plausible type and length and a
// matching CRC starts again. A random match needs a 1 in 2^32 CRC accident at
// a position whose type and length are also plausible, so it is not a
// practical concern; a region of zeros never matches because type 0 is
// invalid. Blocks would bound that scan but cost padding and a record split
// across blocks, i.e. more than one write(2) per record.
//
// Why the CRC is masked (rotated and offset, as in the snappy framing
// format): the CRC of a string that itself contains CRCs is weak, and an event
// body may well contain bytes of a spool record (a spool copied into a
// payload, a test fixture); masking makes an embedded record's stored CRC
// useless as a match for the outer one. It also makes the CRC of an empty
// payload non-zero.
//
// Replay semantics: an EVENT makes its event_id pending, an ACK makes it not
// pending. A later EVENT with an event_id already pending (a copy written by
// compaction) moves that event to the copy's position: the copy is in the
// original append order, so the recovered order stays the append order even
// when a crash left both the copies and some of the originals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "event.h"

namespace xmatters {
namespace spool_format {

inline constexpr std::size_t kHeaderSize = 9;
// A larger length is damage, not a record: no event comes near it.
inline constexpr std::uint32_t kMaxPayload = 16u << 20;

enum class RecordType : std::uint8_t { Event = 1, Ack = 2 };

// CRC-32C (Castagnoli), extended over data from a previous value.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0);
// The same, with tables only: what crc32c uses where the CPU has no CRC32C
// instruction; tests check that both agree.
std::uint32_t crc32c_table(std::string_view data, std::uint32_t crc = 0);
std::uint32_t mask_crc(std::uint32_t crc);
std::uint32_t unmask_crc(std::uint32_t masked);

// Whole framed records, ready for one write(2). Throw std::length_error when
// the payload would exceed kMaxPayload.
std::string encode_event(const Event& event);
std::string encode_ack(std::string_view event_id);

struct Record {
  RecordType type;
  std::string_view payload;  // points into the parsed buffer
};

// The size of the valid record that starts at data[offset] (filling *out),
// or 0 when none starts there (bad CRC, bad type or length, or truncated).
std::size_t parse_record(std::string_view data, std::size_t offset, Record* out);

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
