// The one parser of the spool's log (doc/storage.md, Recovery).
#include "store/spool_replay.h"

#include <cerrno>
#include <string_view>
#include <system_error>
#include <unordered_map>

namespace xmatters {

namespace sf = spool_format;

NewerSpoolFormat::NewerSpoolFormat(const std::string& dir, std::uint32_t f, std::uint32_t k)
    : std::runtime_error("spool " + dir + " is in format version " + std::to_string(f) +
                         ", written by a newer plugin; this plugin reads versions 1 to " + std::to_string(k)),
      found(f),
      known(k) {}

namespace {

struct Listing {
  std::vector<std::uint64_t> segments;  // sorted
  std::vector<std::string> temporaries, legacy;
  std::uint64_t highest = 0;
};

Listing list_dir(SpoolIo& io, const std::string& dir) {
  Listing l;
  for (const std::string& name : io.list(dir)) {
    std::uint64_t seq = 0;
    switch (sf::classify_name(name, &seq)) {
      case sf::NameKind::Segment:
        l.segments.push_back(seq);
        break;
      case sf::NameKind::Temporary:
        l.temporaries.push_back(name);
        break;
      case sf::NameKind::Other:
        if (name.compare(0, 8, "outages-") == 0 && name.find(".json") != std::string::npos) l.legacy.push_back(name);
        continue;  // dead-letter.jsonl, reserve, lock, ...: not the log's
    }
    l.highest = std::max(l.highest, seq);
  }
  std::sort(l.segments.begin(), l.segments.end());
  return l;
}

// The format a segment is written in: its HEADER's, the first record of
// every segment since format 2; 1 for one that starts otherwise, 0 for an
// empty one.
std::uint32_t segment_version(SpoolIo& io, const std::string& path, std::uint64_t size) {
  if (size == 0) return 0;
  const std::string head = io.read_at(path, 0, static_cast<std::size_t>(std::min<std::uint64_t>(size, sf::kHeaderSize)));
  const auto* h = reinterpret_cast<const unsigned char*>(head.data());
  const std::uint32_t length = head.size() == sf::kHeaderSize ? sf::load_u32le(h + 4) : 0;
  if (head.size() < sf::kHeaderSize || h[8] != static_cast<unsigned char>(sf::RecordType::Header) ||
      length > sf::kMaxHeaderPayload || sf::kHeaderSize + length > size)
    return 1;
  const std::string bytes = io.read_at(path, 0, sf::kHeaderSize + length);
  sf::Record rec{};
  std::uint32_t version = 0;
  if (sf::parse_record(bytes, 0, &rec) != bytes.size() || !sf::decode_header(rec, &version)) return 1;
  return version;
}

std::uint32_t newest_version(SpoolIo& io, const std::string& dir, const std::vector<std::uint64_t>& segments) {
  std::uint32_t newest = 0;
  for (const std::uint64_t seq : segments) {
    const std::string path = dir + "/" + sf::segment_name(seq);
    newest = std::max(newest, segment_version(io, path, io.file_size(path)));
  }
  return newest;
}

}  // namespace

std::uint32_t spool_format_version(SpoolIo& io, const std::string& dir) {
  return newest_version(io, dir, list_dir(io, dir).segments);
}

SpoolContents replay_spool(SpoolIo& io, const std::string& dir, bool bodies) {
  Listing listing = list_dir(io, dir);
  SpoolContents out;
  out.format_version = newest_version(io, dir, listing.segments);
  if (out.format_version > sf::kFormatVersion) throw NewerSpoolFormat(dir, out.format_version, sf::kFormatVersion);
  out.temporaries = std::move(listing.temporaries);
  out.legacy_files = std::move(listing.legacy);
  out.highest_seq = listing.highest;

  std::unordered_map<std::string, SpoolEvent> pending;
  for (const std::uint64_t seq : listing.segments) {
    const std::string name = sf::segment_name(seq);
    const std::string path = dir + "/" + name;
    const std::uint64_t size = io.file_size(path);
    out.segments[seq] = size;
    std::size_t undecodable = 0;
    const auto replay_record = [&](const sf::Record& rec, std::uint64_t offset, std::string_view bytes) {
      switch (rec.type) {
        case sf::RecordType::Header:
          return;  // read by segment_version
        case sf::RecordType::EventV1:
        case sf::RecordType::Event: {
          SpoolEvent e;
          if (!sf::decode_event(rec, &e.event)) {
            ++undecodable;
            return;
          }
          if (!e.event.change.empty()) out.changes.push_back(std::move(e.event.change));
          e.event.change.clear();
          if (!bodies) e.event.body.clear();
          e.loc = SpoolLoc{seq, offset, static_cast<std::uint32_t>(bytes.size())};
          // A later record of the same event (a copy written by
          // compaction) takes the earlier one's place in the order.
          std::string id = e.event.event_id;
          pending[std::move(id)] = std::move(e);
          return;
        }
        case sf::RecordType::Ack:
          pending.erase(std::string(rec.payload));  // absent: its EVENT was in a deleted segment
          return;
        case sf::RecordType::OutageSetV1:
        case sf::RecordType::OutageCloseV1:
        case sf::RecordType::OutageSet:
        case sf::RecordType::OutageClose:
        case sf::RecordType::Silence:  // the table's too: a SNAPSHOT rewrites them
          out.changes.emplace_back(bytes);
          return;
        case sf::RecordType::FloodSent:
          // FloodLimit's minute: kept with the outage changes, whose
          // consumers (the tracker, the delivery) take it from there; a
          // SNAPSHOT drops it with them, and compaction writes again what
          // is still in the minute.
          out.changes.emplace_back(bytes);
          return;
        case sf::RecordType::Snapshot:
          // What follows is the whole outage table as of then.
          out.changes.clear();
          return;
      }
    };
    // Read in windows, as compaction reads: a whole segment in one buffer
    // would be freed as one large block, which glibc then keeps
    // (doc/benchmarks.md).
    const sf::Damage damage = sf::scan_file(io, path, size, replay_record);
    if (damage.places > 0 || undecodable > 0)
      out.damage.push_back(SpoolDamage{name, damage.bytes, damage.places, damage.at_end, undecodable});
  }
  out.pending.reserve(pending.size());
  for (auto& [id, e] : pending) out.pending.push_back(std::move(e));
  std::sort(out.pending.begin(), out.pending.end(),
            [](const SpoolEvent& a, const SpoolEvent& b) { return before(a.loc, b.loc); });
  return out;
}

SpoolContents read_spool(const std::string& dir, bool bodies) {
  const std::shared_ptr<SpoolIo> io = posix_spool_io();
  // A compaction of the running plugin may delete a segment between the
  // listing and its reading; its records are then in the compacted one.
  for (int attempt = 1;; ++attempt) {
    try {
      return replay_spool(*io, dir, bodies);
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::no_such_file_or_directory || attempt == 5) throw;
    }
  }
}

}  // namespace xmatters
