// The spool's record format (spool_format.h) and its POSIX file system
// (spool_io.h).
#include "store/spool_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "util/resources.h"
#include "store/spool_format.h"

namespace xmatters {
namespace spool_format {

// --- checksums -----------------------------------------------------------------

std::uint32_t crc32(std::string_view data, std::uint32_t crc) {
  // zlib takes lengths as uInt: a record's payload is at most kMaxPayload.
  return static_cast<std::uint32_t>(
      ::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

namespace {
constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
}

std::uint32_t mask_crc(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }

std::uint32_t unmask_crc(std::uint32_t masked) {
  const std::uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// --- records -------------------------------------------------------------------

namespace {

// The event type byte: numbers of the file format, not of the EventType enum.
constexpr std::uint8_t kOutage = 1;
constexpr std::uint8_t kClear = 2;

// The tags of an EVENT (doc/storage.md, Records). Never renumbered; a new
// field takes a new tag, and its absence in older records must mean what
// the code did before it.
enum EventTag : std::uint32_t {
  kEventId = 1,
  kEventIntegration = 2,
  kEventOutageId = 3,
  kEventType = 4,
  kEventCreated = 5,  // i64 ns since the epoch
  kEventBody = 6,
  kEventChange = 7,  // one or two framed OUTAGE_SET / OUTAGE_CLOSE records
  kEventTest = 8,    // u8 1: a test page (absent: not one)
};

enum HeaderTag : std::uint32_t {
  kHeaderVersion = 1,  // u32
};

std::int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint from_ns(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// Format 1's EVENT: event_id, integration, outage_id, u8 type, i64 created,
// body, change, each string a u32 length and its bytes.
bool decode_event_v1(std::string_view payload, Event* out) {
  PayloadReader r(payload);
  std::string_view id, integration, outage, body, change;
  std::uint8_t type = 0;
  std::int64_t created = 0;
  if (!r.field(&id) || !r.field(&integration) || !r.field(&outage) || !r.u8(&type) || !r.i64(&created) ||
      !r.field(&body) || !r.field(&change) || !r.done())
    return false;
  if (id.empty() || (type != kOutage && type != kClear)) return false;
  out->event_id.assign(id);
  out->integration.assign(integration);
  out->outage_id.assign(outage);
  out->type = type == kClear ? EventType::Clear : EventType::Outage;
  out->created = from_ns(created);
  out->body.assign(body);
  out->change.assign(change);
  return true;
}

bool decode_event_v2(std::string_view payload, Event* out) {
  FieldReader r(payload);
  Event e;
  std::uint8_t type = 0, test = 0;
  std::int64_t created = 0;
  bool good = true;
  std::uint32_t tag = 0;
  std::string_view v;
  while (r.next(&tag, &v)) {
    switch (tag) {
      case kEventId: e.event_id.assign(v); break;
      case kEventIntegration: e.integration.assign(v); break;
      case kEventOutageId: e.outage_id.assign(v); break;
      case kEventType: good &= field_u8(v, &type); break;
      case kEventCreated: good &= field_i64(v, &created); break;
      case kEventBody: e.body.assign(v); break;
      case kEventChange: e.change.assign(v); break;
      case kEventTest: good &= field_u8(v, &test); break;
      default: break;  // a newer plugin's field
    }
  }
  if (!r.ok() || !good || e.event_id.empty() || (type != kOutage && type != kClear)) return false;
  e.type = type == kClear ? EventType::Clear : EventType::Outage;
  e.created = from_ns(created);
  e.test = test != 0;
  *out = std::move(e);
  return true;
}

bool is_record_type(std::uint8_t type) { return type >= 1 && type <= kLastType; }

}  // namespace

std::string encode_header() {
  return encode_tagged(RecordType::Header, [](auto& w) { w.u32(kHeaderVersion, kFormatVersion); });
}

std::string encode_event(const Event& e) {
  if (e.body.size() > kMaxPayload || e.change.size() > kMaxPayload)
    throw std::length_error("event too large for the spool");
  return encode_tagged(RecordType::Event, [&](auto& w) {
    w.bytes(kEventId, e.event_id);
    w.bytes(kEventIntegration, e.integration);
    w.bytes(kEventOutageId, e.outage_id);
    w.u8(kEventType, e.type == EventType::Clear ? kClear : kOutage);
    w.i64(kEventCreated, to_ns(e.created));
    w.bytes(kEventBody, e.body);
    if (!e.change.empty()) w.bytes(kEventChange, e.change);
    if (e.test) w.u8(kEventTest, 1);
  });
}

std::string encode_ack(std::string_view event_id) {
  RecordBuilder b(RecordType::Ack, event_id.size());
  b.bytes(event_id);
  return std::move(b).finish();
}

std::string encode_snapshot() { return RecordBuilder(RecordType::Snapshot, 0).finish(); }

std::size_t parse_record(std::string_view data, std::size_t offset, Record* out) {
  if (offset > data.size() || data.size() - offset < kHeaderSize) return 0;
  auto h = reinterpret_cast<const unsigned char*>(data.data() + offset);
  // Cheapest checks first: the resync scan calls this at every byte offset.
  const std::uint8_t type = h[8];
  if (!is_record_type(type)) return 0;
  const std::uint32_t length = load_u32le(h + 4);
  if (length > kMaxPayload || data.size() - offset - kHeaderSize < length) return 0;
  const std::string_view covered = data.substr(offset + 8, 1 + length);
  if (unmask_crc(load_u32le(h)) != crc32(covered)) return 0;
  out->type = static_cast<RecordType>(type);
  out->payload = covered.substr(1);
  return kHeaderSize + length;
}

bool decode_event(const Record& rec, Event* out) {
  if (rec.type == RecordType::Event) return decode_event_v2(rec.payload, out);
  if (rec.type == RecordType::EventV1) return decode_event_v1(rec.payload, out);
  return false;
}

bool decode_event_id(const Record& rec, std::string_view* id) {
  if (rec.type == RecordType::EventV1) {
    PayloadReader r(rec.payload);
    return r.field(id) && !id->empty();
  }
  if (rec.type != RecordType::Event) return false;
  FieldReader r(rec.payload);
  std::uint32_t tag = 0;
  std::string_view v;
  bool found = false;
  while (r.next(&tag, &v))
    if (tag == kEventId) {
      *id = v;
      found = true;
    }
  return r.ok() && found && !id->empty();
}

bool decode_header(const Record& rec, std::uint32_t* version) {
  if (rec.type != RecordType::Header) return false;
  FieldReader r(rec.payload);
  std::uint32_t tag = 0;
  std::string_view v;
  bool found = false;
  while (r.next(&tag, &v))
    if (tag == kHeaderVersion) found = field_u32(v, version);
  return r.ok() && found && *version >= 2;
}

// --- names ---------------------------------------------------------------------

std::string segment_name(std::uint64_t seq) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "spool-%06llu.log", static_cast<unsigned long long>(seq));
  return buf;
}

std::string temporary_name(std::uint64_t seq) { return segment_name(seq) + ".tmp"; }

NameKind classify_name(std::string_view name, std::uint64_t* seq) {
  constexpr std::string_view prefix = "spool-";
  constexpr std::string_view suffix = ".log";
  constexpr std::string_view tmp_suffix = ".log.tmp";
  if (name.substr(0, prefix.size()) != prefix) return NameKind::Other;
  name.remove_prefix(prefix.size());
  std::size_t digits = 0;
  std::uint64_t value = 0;
  while (digits < name.size() && name[digits] >= '0' && name[digits] <= '9') {
    if (digits == 19) return NameKind::Other;  // would overflow; not one of ours
    value = value * 10 + static_cast<std::uint64_t>(name[digits] - '0');
    ++digits;
  }
  if (digits == 0) return NameKind::Other;
  const std::string_view rest = name.substr(digits);
  NameKind kind = NameKind::Other;
  if (rest == suffix)
    kind = NameKind::Segment;
  else if (rest == tmp_suffix)
    kind = NameKind::Temporary;
  if (kind != NameKind::Other) *seq = value;
  return kind;
}

}  // namespace spool_format

// --- POSIX ---------------------------------------------------------------------

namespace {

[[noreturn]] void throw_errno(int err, const std::string& what, const std::string& path) {
  throw std::system_error(err, std::generic_category(), what + " " + path);
}


class PosixFile final : public WritableFile {
 public:
  PosixFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  void append(std::string_view data) override {
    check_open("write");
    while (!data.empty()) {
      const ssize_t n = ::write(fd_.get(), data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno(errno, "write", path_);
      }
      if (n == 0) throw_errno(EIO, "write", path_);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void truncate(std::uint64_t size) override {
    check_open("truncate");
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) throw_errno(errno, "truncate", path_);
  }

  void sync() override {
    check_open("fdatasync");
    if (::fdatasync(fd_.get()) != 0) throw_errno(errno, "fdatasync", path_);
  }

  void close() override {
    if (fd_.get() < 0) return;
    // Linux releases the descriptor even when close reports an error, so
    // it must not be closed again.
    if (::close(fd_.release()) != 0 && errno != EINTR) throw_errno(errno, "close", path_);
  }

 private:
  void check_open(const char* what) const {
    if (fd_.get() < 0) throw_errno(EBADF, what, path_);
  }

  UniqueFd fd_;
  std::string path_;
};

class PosixSpoolIo final : public SpoolIo {
 public:
  std::unique_ptr<WritableFile> open_append(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) throw_errno(errno, "open", path);
    return std::make_unique<PosixFile>(std::move(fd), path);
  }

  std::uint64_t file_size(const std::string& path) override {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) throw_errno(errno, "stat", path);
    return static_cast<std::uint64_t>(st.st_size);
  }

  std::string read_at(const std::string& path, std::uint64_t offset, std::size_t size) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) throw_errno(errno, "open", path);
    std::string out(size, '\0');
    for (std::size_t got = 0; got < size;) {
      const ssize_t n = ::pread(fd.get(), &out[got], size - got, static_cast<off_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno(errno, "read", path);
      }
      if (n == 0) throw_errno(EIO, "read (file too short)", path);
      got += static_cast<std::size_t>(n);
    }
    return out;
  }

