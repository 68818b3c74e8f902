// Whole-directory recovery: the fuzz input becomes the files of a fresh
// SpoolDir, which a Spool opens (and an OutageTracker recovers from), as
// collectd's start does. The first byte picks how:
// - even: the rest is files separated by kSeparator, named as segments 1, 2,
//   ... (bit 1 set: the last one is a compaction's leftover .tmp); the seeds
//   are real spool directories written by the spool and the tracker, in
//   format 1 (the release before format 2), 2, and both (an upgrade before
//   its first compaction), and 3's silences (v3_silences), FloodLimit's
//   minute (v3_flood_sent) and a close remembered (v3_closed_remembered);
// - odd: a log drawn record by record (events with the tracker's own outage
//   changes, acknowledgements, snapshots, stray bytes, truncations and
//   flipped bits) over a few segments, a .tmp and a file that is not the
//   spool's.
// Beyond no crash, hang or exception: recovery equals doc/storage.md's
// rules applied to the records whose CRC this target checks itself (the
// pending events in order, and the outage changes since the last
// SNAPSHOT); a spool whose newest segment's HEADER is of a newer format is
// refused and left alone; a .tmp is removed and other files left alone; opening again
// recovers the same; the tracker's table is made of valid OUTAGE_SET
// records, one per open outage, after the closes it remembers.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "outage/outage_tracker.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"

namespace {

namespace sf = xmatters::spool_format;

constexpr std::string_view kSeparator = "\n=spool-file=\n";
constexpr const char* kOther = "dead-letter.jsonl";

class Quiet : public xmatters::Logger {
 public:
  void log(xmatters::LogLevel, const std::string&) override {}
};

void write_file(const std::string& path, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) xmfuzz::fail("cannot create a file", path);
  if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) xmfuzz::fail("short write", path);
  ::close(fd);
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// A fresh directory, and everything in it removed at the end.
struct TempDir {
  std::string path;
  TempDir() {
    const char* base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string templ = std::string(base) + "/fuzz_spool_dir.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) xmfuzz::fail("mkdtemp");
    path = templ;
  }
  ~TempDir() {
    if (DIR* d = ::opendir(path.c_str())) {
      while (const dirent* e = ::readdir(d))
        if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..")
          ::unlink((path + "/" + e->d_name).c_str());
      ::closedir(d);
    }
    ::rmdir(path.c_str());
  }
};

using Files = std::map<std::string, std::string>;  // name -> contents

// --- the odd mode: a log drawn record by record ------------------------------------

void draw_log(FuzzedDataProvider& in, Files& files) {
  Quiet quiet;
  // The tracker makes the outage changes, so they are in its format.
  xmatters::OutageTracker source("ops", xmatters::TrackerOptions{}, quiet);
  std::vector<std::string> ids;
  std::string* file = &files[sf::segment_name(1)];
  std::int64_t clock = 1700000000;
  for (int steps = 0; steps < 64 && in.remaining_bytes() > 0; ++steps) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
      case 0: {  // a notification: its event with the change, or the change alone
        xmatters::Notification n;
        n.severity = in.ConsumeBool() ? xmatters::Severity::Okay : xmatters::Severity::Failure;
        n.time = xmatters::TimePoint(std::chrono::seconds(clock += in.ConsumeIntegralInRange<int>(0, 400)));
        n.host = "h" + std::to_string(in.ConsumeIntegralInRange<int>(0, 3));
        n.plugin = "cpu";
        const bool alone = in.ConsumeBool();
        source.process(n, [&](xmatters::Transition& t) {
          xmatters::Event e;
          e.event_id = "e" + std::to_string(ids.size());
          e.integration = "ops";
          e.outage_id = t.outage.id;
          e.type = t.type;
          e.created = n.time;
          e.body = xmfuzz::bytes(in, 32);
          e.change = t.change;
          *file += alone ? t.change : sf::encode_event(e);
          if (!alone) ids.push_back(e.event_id);
          return true;
        });
        break;
      }
      case 1:
        if (!ids.empty()) *file += sf::encode_ack(ids[in.ConsumeIntegralInRange<std::size_t>(0, ids.size() - 1)]);
        break;
      case 2: *file += sf::encode_snapshot(); break;
      case 3: *file += xmfuzz::bytes(in, 16); break;
      case 4:
        if (!file->empty()) file->resize(in.ConsumeIntegralInRange<std::size_t>(0, file->size() - 1));
        break;
      case 5:
        if (!file->empty()) {
          const auto bit = in.ConsumeIntegralInRange<std::size_t>(0, file->size() * 8 - 1);
          (*file)[bit / 8] = static_cast<char>((*file)[bit / 8] ^ (1 << (bit % 8)));
        }
        break;
      case 6: {  // the next records go to another file, which starts with a HEADER as the spool writes it, or not
        const auto seq = in.ConsumeIntegralInRange<std::uint64_t>(0, 4);
        const int kind = in.ConsumeIntegralInRange<int>(0, 3);
        file = &files[kind == 0 ? sf::temporary_name(seq) : kind == 1 ? kOther : sf::segment_name(seq)];
        if (file->empty() && in.ConsumeBool()) *file += sf::encode_header();
        break;
      }
      default: {  // an event of another integration, or with an odd id
        xmatters::Event e;
        e.event_id = xmfuzz::bytes(in, 8);
        if (e.event_id.empty()) e.event_id = "x";
        e.integration = xmfuzz::bytes(in, 8);
        e.body = xmfuzz::bytes(in, 16);
        *file += sf::encode_event(e);
        ids.push_back(e.event_id);
        break;
      }
    }
  }
}

