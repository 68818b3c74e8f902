#include "outage_tracker.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "json_writer.h"
#include "resources.h"
#include "spool_format.h"
#include "utf8.h"
#include "uuid.h"

namespace xmatters {

namespace sf = spool_format;

OutageKey OutageKey::of(const Notification& n) {
  return OutageKey{n.host, n.plugin, n.plugin_instance, n.type, n.type_instance};
}

std::string OutageKey::identifier() const {
  std::string s = host + "/" + plugin;
  if (!plugin_instance.empty()) s += "-" + plugin_instance;
  if (!type.empty()) s += "/" + type;
  if (!type_instance.empty()) s += "-" + type_instance;
  return s;
}

bool OutageKey::operator==(const OutageKey& o) const {
  return host == o.host && plugin == o.plugin && plugin_instance == o.plugin_instance && type == o.type &&
         type_instance == o.type_instance;
}

namespace {

struct OutageKeyHash {
  std::size_t operator()(const OutageKey& k) const {
    std::size_t h = 0;
    for (const std::string* s : {&k.host, &k.plugin, &k.plugin_instance, &k.type, &k.type_instance})
      h = h * 1000003u ^ std::hash<std::string>{}(*s);
    return h;
  }
};

// --- the state files -------------------------------------------------------------

constexpr int kStateVersion = 2;

// Threads reorder a key's notifications by microseconds; one this much older
// than the last means the clock went back.
constexpr auto kClockStep = std::chrono::seconds(60);


std::int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint from_ns(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

const char kHex[] = "0123456789abcdef";

// collectd hands over arbitrary bytes, but a JSON string must be UTF-8: such
// a field is stored as {"hex": "..."} so that the key round-trips exactly.
void write_bytes(JsonWriter& w, const std::string& s) {
  if (valid_utf8(s)) {
    w.string(s);
    return;
  }
  std::string hex;
  hex.reserve(s.size() * 2);
  for (unsigned char c : s) {
    hex += kHex[c >> 4];
    hex += kHex[c & 0xf];
  }
  w.begin_object().key("hex").string(hex).end_object();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Throws std::runtime_error naming what is wrong.
std::string decode_bytes(const json_t* v, const char* field) {
  if (json_is_string(v)) return std::string(json_string_value(v), json_string_length(v));
  const json_t* hex = json_is_object(v) ? json_object_get(v, "hex") : nullptr;
  if (!json_is_string(hex)) throw std::runtime_error(std::string("bad \"") + field + "\"");
  const char* h = json_string_value(hex);
  const std::size_t len = json_string_length(hex);
  if (len % 2 != 0) throw std::runtime_error(std::string("bad hex in \"") + field + "\"");
  std::string out;
  out.reserve(len / 2);
  for (std::size_t i = 0; i < len; i += 2) {
    const int hi = hex_digit(h[i]), lo = hex_digit(h[i + 1]);
    if (hi < 0 || lo < 0) throw std::runtime_error(std::string("bad hex in \"") + field + "\"");
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

const json_t* member(const json_t* obj, const char* name) {
  const json_t* v = json_object_get(obj, name);
  if (v == nullptr) throw std::runtime_error(std::string("missing \"") + name + "\"");
  return v;
}

std::int64_t int_member(const json_t* obj, const char* name) {
  const json_t* v = member(obj, name);
  if (!json_is_integer(v)) throw std::runtime_error(std::string("\"") + name + "\" is not an integer");
  return json_integer_value(v);
}

bool valid_outage_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// One open outage as it goes to disk. Its last_time is the one of the
// outage's last change: a change of last_time alone is not written, or
// collectd's repeated FAILUREs (Persist true) would cost a journal record each.
struct Record {
  Outage outage;
  TimePoint last_time;
};

// A key as it goes to disk: the version of its last change, and its open
// outage unless that change closed it. A closed key is kept (a tombstone)
// for as long as an event of an older outage of the key may still be in the
// spool, whose change must not reopen that outage at the next start; see
// OutageTracker::State::load().
struct KeyRecord {
  std::uint64_t version = 0;
  std::optional<Record> set;  // nullopt: closed
};

void write_record_fields(JsonWriter& w, const Record& r) {
  w.key("last_page_ns").number(to_ns(r.outage.last_page));
  w.key("last_time_ns").number(to_ns(r.last_time));
  w.key("outage_id").string(r.outage.id);
  w.key("severity").string(severity_name(r.outage.severity));
  w.key("start_ns").number(to_ns(r.outage.start));
}

void write_version(JsonWriter& w, std::uint64_t version) {
  // jansson reads JSON integers as int64: a version never gets near 2^63.
  w.key("version").number(static_cast<std::int64_t>(version));
}

// Throws std::runtime_error naming what is wrong.
std::uint64_t parse_version(const json_t* o) {
  const std::int64_t version = int_member(o, "version");
  if (version < 0) throw std::runtime_error("bad \"version\"");
  return static_cast<std::uint64_t>(version);
}

// Throws std::runtime_error naming what is wrong.
Record parse_snapshot_record(const json_t* o) {
  Record r;
  const json_t* id = member(o, "outage_id");
  if (!json_is_string(id) || !valid_outage_id(json_string_value(id))) throw std::runtime_error("bad \"outage_id\"");
  r.outage.id = json_string_value(id);
  const json_t* sev = member(o, "severity");
  const std::string sev_name = json_is_string(sev) ? json_string_value(sev) : "";
  if (sev_name == severity_name(Severity::Failure))
    r.outage.severity = Severity::Failure;
  else if (sev_name == severity_name(Severity::Warning))
    r.outage.severity = Severity::Warning;
  else
    throw std::runtime_error("bad \"severity\"");
  r.outage.start = from_ns(int_member(o, "start_ns"));
  r.outage.last_page = from_ns(int_member(o, "last_page_ns"));
  r.last_time = from_ns(int_member(o, "last_time_ns"));
  return r;
}

void write_key_fields(JsonWriter& w, const OutageKey& key) {
  write_bytes(w.key("host"), key.host);
  write_bytes(w.key("plugin"), key.plugin);
  write_bytes(w.key("plugin_instance"), key.plugin_instance);
  write_bytes(w.key("type"), key.type);
  write_bytes(w.key("type_instance"), key.type_instance);
}

// Throws std::runtime_error naming what is wrong.
OutageKey parse_key(const json_t* o) {
  return OutageKey{decode_bytes(member(o, "host"), "host"), decode_bytes(member(o, "plugin"), "plugin"),
                   decode_bytes(member(o, "plugin_instance"), "plugin_instance"),
                   decode_bytes(member(o, "type"), "type"), decode_bytes(member(o, "type_instance"), "type_instance")};
}

// --- the journal's records (their format: spool_format.h) ---

// The severity byte of an OUTAGE_SET: numbers of the file format, not of the
// Severity enum, so that reordering the enum cannot change what a file means.
constexpr std::uint8_t kJournalWarning = 1;
constexpr std::uint8_t kJournalFailure = 2;

// One change as a framed record, ready for one write(2): OUTAGE_SET with the
// key's state after the change, or OUTAGE_CLOSE when outage is null. Sized
// exactly, so that it costs one allocation on collectd's thread. Throws
// std::length_error (a key of megabytes) or std::bad_alloc.
std::string encode_change(const OutageKey& key, std::uint64_t version, const Outage* outage, TimePoint last_time) {
  std::size_t size = 5 * 4 + key.host.size() + key.plugin.size() + key.plugin_instance.size() + key.type.size() +
                     key.type_instance.size() + 8;
  if (outage) size += 8 + 8 + 1 + 8 + 4 + outage->id.size();
  sf::RecordBuilder b(outage ? sf::RecordType::OutageSet : sf::RecordType::OutageClose, size);
  b.field(key.host);
  b.field(key.plugin);
  b.field(key.plugin_instance);
  b.field(key.type);
  b.field(key.type_instance);
  b.i64(static_cast<std::int64_t>(version));  // a u64 on disk: the same bytes
  if (outage) {
    b.i64(to_ns(outage->last_page));
    b.i64(to_ns(last_time));
    b.u8(outage->severity == Severity::Failure ? kJournalFailure : kJournalWarning);
    b.i64(to_ns(outage->start));
    b.field(outage->id);
  }
  return std::move(b).finish();
}

// A journal record decoded: its key as the change leaves it.
struct Change {
  OutageKey key;
  KeyRecord change;
};

// False when the payload is malformed or says what the tracker never writes
// (an invalid outage_id, a severity other than WARNING or FAILURE).
bool decode_change(const sf::Record& rec, Change* out) {
  sf::PayloadReader r(rec.payload);
  std::string_view host, plugin, plugin_instance, type, type_instance;
  std::int64_t version = 0;
  if (!r.field(&host) || !r.field(&plugin) || !r.field(&plugin_instance) || !r.field(&type) ||
      !r.field(&type_instance) || !r.i64(&version))
    return false;
  std::optional<Record> set;
  if (rec.type == sf::RecordType::OutageSet) {
    std::int64_t last_page = 0, last_time = 0, start = 0;
    std::uint8_t severity = 0;
    std::string_view id;
    if (!r.i64(&last_page) || !r.i64(&last_time) || !r.u8(&severity) || !r.i64(&start) || !r.field(&id)) return false;
    if (!valid_outage_id(id) || (severity != kJournalWarning && severity != kJournalFailure)) return false;
    set.emplace();
    set->outage.id.assign(id);
    set->outage.severity = severity == kJournalFailure ? Severity::Failure : Severity::Warning;
    set->outage.start = from_ns(start);
    set->outage.last_page = from_ns(last_page);
    set->last_time = from_ns(last_time);
  }
  if (!r.done()) return false;
  out->key = OutageKey{std::string(host), std::string(plugin), std::string(plugin_instance), std::string(type),
                       std::string(type_instance)};
  out->change = KeyRecord{static_cast<std::uint64_t>(version), std::move(set)};
  return true;
}

// Each key's newest change found while loading.
using Loaded = std::unordered_map<OutageKey, KeyRecord, OutageKeyHash>;
using Keys = std::unordered_set<OutageKey, OutageKeyHash>;

// Keeps the newer of c and the key's change in loaded: the higher version;
// of equal ones the first found (copies of one change).
void keep_newest(Loaded& loaded, Change&& c) {
  // try_emplace moves from neither argument when the key is there already.
  const auto [it, fresh] = loaded.try_emplace(std::move(c.key), std::move(c.change));
  if (!fresh && c.change.version > it->second.version) it->second = std::move(c.change);
}

// A change as Transition::change carries it: exactly one framed journal
// record. False when it is anything else.
bool decode_framed_change(std::string_view bytes, Change* out) {
  sf::Record rec{};
  return !bytes.empty() && sf::parse_record(bytes, 0, &rec, sf::LogKind::OutageJournal) == bytes.size() &&
         decode_change(rec, out);
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// fsync of the directory makes renames, creations and unlinks in it durable.
bool sync_directory(const std::string& dir) {
  UniqueFd dfd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  return dfd.get() >= 0 && ::fsync(dfd.get()) == 0;
}

// The whole file; nullopt when it does not exist. Throws std::runtime_error
// on any other failure.
std::optional<std::string> read_whole_file(const std::string& path) {
  UniqueFd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw std::runtime_error(std::strerror(errno));
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::strerror(errno));
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Lets an ERROR through at most every few seconds, so that a full disk does
// not turn every notification into a log line; the lines held back are
// counted in the next one.
class ErrorThrottle {
 public:
  // The number of errors held back since the last one let through, or
  // nullopt when this one is to be held back.
  std::optional<std::size_t> admit() {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (last_ && now - *last_ < kInterval) {
      ++held_back_;
      return std::nullopt;
    }
    last_ = now;
    return std::exchange(held_back_, 0);
  }

 private:
  static constexpr std::chrono::seconds kInterval{10};
  std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::size_t held_back_ = 0;
};

}  // namespace


// --- the tracker ------------------------------------------------------------------

// How the files fit together. Every change (open, escalate, renotify, close)
// is one record (binary, framed like the spool's records: see
// spool_format.h) carrying the key's full state after it, an OUTAGE_SET
// with the whole record or an OUTAGE_CLOSE, and the key's version: one more
// than the key's last. A change that sends an event rides in the event's
// spool record (Transition::change) and reaches the journal through
// persist(), from a delivery thread, just before the event leaves the spool;
// a change without an event is journaled by process() at once. Either way it
// reaches the journal only if its version is above the key's last persisted
// one: delivery threads may acknowledge two outages of a key out of order.
// Loading takes, for each key, the state of the highest version found in
// the snapshot, .journal.old when there is one, .journal, and the changes of
// the events still in the spool (recovered). Because a record carries full
// state rather than a difference, and the highest version wins rather than
// the last record, the result is right whenever (a) the journals together
// hold every change persisted since some point P, (b) the snapshot is the
// persisted state at P or later, and (c) recovered holds every change not
// persisted yet (an event leaves the spool only after its change is
// persisted). A crash can therefore never keep an event while losing its
// change, which would page one failure twice under two outage_ids. A torn
// or damaged record costs only its own change: the reader resynchronises on
// the next valid record, as the spool's does.
// (b) needs the snapshot to remember closes too: an event of an older
// outage of the key may still be in the spool (its delivery retried while a
// newer outage's went through, or the outage closed silently while its
// event waited), and its change must not reopen that outage. So a close
// leaves a tombstone, key and version, in records and the snapshot's
// "closed" list. A start drops the tombstones of keys that recovered does
// not name: no older change of theirs is left anywhere, and the KeyState
// still carries the version on. The snapshot thus holds the open outages and
// the keys closed since the last start.
// Compaction keeps (a) and (b) true at each step a crash can interrupt:
//   1. rename .journal to .journal.old, start an empty .journal, copy the
//      records (under the journal mutex: a consistent cut at P);
//   2. write the snapshot of that copy (tmp + fsync + rename + directory
//      fsync): before its rename the old snapshot with both journals is
//      right, after it the new one (state at P) with both journals is;
//   3. unlink .journal.old: the new snapshot with .journal alone is right.
// A crash between 1 and 3 leaves a .journal.old, which the next load folds in.
struct OutageTracker::State {
  // What is known about one value list. Entries are never erased (the
  // last-processed time must outlive its outage), so a KeyState's address is
  // stable for the tracker's life and may be used after the map lock is gone.
  struct KeyState {
    std::mutex mutex;  // held across the decision and the handler
    std::optional<TimePoint> last_time;
    std::optional<Outage> outage;
    std::uint64_t version = 0;  // of the last change decided, under mutex
    // Of the last change persisted; written under journal_mutex. process()
    // reads it too, without that mutex (persist() must never wait for a
    // handler), so that a key first seen by persist() goes on above it.
    std::atomic<std::uint64_t> persisted_version{0};
  };

  // The keys as they should be on disk (open outages and tombstones), by the
  // address of their key in keys (stable, and never erased): no second copy
  // of the key, and a change costs no second hashing of its five strings.
  using OnDisk = std::unordered_map<const OutageKey*, KeyRecord>;

  // Compaction is due past this many journal records, or this many keys on
  // disk times two: amortized, a change costs O(1) bytes of snapshot.
  static constexpr std::size_t kMinCompactionRecords = 1024;
  // After a failed snapshot, this many changes pass before the next attempt,
  // so that a broken disk does not cost an fsync per notification.
  static constexpr std::uint64_t kRetryAfterChanges = 256;

  State(std::string file, TrackerOptions opts, Logger& logger)
      : state_file(std::move(file)),
        journal_file(state_file + ".journal"),
        old_journal_file(state_file + ".journal.old"),
        options(opts),
        log(logger) {}

  const std::string state_file, journal_file, old_journal_file;
  const TrackerOptions options;
  Logger& log;

  std::mutex keys_mutex;  // only for finding / inserting in keys
  std::unordered_map<OutageKey, std::unique_ptr<KeyState>, OutageKeyHash> keys;

  std::atomic<std::size_t> open_count{0};

  // Held briefly: the records map and the journal change together under it,
  // so the journal's order is the map's order and a copy of the map is a cut
  // that the journal continues exactly. Never held across an fsync.
  std::mutex journal_mutex;
  OnDisk records;
  std::shared_ptr<UniqueFd> journal;       // null when it could not be opened: retried per change
  std::shared_ptr<UniqueFd> retiring;      // .journal.old's, until its compaction is done (for sync())
  bool old_journal_pending = false;  // .journal.old exists: no second rename over it
  std::size_t journal_records = 0;   // records in .journal
  std::uint64_t changes = 0;         // ever, for the retry back-off
  std::uint64_t next_attempt = 0;    // value of changes from which compaction may be tried
  std::uint64_t failed_appends = 0;  // ever: these changes are missing from the journal
  std::uint64_t repaired_upto = 0;   // failed_appends covered by a snapshot written since

  std::mutex compaction_mutex;  // one compactor at a time; the others skip
  std::atomic<bool> directory_synced{true};  // false while a new journal's name may not be durable
  ErrorThrottle journal_errors;

  // The key's state, and the key as stored in keys (see OnDisk).
  std::pair<const OutageKey*, KeyState*> key_state(const OutageKey& key) {
    std::lock_guard<std::mutex> lock(keys_mutex);
    auto [it, fresh] = keys.try_emplace(key);
    if (fresh) it->second = std::make_unique<KeyState>();
    return {&it->first, it->second.get()};
  }

  bool compaction_due() const {  // under journal_mutex
    return changes >= next_attempt &&
           (journal_records > std::max(kMinCompactionRecords, 2 * records.size()) || failed_appends > repaired_upto);
  }

  void load(const std::vector<std::string>& recovered);
  Loaded load_snapshot();
  // Adds the number of records found (damaged ones aside) to records_read.
  void replay_journal(const std::string& path, Loaded& loaded, std::size_t& records_read);
  // Returns the keys recovered names.
  Keys replay_recovered(const std::vector<std::string>& recovered, Loaded& loaded);
  void start_after_load(std::size_t current_journal_records);

  // The rest return whether compaction is due; key: as stored in keys.
  // Journals a change process() decided without an event. Under ks.mutex.
  bool record(const OutageKey& key, KeyState& ks, std::uint64_t version, const std::optional<Outage>& outage,
              TimePoint last_time);
  // Applies change to records and appends its framed record (encoded; empty,
  // with error saying why, when it could not be encoded) to the journal,
  // unless a change of key as new was persisted already.
  bool commit(const OutageKey& key, KeyState& ks, KeyRecord change, std::string_view encoded, std::string error);
  std::shared_ptr<UniqueFd> open_journal(bool truncate, std::string& error);  // under journal_mutex when running
  void compact();
  void sync();

  std::string serialize(const OnDisk& snapshot) const;
  bool write_file(const std::string& text);
  void journal_error(const std::string& what);
};

Loaded OutageTracker::State::load_snapshot() {
  Loaded loaded;
  try {
    const std::optional<std::string> text = read_whole_file(state_file);
    if (!text) return loaded;  // first start
    json_error_t err{};
    Json root{json_loadb(text->data(), text->size(), 0, &err)};
    if (!root)
      throw std::runtime_error(std::string(err.text) + " at line " + std::to_string(err.line) + " column " +
                               std::to_string(err.column));
    if (!json_is_object(root.get())) throw std::runtime_error("not a JSON object");
    if (int_member(root.get(), "version") != kStateVersion) throw std::runtime_error("unknown version");
    // "outages": the open ones; "closed": the tombstones, key and version.
    for (const char* list : {"outages", "closed"}) {
      const bool open = list == std::string_view("outages");
      const json_t* entries = member(root.get(), list);
      if (!json_is_array(entries)) throw std::runtime_error(std::string("\"") + list + "\" is not an array");
      std::size_t i;
      const json_t* o;
      json_array_foreach(entries, i, o) {
        if (!json_is_object(o)) throw std::runtime_error(std::string("an entry of \"") + list + "\" is not an object");
        KeyRecord r{parse_version(o), std::nullopt};
        if (open) r.set = parse_snapshot_record(o);
        if (!loaded.try_emplace(parse_key(o), std::move(r)).second) throw std::runtime_error("duplicate outage key");
      }
    }
  } catch (const std::exception& e) {
    log.warning("outage state file " + state_file + " cannot be used (" + e.what() +
                "): starting with no open outages from it");
    loaded.clear();
  }
  return loaded;
}

void OutageTracker::State::replay_journal(const std::string& path, Loaded& loaded, std::size_t& records_read) {
  std::optional<std::string> text;
  try {
    text = read_whole_file(path);
  } catch (const std::exception& e) {
    log.warning("outage journal " + path + " cannot be read (" + e.what() + "): its changes are lost");
    return;
  }
  if (!text) return;
  std::size_t undecodable = 0;
  const sf::Damage damage =
      sf::scan_records(*text, sf::LogKind::OutageJournal, [&](const sf::Record& rec, std::size_t, std::size_t) {
        ++records_read;
        Change change;
        if (!decode_change(rec, &change)) {
          ++undecodable;
          return;
        }
        keep_newest(loaded, std::move(change));
      });
  // Earlier versions wrote the journal as JSON lines, {"op":... each; after
  // an upgrade such a file is one damaged run like any other, but the
  // operator deserves to know why.
  const bool json_lines = text->compare(0, 6, "{\"op\":") == 0;
  const std::size_t damaged = damage.places + undecodable;
  if (json_lines)
    log.warning("outage journal " + path +
                " holds JSON lines, the format of an earlier version, which is no longer read: the changes in it "
                "since the last snapshot are lost");
  else if (damaged > 0)
    log.warning("outage journal " + path + ": " + std::to_string(damaged) + " damaged record(s) skipped" +
                (damage.at_end ? " (a torn last record is expected after a crash)" : ""));
}

Keys OutageTracker::State::replay_recovered(const std::vector<std::string>& recovered, Loaded& loaded) {
  Keys named;
  std::size_t malformed = 0;
  for (const std::string& bytes : recovered) {
    Change change;
    if (!decode_framed_change(bytes, &change)) {
      ++malformed;
      continue;
    }
    named.insert(change.key);
    keep_newest(loaded, std::move(change));
  }
  if (malformed > 0)
    log.warning("outage state file " + state_file + ": " + std::to_string(malformed) +
                " malformed outage change(s) of events in the spool skipped");
  return named;
}

void OutageTracker::State::load(const std::vector<std::string>& recovered) {
  Loaded loaded = load_snapshot();
  std::size_t old_records = 0, current_records = 0;
  replay_journal(old_journal_file, loaded, old_records);
  replay_journal(journal_file, loaded, current_records);
  const Keys in_spool = replay_recovered(recovered, loaded);

  std::size_t open = 0;
  for (auto& [key, change] : loaded) {
    // A key whose outage closed keeps its version in memory all the same, so
    // that its next changes are newer than any it had.
    auto ks = std::make_unique<KeyState>();
    ks->version = change.version;
    ks->persisted_version.store(change.version, std::memory_order_relaxed);  // by the snapshot below
    const auto stored = keys.emplace(key, std::move(ks)).first;
    if (change.set) {
      // Each change stores the key's last time with it (a missing value's
      // FAILURE leaves it behind its last_page, on purpose).
      KeyState& state = *stored->second;
      if (change.set->last_time != TimePoint{}) state.last_time = change.set->last_time;
      state.outage = change.set->outage;
      ++open;
    } else if (in_spool.count(key) == 0) {
      // Its tombstone protected it from the changes of events that were
      // still in the spool, older than its close; recovered names all those
      // left, and none is this key's: it has done its work.
      continue;
    }
    records.emplace(&stored->first, std::move(change));
  }
  open_count = open;
  if (open > 0) log.info("outage state file " + state_file + ": " + std::to_string(open) + " open outage(s) restored");
  start_after_load(current_records);
}

// Compacts once, so that a started tracker has a snapshot on disk and an
// empty journal. Runs before any other thread can see the State.
void OutageTracker::State::start_after_load(std::size_t current_journal_records) {
  bool written = false;
  try {
    written = write_file(serialize(records));
  } catch (const std::exception& e) {
    log.error("cannot write outage state file " + state_file + ": " + e.what());
  }
  std::string error;
  if (written) {
    // Snapshot first, then the old journal, then the current one, each step
    // durable before the next: .journal.old is older than .journal, so
    // emptying .journal while .journal.old could still be replayed after a
    // crash would let its stale records override the snapshot.
    old_journal_pending = ::unlink(old_journal_file.c_str()) != 0 && errno != ENOENT;
    if (old_journal_pending) {
      log.error("cannot remove outage journal " + old_journal_file + ": " + std::strerror(errno));
      journal = open_journal(false, error);  // keep appending after what .journal.old precedes
      journal_records = current_journal_records;
    } else {
      sync_directory(directory_of(state_file));
      journal = open_journal(true, error);
    }
  } else {
    // The journals are all there is: keep them, append to .journal, and let
    // the first changes retry the snapshot.
    journal = open_journal(false, error);
    journal_records = current_journal_records;
    old_journal_pending = ::access(old_journal_file.c_str(), F_OK) == 0;
    failed_appends = 1;
  }
  if (!journal) log.error(error);
}

std::shared_ptr<UniqueFd> OutageTracker::State::open_journal(bool truncate, std::string& error) {
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  auto fd = std::make_shared<UniqueFd>(::open(journal_file.c_str(), flags, 0600));
  auto fail = [&](const char* what) {
    error = std::string("cannot ") + what + " outage journal " + journal_file + ": " + std::strerror(errno);
    return nullptr;
  };
  if (fd->get() < 0) return fail("open");
  // A journal left by an older run keeps its mode.
  if (::fchmod(fd->get(), 0600) != 0) return fail("chmod");
  // A torn record at its end needs nothing done: the reader resynchronises
  // on the first valid record after it.
  directory_synced = false;  // its name may be new
  return fd;
}

bool OutageTracker::State::record(const OutageKey& key, KeyState& ks, std::uint64_t version,
                                  const std::optional<Outage>& outage, TimePoint last_time) {
  // Encoded before taking the journal mutex: only the map update and one
  // write(2) happen under it.
  std::string encoded, error;
  try {
    encoded = encode_change(key, version, outage ? &*outage : nullptr, last_time);
  } catch (const std::exception& e) {
    error = "cannot encode a record of outage journal " + journal_file + ": " + e.what();
  }
  KeyRecord change{version, std::nullopt};
  if (outage) change.set = Record{*outage, last_time};
  return commit(key, ks, std::move(change), encoded, std::move(error));
}

bool OutageTracker::State::commit(const OutageKey& key, KeyState& ks, KeyRecord change, std::string_view encoded,
                                  std::string error) {
  bool due;
  {
    std::lock_guard<std::mutex> lock(journal_mutex);
    // Only a delivery thread's persist() can be late: its event's outage
    // may have been overtaken by a newer one of the key acknowledged first.
    if (change.version <= ks.persisted_version.load(std::memory_order_relaxed)) return false;
    ks.persisted_version.store(change.version, std::memory_order_relaxed);
    // A close leaves a tombstone: the events of the key's older outages
    // may be in the spool still, until the next start says they are not.
    records.insert_or_assign(&key, std::move(change));
    ++changes;
    if (!error.empty()) {
      // Not written: the next snapshot brings the change to disk.
    } else if (!journal) {
      journal = open_journal(false, error);
      // The disk works again: bring the changes it missed to it now.
      if (journal) next_attempt = changes;
    }
    if (error.empty() && journal) {
      ssize_t n;
      do n = ::write(journal->get(), encoded.data(), encoded.size());
      while (n < 0 && errno == EINTR);
      if (n == static_cast<ssize_t>(encoded.size())) {
        ++journal_records;
      } else {
        if (n >= 0) errno = ENOSPC;  // a short write to a regular file
        error = "cannot append to outage journal " + journal_file + ": " + std::strerror(errno);
        journal.reset();  // reopened on the next change, whose record follows any torn one
      }
    }
    // The change is in records: a snapshot must bring it to disk.
    if (!error.empty()) ++failed_appends;
    due = compaction_due();
  }
  if (!error.empty()) journal_error(error);
  return due;
}

void OutageTracker::State::journal_error(const std::string& what) {
  if (const auto held_back = journal_errors.admit())
    log.error(what + (*held_back > 0 ? " (and " + std::to_string(*held_back) + " more since the last report)" : ""));
}

void OutageTracker::State::compact() {
  std::unique_lock<std::mutex> compactor(compaction_mutex, std::try_to_lock);
  if (!compactor.owns_lock()) return;  // another thread is at it

  OnDisk cut;
  std::uint64_t failures_covered = 0;
  std::string error;
  bool renamed = true;
  {
    std::lock_guard<std::mutex> lock(journal_mutex);
    if (!compaction_due()) return;
    // A .journal.old still there means an earlier snapshot failed: renaming
    // over it would lose its changes, so this round only retries the snapshot.
    if (!old_journal_pending) {
      if (::rename(journal_file.c_str(), old_journal_file.c_str()) == 0) {
        old_journal_pending = true;
        retiring = std::move(journal);
        journal = open_journal(true, error);
        journal_records = 0;
      } else if (errno == ENOENT) {
        // Gone (removed by hand, or never created): its changes are on disk
        // only once this snapshot is.
        ++failed_appends;
        journal = open_journal(true, error);
        journal_records = 0;
      } else {
        next_attempt = changes + kRetryAfterChanges;
        renamed = false;
        error = "cannot rename outage journal " + journal_file + ": " + std::strerror(errno);
      }
    }
    cut = records;
    failures_covered = failed_appends;
  }
  // A journal that could not be reopened is retried by the next change; the
  // snapshot is written all the same.
  if (!error.empty()) journal_error(error);
  if (!renamed) return;

  bool written = false;
  try {
    written = write_file(serialize(cut));
  } catch (const std::exception& e) {
    log.error("cannot write outage state file " + state_file + ": " + e.what());
  }
  bool unlinked = false;
  if (written) {
    unlinked = ::unlink(old_journal_file.c_str()) == 0 || errno == ENOENT;
    if (!unlinked) journal_error("cannot remove outage journal " + old_journal_file + ": " + std::strerror(errno));
  }
  std::lock_guard<std::mutex> lock(journal_mutex);
  if (written) repaired_upto = std::max(repaired_upto, failures_covered);
  if (unlinked) {
    old_journal_pending = false;
    retiring.reset();
  } else {
    next_attempt = changes + kRetryAfterChanges;
  }
}

void OutageTracker::State::sync() {
  std::shared_ptr<UniqueFd> current, old;
  {
    std::lock_guard<std::mutex> lock(journal_mutex);
    current = journal;
    old = retiring;  // its changes are durable only once the snapshot is
  }
  // The fdatasyncs run outside the mutex: notifications keep appending.
  for (const auto& fd : {old, current})
    if (fd && ::fdatasync(fd->get()) != 0)
      journal_error("cannot sync outage journal " + journal_file + ": " + std::strerror(errno));
  // A journal created since the last sync is durable by name only once its
  // directory is synced too.
  if (!directory_synced.exchange(true) && !sync_directory(directory_of(state_file))) {
    directory_synced = false;
    journal_error("cannot sync the directory of outage journal " + journal_file + ": " + std::strerror(errno));
  }
}

std::string OutageTracker::State::serialize(const OnDisk& snapshot) const {
  JsonWriter w;
  w.begin_object().key("version").number(std::int64_t{kStateVersion});
  for (const bool open : {true, false}) {
    w.key(open ? "outages" : "closed").begin_array();
    for (const auto& [key, r] : snapshot) {
      if (r.set.has_value() != open) continue;
      w.begin_object();
      write_key_fields(w, *key);
      if (r.set) write_record_fields(w, *r.set);
      write_version(w, r.version);
      w.end_object();
    }
    w.end_array();
  }
  return w.end_object().take() + "\n";
}

bool OutageTracker::State::write_file(const std::string& text) {
  const std::string tmp = state_file + ".tmp";
  auto fail = [&](const std::string& what, const std::string& path) {
    log.error("cannot " + what + " outage state file " + path + ": " + std::strerror(errno));
    return false;
  };
  UniqueFd fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
  if (fd.get() < 0) return fail("create", tmp);
  // A .tmp left by an older run keeps its mode through O_TRUNC.
  if (::fchmod(fd.get(), 0600) != 0) return fail("chmod", tmp);
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write", tmp);
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync", tmp);
  if (fd.close() != 0) return fail("close", tmp);
  if (::rename(tmp.c_str(), state_file.c_str()) != 0) return fail("rename", tmp);
  // The rename itself is durable only once the directory is synced.
  sync_directory(directory_of(state_file));
  return true;
}

OutageTracker::OutageTracker(std::string state_file, TrackerOptions options, Logger& log,
                             const std::vector<std::string>& recovered)
    : state_(std::make_unique<State>(std::move(state_file), options, log)) {
  state_->load(recovered);
}

OutageTracker::~OutageTracker() = default;

std::size_t OutageTracker::open_outages() const { return state_->open_count.load(std::memory_order_relaxed); }

void OutageTracker::sync() { state_->sync(); }

void OutageTracker::persist(std::string_view change) {
  State& s = *state_;
  Change c;
  if (!decode_framed_change(change, &c)) {
    s.journal_error("malformed outage change for outage journal " + s.journal_file + " ignored");
    return;
  }
  // A key never seen is created: its events came from an earlier run whose
  // changes the constructor was not given.
  const auto [stored_key, state] = s.key_state(c.key);
  if (s.commit(*stored_key, *state, std::move(c.change), change, {})) s.compact();
}

void OutageTracker::process(const Notification& n, TransitionHandler handler) {
  State& s = *state_;
  const OutageKey key = OutageKey::of(n);
  const auto [stored_key, state] = s.key_state(key);
  State::KeyState& ks = *state;
  bool compaction_due = false;
  {
    std::lock_guard<std::mutex> lock(ks.mutex);
    if (ks.last_time && n.time < *ks.last_time) {
      // Overtaken by a newer one on another thread: ignored. Far older, the
      // clock went back (an NTP step, a VM's clock set after boot): ignoring
      // would silence the key until the clock catches up, so the bar resets.
      if (*ks.last_time - n.time < kClockStep) return;
      s.log.warning("notification for " + key.identifier() + " is " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*ks.last_time - n.time).count()) +
                    " s older than the last one: taking it as a step back of the clock");
      ks.last_time.reset();
    }

    // What this notification would make of the outage; committed only when
    // the handler's event was accepted (or when nothing has to be sent).
    std::optional<Outage> next = ks.outage;
    std::optional<EventType> send;
    const bool problem = n.severity != Severity::Okay;
    if (!ks.outage) {
      if (problem && n.severity >= s.options.min_severity) {
        next = Outage{random_uuid(), n.severity, n.time, n.time};
        send = EventType::Outage;
      }
    } else if (!problem) {
      next.reset();
      if (s.options.send_clear) send = EventType::Clear;
    } else {
      const bool escalation = n.severity > ks.outage->severity;
      const bool renotify = s.options.renotify_interval.count() > 0 &&
                            n.time - ks.outage->last_page >= s.options.renotify_interval;
      if (escalation || renotify) {
        next->severity = std::max(n.severity, ks.outage->severity);
        next->last_page = n.time;
        send = EventType::Outage;
      }
    }
    const bool opened = next && !ks.outage, closed = !next && ks.outage;
    const bool changed = send.has_value() || opened || closed;
    // collectd stamps a missing value's FAILURE with the time it noticed, the
    // OKAY of the value's return with that value's own, earlier time: the
    // FAILURE must not make that OKAY look older, or the outage never clears.
    const std::optional<TimePoint> last_time = n.is_missing_value() ? ks.last_time : n.time;
    const std::uint64_t version =
        changed ? std::max(ks.version, ks.persisted_version.load(std::memory_order_relaxed)) + 1 : ks.version;

    if (send) {
      // The change rides in the event: persist() journals it when the event
      // leaves the spool, so this thread writes once per event.
      // A clear describes the outage as it was: its id, start and highest severity.
      const Outage& described = *send == EventType::Clear ? *ks.outage : *next;
      Transition t{*send, n, described,
                   encode_change(*stored_key, version, next ? &*next : nullptr, last_time.value_or(TimePoint{}))};
      if (!handler(t)) return;  // refused: nothing changes
    }
    ks.last_time = last_time;
    if (opened) s.open_count.fetch_add(1, std::memory_order_relaxed);
    if (closed) s.open_count.fetch_sub(1, std::memory_order_relaxed);
    ks.outage = std::move(next);
    ks.version = version;
    // A change without an event has nothing to ride in: journaled now,
    // under the key's lock so that its version is the key's newest.
    if (changed && !send)
      compaction_due = s.record(*stored_key, ks, version, ks.outage, ks.last_time.value_or(TimePoint{}));
  }
  // The snapshot's fsyncs happen outside the key's lock, and only about once
  // per max(1024, 2 x keys on disk) changes.
  if (compaction_due) s.compact();
}

}  // namespace xmatters