  std::vector<std::string> list(const std::string& dir) override {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) throw_errno(errno, "opendir", dir);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d.get())) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
      errno = 0;
    }
    if (errno != 0) throw_errno(errno, "readdir", dir);
    return names;
  }

  void rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) throw_errno(errno, "rename", from + " to " + to);
  }

  bool remove(const std::string& path) override {
    if (::unlink(path.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    throw_errno(errno, "unlink", path);
  }

  bool make_dir(const std::string& path, mode_t mode) override {
    if (::mkdir(path.c_str(), mode) == 0) return true;
    if (errno == EEXIST) return false;
    throw_errno(errno, "mkdir", path);
  }

  mode_t mode(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw_errno(errno, "stat", path);
    return st.st_mode;
  }

  void sync_dir(const std::string& dir) override {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) throw_errno(errno, "open", dir);
    if (::fsync(fd.get()) != 0) throw_errno(errno, "fsync", dir);
  }

  void allocate(const std::string& path, std::uint64_t bytes) override {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) throw_errno(errno, "open", path);
    int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes));
    if (err == EOPNOTSUPP || err == EINVAL) {
      // A file system without fallocate: blocks written are blocks held.
      const std::string zeros(64 * 1024, '\0');
      PosixFile file(std::move(fd), path);
      for (std::uint64_t done = 0; done < bytes; done += zeros.size()) file.append(zeros);
      file.sync();
      return;
    }
    if (err != 0) throw_errno(err, "fallocate", path);
    if (::fdatasync(fd.get()) != 0) throw_errno(errno, "fdatasync", path);
  }

  std::uint64_t free_bytes(const std::string& path) override {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) throw_errno(errno, "statvfs", path);
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  }
};

}  // namespace

std::shared_ptr<SpoolIo> posix_spool_io() { return std::make_shared<PosixSpoolIo>(); }

}  // namespace xmatters
