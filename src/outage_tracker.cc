#include "outage_tracker.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "uuid.h"

namespace xmatters {

OutageKey OutageKey::of(const Notification& n) {
  return OutageKey{n.host, n.plugin, n.plugin_instance, n.type, n.type_instance};
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

// --- the state file -------------------------------------------------------------

constexpr int kStateVersion = 1;

struct JsonDeleter {
  void operator()(json_t* j) const { json_decref(j); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close() reports errors (e.g. a delayed write failure) that a destructor would lose.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint from_ns(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

const char kHex[] = "0123456789abcdef";

// collectd hands over arbitrary bytes, but a JSON string must be UTF-8: such
// a field is stored as {"hex": "..."} so that the key round-trips exactly.
JsonPtr encode_bytes(const std::string& s) {
  if (JsonPtr str{json_stringn(s.data(), s.size())}) return str;
  std::string hex;
  hex.reserve(s.size() * 2);
  for (unsigned char c : s) {
    hex += kHex[c >> 4];
    hex += kHex[c & 0xf];
  }
  JsonPtr obj{json_object()};
  json_object_set_new(obj.get(), "hex", json_stringn(hex.data(), hex.size()));
  return obj;
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

bool valid_outage_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

}  // namespace

// --- the tracker ------------------------------------------------------------------

struct OutageTracker::State {
  // What is known about one value list. Entries are never erased (the
  // last-processed time must outlive its outage), so a KeyState's address is
  // stable for the tracker's life and may be used after the map lock is gone.
  struct KeyState {
    std::mutex mutex;  // held across the decision and the handler
    std::optional<TimePoint> last_time;
    std::optional<Outage> outage;
  };

  // One open outage as it goes into the state file. Its last_time is the one
  // of the outage's last change: a change of last_time alone is not written,
  // or collectd's repeated FAILUREs (Persist true) would cost an fsync each.
  struct Record {
    Outage outage;
    TimePoint last_time;
  };

  State(std::string file, TrackerOptions opts, Logger& logger)
      : state_file(std::move(file)), options(opts), log(logger) {}

  const std::string state_file;
  const TrackerOptions options;
  Logger& log;

  std::mutex keys_mutex;  // only for finding / inserting in keys
  std::unordered_map<OutageKey, std::unique_ptr<KeyState>, OutageKeyHash> keys;

  std::atomic<std::size_t> open_count{0};

  // The open outages as they should be on disk, updated under the key's
  // lock (a cheap copy) so that the slow write can happen without it.
  std::mutex records_mutex;
  std::unordered_map<OutageKey, Record, OutageKeyHash> records;
  std::uint64_t generation = 0;  // bumped on every change of records

  // Serializes the writers only; the newest generation on disk lets a writer
  // that waited skip its write when another one already saved its change.
  std::mutex file_mutex;
  std::uint64_t written_generation = 0;

  KeyState& key_state(const OutageKey& key) {
    std::lock_guard<std::mutex> lock(keys_mutex);
    auto& slot = keys[key];
    if (!slot) slot = std::make_unique<KeyState>();
    return *slot;
  }

  void record(const OutageKey& key, const std::optional<Outage>& outage, TimePoint last_time) {
    std::lock_guard<std::mutex> lock(records_mutex);
    if (outage)
      records[key] = Record{*outage, last_time};
    else
      records.erase(key);
    ++generation;
  }

  void load();
  void persist();
  std::string serialize(const std::unordered_map<OutageKey, Record, OutageKeyHash>& snapshot) const;
  bool write_file(const std::string& text);
};

void OutageTracker::State::load() {
  struct stat st {};
  if (::stat(state_file.c_str(), &st) != 0 && errno == ENOENT) return;  // first start

  std::unordered_map<OutageKey, Record, OutageKeyHash> loaded;
  try {
    json_error_t err{};
    JsonPtr root{json_load_file(state_file.c_str(), 0, &err)};
    if (!root)
      throw std::runtime_error(std::string(err.text) + " at line " + std::to_string(err.line) + " column " +
                               std::to_string(err.column));
    if (!json_is_object(root.get())) throw std::runtime_error("not a JSON object");
    if (int_member(root.get(), "version") != kStateVersion) throw std::runtime_error("unknown version");
    const json_t* outages = member(root.get(), "outages");
    if (!json_is_array(outages)) throw std::runtime_error("\"outages\" is not an array");
    std::size_t i;
    const json_t* o;
    json_array_foreach(outages, i, o) {
      if (!json_is_object(o)) throw std::runtime_error("an outage is not an object");
      OutageKey key{decode_bytes(member(o, "host"), "host"), decode_bytes(member(o, "plugin"), "plugin"),
                    decode_bytes(member(o, "plugin_instance"), "plugin_instance"),
                    decode_bytes(member(o, "type"), "type"),
                    decode_bytes(member(o, "type_instance"), "type_instance")};
      Record r;
      const json_t* id = member(o, "outage_id");
      if (!json_is_string(id) || !valid_outage_id(json_string_value(id)))
        throw std::runtime_error("bad \"outage_id\"");
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
      if (!loaded.emplace(std::move(key), std::move(r)).second) throw std::runtime_error("duplicate outage key");
    }
  } catch (const std::exception& e) {
    log.warning("outage state file " + state_file + " cannot be used (" + e.what() +
                "): starting with no open outages");
    return;
  }

  for (const auto& [key, r] : loaded) {
    auto ks = std::make_unique<KeyState>();
    ks->last_time = std::max(r.last_time, r.outage.last_page);
    ks->outage = r.outage;
    keys.emplace(key, std::move(ks));
  }
  open_count = loaded.size();
  records = std::move(loaded);
  if (!records.empty())
    log.info("outage state file " + state_file + ": " + std::to_string(records.size()) + " open outage(s) restored");
}

std::string OutageTracker::State::serialize(
    const std::unordered_map<OutageKey, Record, OutageKeyHash>& snapshot) const {
  JsonPtr outages{json_array()};
  for (const auto& [key, r] : snapshot) {
    JsonPtr o{json_object()};
    json_object_set_new(o.get(), "host", encode_bytes(key.host).release());
    json_object_set_new(o.get(), "plugin", encode_bytes(key.plugin).release());
    json_object_set_new(o.get(), "plugin_instance", encode_bytes(key.plugin_instance).release());
    json_object_set_new(o.get(), "type", encode_bytes(key.type).release());
    json_object_set_new(o.get(), "type_instance", encode_bytes(key.type_instance).release());
    json_object_set_new(o.get(), "outage_id", json_string(r.outage.id.c_str()));
    json_object_set_new(o.get(), "severity", json_string(severity_name(r.outage.severity)));
    json_object_set_new(o.get(), "start_ns", json_integer(to_ns(r.outage.start)));
    json_object_set_new(o.get(), "last_page_ns", json_integer(to_ns(r.outage.last_page)));
    json_object_set_new(o.get(), "last_time_ns", json_integer(to_ns(r.last_time)));
    json_array_append_new(outages.get(), o.release());
  }
  JsonPtr root{json_object()};
  json_object_set_new(root.get(), "version", json_integer(kStateVersion));
  json_object_set_new(root.get(), "outages", outages.release());
  std::unique_ptr<char, FreeDeleter> text{json_dumps(root.get(), JSON_INDENT(1) | JSON_SORT_KEYS)};
  if (!text) throw std::bad_alloc();
  return std::string(text.get()) + "\n";
}

bool OutageTracker::State::write_file(const std::string& text) {
  const std::string tmp = state_file + ".tmp";
  auto fail = [&](const std::string& what, const std::string& path) {
    log.error("cannot " + what + " outage state file " + path + ": " + std::strerror(errno));
    return false;
  };
  Fd fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
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
  const auto slash = state_file.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : state_file.substr(0, slash);
  Fd dfd{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dfd.get() >= 0) ::fsync(dfd.get());
  return true;
}

void OutageTracker::State::persist() {
  std::lock_guard<std::mutex> file_lock(file_mutex);
  std::unordered_map<OutageKey, Record, OutageKeyHash> snapshot;
  std::uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(records_mutex);
    if (generation == written_generation) return;  // a writer we waited for saved our change too
    snapshot = records;
    gen = generation;
  }
  // Leaving written_generation behind on failure makes the next change retry.
  // The events are already in the sink's custody by now, so a failed write
  // is logged rather than thrown: the caller has nothing to undo.
  try {
    if (write_file(serialize(snapshot))) written_generation = gen;
  } catch (const std::exception& e) {
    log.error("cannot write outage state file " + state_file + ": " + e.what());
  }
}

OutageTracker::OutageTracker(std::string state_file, TrackerOptions options, Logger& log)
    : state_(std::make_unique<State>(std::move(state_file), options, log)) {
  state_->load();
}

OutageTracker::~OutageTracker() = default;

std::size_t OutageTracker::open_outages() const { return state_->open_count.load(std::memory_order_relaxed); }

void OutageTracker::process(const Notification& n, const TransitionHandler& handler) {
  State& s = *state_;
  const OutageKey key = OutageKey::of(n);
  State::KeyState& ks = s.key_state(key);
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(ks.mutex);
    if (ks.last_time && n.time < *ks.last_time) return;  // overtaken by a newer one on another thread

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

    if (send) {
      // A clear describes the outage as it was: its id, start and highest severity.
      const Outage& described = *send == EventType::Clear ? *ks.outage : *next;
      if (!handler(Transition{*send, n, described})) return;  // refused: nothing changes
    }
    ks.last_time = n.time;
    const bool opened = next && !ks.outage, closed = !next && ks.outage;
    if (opened) s.open_count.fetch_add(1, std::memory_order_relaxed);
    if (closed) s.open_count.fetch_sub(1, std::memory_order_relaxed);
    changed = send.has_value() || opened || closed;
    ks.outage = std::move(next);
    // Recorded under the key's lock so that the on-disk order matches the
    // order of the decisions; the write itself happens outside it.
    if (changed) s.record(key, ks.outage, *ks.last_time);
  }
  if (changed) s.persist();
}

}  // namespace xmatters