// --- the expected recovery, from doc/storage.md -----------------------------------

struct Expected {
  std::uint32_t version = 0;            // the newest segment's format
  std::vector<xmatters::Event> events;  // pending, in the order of their last EVENT
  std::vector<std::string> changes;     // since the last SNAPSHOT, in log order
};

// A segment's format: its first record's if that is a valid HEADER, 1
// otherwise, 0 when empty.
std::uint32_t version_of(std::string_view data) {
  if (data.empty()) return 0;
  sf::Record rec{};
  std::uint32_t version = 0;
  if (sf::parse_record(data, 0, &rec) > 0 && rec.payload.size() <= sf::kMaxHeaderPayload &&
      sf::decode_header(rec, &version))
    return version;
  return 1;
}

Expected expected_recovery(const Files& files) {
  std::map<std::uint64_t, const std::string*> segments;
  for (const auto& [name, data] : files) {
    std::uint64_t seq = 0;
    if (sf::classify_name(name, &seq) == sf::NameKind::Segment) segments[seq] = &data;
  }
  Expected x;
  for (const auto& [seq, data] : segments) x.version = std::max(x.version, version_of(*data));
  for (const auto& [seq, data] : segments) {
    const std::string_view d(*data);
    sf::scan_records(d, [&](const sf::Record& rec, std::uint64_t, std::string_view bytes) {
      const auto* h = reinterpret_cast<const unsigned char*>(bytes.data());
      if (sf::load_u32le(h) != sf::mask_crc(sf::crc32(bytes.substr(8))))
        xmfuzz::fail("the scan accepted a record whose CRC does not match");
      const auto forget = [&](std::string_view id) {
        x.events.erase(std::remove_if(x.events.begin(), x.events.end(),
                                      [&](const xmatters::Event& e) { return e.event_id == id; }),
                       x.events.end());
      };
      switch (rec.type) {
        case sf::RecordType::Header: return;
        case sf::RecordType::EventV1:
        case sf::RecordType::Event: {
          xmatters::Event e;
          if (!sf::decode_event(rec, &e)) return;
          if (!e.change.empty()) x.changes.push_back(e.change);
          e.change.clear();
          forget(e.event_id);
          x.events.push_back(std::move(e));
          return;
        }
        case sf::RecordType::Ack: forget(rec.payload); return;
        case sf::RecordType::OutageSetV1:
        case sf::RecordType::OutageCloseV1:
        case sf::RecordType::OutageSet:
        case sf::RecordType::OutageClose:
        case sf::RecordType::Silence:    // the table's, as the outage changes
        case sf::RecordType::FloodSent:  // FloodLimit's minute, likewise
          x.changes.emplace_back(bytes);
          return;
        case sf::RecordType::Snapshot: x.changes.clear(); return;
      }
    });
  }
  return x;
}

void check_recovered(xmatters::Spool& spool, const Expected& x) {
  const std::vector<xmatters::Event> events = spool.take_recovered();
  if (events.size() != x.events.size() ||
      !std::equal(events.begin(), events.end(), x.events.begin(), xmfuzz::same_event))
    xmfuzz::fail("the recovered events are not the pending events of the log, in order");
  if (spool.take_recovered_changes() != x.changes)
    xmfuzz::fail("the recovered outage changes are not the log's since its last SNAPSHOT");
}

void check_tracker(const std::vector<std::string>& changes) {
  Quiet quiet;
  const xmatters::OutageTracker tracker("ops", xmatters::TrackerOptions{}, quiet, changes);
  std::string table;
  tracker.snapshot(table);
  std::size_t records = 0;
  bool set_seen = false;
  const sf::Damage damage = sf::scan_records(table, [&](const sf::Record& rec, std::uint64_t, std::string_view bytes) {
    // The closed value lists remembered come first, each an OUTAGE_CLOSE
    // with its memory; then the open outages.
    if (rec.type == sf::RecordType::OutageClose) {
      xmatters::Change c;
      if (set_seen || !xmatters::decode_change(bytes, &c) || !c.closed_start)
        xmfuzz::fail("the table holds an OUTAGE_CLOSE that is not a remembered close before the open outages");
      return;
    }
    if (rec.type != sf::RecordType::OutageSet) xmfuzz::fail("the table holds a record that is not OUTAGE_SET");
    set_seen = true;
    ++records;
  });
  if (damage.places > 0 || records != tracker.open_outages())
    xmfuzz::fail("the recovered table is not one valid OUTAGE_SET per open outage");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Files files;
  if (data[0] & 1) {
    FuzzedDataProvider in(data + 1, size - 1);
    draw_log(in, files);
  } else {
    std::vector<std::string_view> parts;
    std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    for (std::size_t at; (at = rest.find(kSeparator)) != std::string_view::npos && parts.size() < 7;
         rest.remove_prefix(at + kSeparator.size()))
      parts.push_back(rest.substr(0, at));
    parts.push_back(rest);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const bool tmp = (data[0] & 2) && i + 1 == parts.size() && i > 0;
      files[tmp ? sf::temporary_name(i + 1) : sf::segment_name(i + 1)] = std::string(parts[i]);
    }
  }

  TempDir dir;
  for (const auto& [name, contents] : files) write_file(dir.path + "/" + name, contents);
  const Expected x = expected_recovery(files);
  Quiet quiet;
  xmatters::SpoolOptions options;
  options.reserve_bytes = 0;  // no 1 MiB fallocate per input
  if (x.version > sf::kFormatVersion) {
    // A newer plugin's: refused, and nothing is touched.
    bool refused = false;
    try {
      xmatters::Spool spool(dir.path, quiet, nullptr, options);
    } catch (const xmatters::NewerSpoolFormat& e) {
      refused = e.found == x.version;
    } catch (const std::exception& e) {
      xmfuzz::fail("a newer spool was not refused as such", e.what());
    }
    if (!refused) xmfuzz::fail("a newer spool was opened");
    for (const auto& [name, contents] : files)
      if (!exists(dir.path + "/" + name)) xmfuzz::fail("a file of a newer spool went", name);
    return 0;
  }
  try {
    {
      xmatters::Spool spool(dir.path, quiet, nullptr, options);
      check_recovered(spool, x);
    }
    for (const auto& [name, contents] : files) {
      std::uint64_t seq = 0;
      const sf::NameKind kind = sf::classify_name(name, &seq);
      if (kind == sf::NameKind::Temporary && exists(dir.path + "/" + name)) xmfuzz::fail("a .tmp was left", name);
      if (kind == sf::NameKind::Other && !exists(dir.path + "/" + name)) xmfuzz::fail("a foreign file went", name);
    }
    // A second start (with the first one's empty segment) finds the same.
    xmatters::Spool again(dir.path, quiet, nullptr, options);
    check_recovered(again, x);
  } catch (const std::exception& e) {
    xmfuzz::fail("opening the spool threw", e.what());
  }
  check_tracker(x.changes);
  return 0;
}
