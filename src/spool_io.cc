// The spool's record format (spool_format.h) and its POSIX file system
// (spool_io.h).
#include "spool_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "resources.h"
#include "spool_format.h"

namespace xmatters {
namespace spool_format {

// --- CRC-32C -----------------------------------------------------------------
//
// Slicing-by-8: eight 256-entry tables let the loop consume 8 bytes per step
// with independent lookups, several times faster than the byte-wise table
// (this runs on collectd's notification callback, over every payload). The
// tables are computed at compile time.

namespace {

constexpr std::uint32_t kCastagnoliReflected = 0x82F63B78u;

using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr CrcTables make_crc_tables() {
  CrcTables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ kCastagnoliReflected : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  return t;
}

constexpr CrcTables kCrcTables = make_crc_tables();

}  // namespace

namespace {
#if defined(__x86_64__)
// SSE 4.2's crc32 instruction computes CRC32C itself: an event's record is
// checksummed on collectd's thread, ten times faster than with the tables.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::string_view data, std::uint32_t crc) {
  auto p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::uint64_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  std::uint32_t c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, *p);
  return ~c32;
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
#endif
}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) {
#if defined(__x86_64__)
  if (kHaveSse42) return crc32c_sse42(data, crc);
#endif
  return crc32c_table(data, crc);
}

std::uint32_t crc32c_table(std::string_view data, std::uint32_t crc) {
  const auto& t = kCrcTables;
  auto p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  std::uint32_t c = ~crc;
  while (n >= 8) {
    const std::uint32_t lo = c ^ load_u32le(p);
    const std::uint32_t hi = load_u32le(p + 4);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return ~c;
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

constexpr std::uint8_t kOutage = 1;
constexpr std::uint8_t kClear = 2;

bool is_record_type_of(LogKind log, std::uint8_t type) {
  switch (log) {
    case LogKind::Spool:
      return type == static_cast<std::uint8_t>(RecordType::Event) || type == static_cast<std::uint8_t>(RecordType::Ack);
    case LogKind::OutageJournal:
      return type == static_cast<std::uint8_t>(RecordType::OutageSet) ||
             type == static_cast<std::uint8_t>(RecordType::OutageClose);
  }
  return false;
}

}  // namespace

std::string encode_event(const Event& e) {
  const std::size_t size = 4 + e.event_id.size() + 4 + e.integration.size() + 4 + e.outage_id.size() +
                           1 + 8 + 4 + e.body.size() + 4 + e.change.size();
  // Each field's own u32 length must not wrap either.
  if (e.body.size() > kMaxPayload || e.change.size() > kMaxPayload)
    throw std::length_error("event too large for the spool");
  RecordBuilder b(RecordType::Event, size);
  b.field(e.event_id);
  b.field(e.integration);
  b.field(e.outage_id);
  b.u8(e.type == EventType::Clear ? kClear : kOutage);
  b.i64(std::chrono::duration_cast<std::chrono::nanoseconds>(e.created.time_since_epoch()).count());
  b.field(e.body);
  b.field(e.change);
  return std::move(b).finish();
}

std::string encode_ack(std::string_view event_id) {
  RecordBuilder b(RecordType::Ack, event_id.size());
  b.bytes(event_id);
  return std::move(b).finish();
}

std::size_t parse_record(std::string_view data, std::size_t offset, Record* out, LogKind log) {
  if (offset > data.size() || data.size() - offset < kHeaderSize) return 0;
  auto h = reinterpret_cast<const unsigned char*>(data.data() + offset);
  // Cheapest checks first: the resync scan calls this at every byte offset.
  const std::uint8_t type = h[8];
  if (!is_record_type_of(log, type)) return 0;
  const std::uint32_t length = load_u32le(h + 4);
  if (length > kMaxPayload || data.size() - offset - kHeaderSize < length) return 0;
  const std::string_view covered = data.substr(offset + 8, 1 + length);
  if (unmask_crc(load_u32le(h)) != crc32c(covered)) return 0;
  out->type = static_cast<RecordType>(type);
  out->payload = covered.substr(1);
  return kHeaderSize + length;
}

bool decode_event(std::string_view payload, Event* out) {
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
  out->created = TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(created)));
  out->body.assign(body);
  out->change.assign(change);
  return true;
}

bool decode_event_id(std::string_view payload, std::string_view* id) {
  PayloadReader r(payload);
  return r.field(id) && !id->empty();
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


// A memory map, unmapped when it goes.
class Mapping {
 public:
  Mapping() = default;
  Mapping(char* base, std::size_t length) : base_(base), length_(length) {}
  ~Mapping() { reset(); }
  Mapping(Mapping&& o) noexcept : base_(std::exchange(o.base_, nullptr)), length_(std::exchange(o.length_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      reset();
      base_ = std::exchange(o.base_, nullptr);
      length_ = std::exchange(o.length_, 0);
    }
    return *this;
  }
  explicit operator bool() const { return base_ != nullptr; }
  char* base() const { return base_; }
  std::size_t length() const { return length_; }
  void reset() {
    if (base_ != nullptr) ::munmap(base_, length_);
    base_ = nullptr;
    length_ = 0;
  }

 private:
  char* base_ = nullptr;
  std::size_t length_ = 0;
};

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels say EINVAL
#endif

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

std::uint64_t page_floor(std::uint64_t offset) { return offset - offset % page_size(); }

// File systems on which a store into a map of preallocated blocks cannot
// fail for want of space: blocks are allocated in place, not copied on
// write. Elsewhere (btrfs, NFS, ...) the kernel could answer a store with
// SIGBUS, which would kill collectd; there appends stay write(2)s.
bool maps_safely(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53UL:      // ext2/3/4
    case 0x58465342UL:  // XFS
    case 0x01021994UL:  // tmpfs
      return true;
    default:
      return false;
  }
}

// An append-only file written at a tail it keeps itself. When created with
// a reservation, the reserved bytes are preallocated (the file's size
// covers them, as zeros) and mapped, and an append that lands in pages
// already made writable is a memcpy into the page cache: no system call.
// That is the point: on these virtual machines a write(2) issued after a
// pause of a few milliseconds costs 5 to 35 us (a system call's entry runs
// cold, and the file's times are updated through the file system's
// journal), a copy into a mapped page about 1 us. A store into a shared
// map is in the page cache as soon as it is made, so it survives the
// death of the process as a write(2) does.
//
// The thread that appends never takes a page fault it could not survive:
// it copies only into pages that sync() (and the open) made writable in
// advance with MADV_POPULATE_WRITE, which reports failure as an error where
// a fault would raise SIGBUS; the rest goes through pwrite(2). sync()
// makes writable about twice what was appended since the last sync() ahead
// of the tail, so a steady stream stays on the copy.
class PosixFile final : public WritableFile {
 public:
  PosixFile(UniqueFd fd, std::string path, std::uint64_t tail, std::size_t reserve)
      : fd_(std::move(fd)), path_(std::move(path)), tail_(tail), dirty_end_(tail), synced_(tail) {
    if (reserve == 0 || tail != 0 || !maps_safely(fd_.get())) return;
    const std::size_t length = (reserve + page_size() - 1) / page_size() * page_size();
    void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (base == MAP_FAILED) return;
    Mapping map(static_cast<char*>(base), length);
    // Not posix_fallocate: where the file system cannot preallocate, glibc
    // would write the zeros itself, and mapping is not worth it.
    if (::fallocate(fd_.get(), 0, 0, static_cast<off_t>(length)) != 0) {
      // Whatever it did allocate reads as zeros, which replay skips as
      // padding; the best is to leave none.
      if (::ftruncate(fd_.get(), 0) != 0) {
      }
      return;
    }
    map_ = std::move(map);
    prepare(0, kMinAhead);
  }

  ~PosixFile() override {
    try {
      close();
    } catch (const std::system_error&) {
    }
  }

  void append(std::string_view data) override {
    check_open("write");
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail + data.size() <= ready_.load(std::memory_order_acquire)) {
      std::memcpy(map_.base() + tail, data.data(), data.size());
    } else {
      std::uint64_t at = tail;
      while (!data.empty()) {
        const ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(at));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          const int err = n < 0 ? errno : EIO;
          dirty_end_ = std::max(dirty_end_, at);
          throw_errno(err, "write", path_);
        }
        at += static_cast<std::uint64_t>(n);
        data.remove_prefix(static_cast<std::size_t>(n));
      }
      dirty_end_ = std::max(dirty_end_, at);
      tail_.store(at, std::memory_order_release);
      return;
    }
    const std::uint64_t end = tail + data.size();
    dirty_end_ = std::max(dirty_end_, end);
    tail_.store(end, std::memory_order_release);
  }

  void truncate(std::uint64_t size) override {
    check_open("truncate");
    const std::uint64_t end = std::max(tail_.load(std::memory_order_relaxed), dirty_end_);
    if (size < end && size < map_.length()) {
      // Zeros, as the preallocated space reads; by write(2), as these
      // pages may not be writable in the map.
      const std::string zeros(static_cast<std::size_t>(std::min<std::uint64_t>(end, map_.length()) - size), '\0');
      if (::pwrite(fd_.get(), zeros.data(), zeros.size(), static_cast<off_t>(size)) !=
          static_cast<ssize_t>(zeros.size()))
        throw_errno(errno != 0 ? errno : EIO, "truncate", path_);
    }
    if (end > map_.length() && ::ftruncate(fd_.get(), static_cast<off_t>(std::max<std::uint64_t>(size, map_.length()))) != 0)
      throw_errno(errno, "truncate", path_);
    dirty_end_ = size;
    tail_.store(size, std::memory_order_release);
  }

  void sync() override {
    check_open("fdatasync");
    std::lock_guard<std::mutex> lock(sync_mutex_);
    const std::uint64_t tail = tail_.load(std::memory_order_acquire);
    const std::uint64_t in_map = std::min<std::uint64_t>(tail, map_.length());
    const std::uint64_t from = page_floor(std::min(synced_, in_map));
    // Only the appended range: an fdatasync would also write back, and so
    // make read-only again, the pages made writable ahead of the tail.
    if (in_map > from && ::msync(map_.base() + from, in_map - from, MS_SYNC) != 0) throw_errno(errno, "msync", path_);
    if ((tail > map_.length() || !map_) && ::fdatasync(fd_.get()) != 0) throw_errno(errno, "fdatasync", path_);
    if (map_) prepare(tail, std::max<std::uint64_t>(kMinAhead, 2 * (tail - synced_)));
    synced_ = tail;
  }

  void close() override {
    if (fd_.get() < 0) return;
    if (map_) {
      map_.reset();
      // The padding goes; a crash leaves it, and replay reads it as the
      // zeros it is.
      if (::ftruncate(fd_.get(), static_cast<off_t>(tail_.load())) != 0) {
        const int err = errno;
        fd_.reset();
        throw_errno(err, "truncate", path_);
      }
    }
    // Linux releases the descriptor even when close reports an error, so
    // it must not be closed again.
    if (::close(fd_.release()) != 0 && errno != EINTR) throw_errno(errno, "close", path_);
  }

 private:
  // What sync() makes writable ahead of the tail at least: some 350 events.
  static constexpr std::uint64_t kMinAhead = 256u << 10;

  // Makes the pages from tail's to ahead bytes past it writable (again:
  // msync and the kernel's writeback make written pages read-only, to see
  // the next write), and lets append() copy into them. Failure (an old
  // kernel, no memory) leaves append() on pwrite(2).
  void prepare(std::uint64_t tail, std::uint64_t ahead) {
    const std::uint64_t from = page_floor(tail);
    const std::uint64_t to = std::min<std::uint64_t>(map_.length(), page_floor(tail + ahead + page_size() - 1));
    if (to <= from) return;
    if (::madvise(map_.base() + from, to - from, MADV_POPULATE_WRITE) != 0) return;
    std::uint64_t ready = ready_.load(std::memory_order_relaxed);
    while (ready < to && !ready_.compare_exchange_weak(ready, to, std::memory_order_release)) {
    }
  }

  void check_open(const char* what) const {
    if (fd_.get() < 0) throw_errno(EBADF, what, path_);
  }

  UniqueFd fd_;
  std::string path_;
  Mapping map_;
  // Written by append() and truncate() (one thread at a time, the spool's
  // lock), read by sync() on another thread.
  std::atomic<std::uint64_t> tail_;
  std::uint64_t dirty_end_;  // the furthest any write reached, failed ones included
  // Copies below this offset need no system call; grows only.
  std::atomic<std::uint64_t> ready_{0};
  std::mutex sync_mutex_;
  std::uint64_t synced_;  // guarded by sync_mutex_
};

class PosixSpoolIo final : public SpoolIo {
 public:
  std::unique_ptr<WritableFile> open_append(const std::string& path, std::size_t reserve) override {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) throw_errno(errno, "open", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno(errno, "stat", path);
    return std::make_unique<PosixFile>(std::move(fd), path, static_cast<std::uint64_t>(st.st_size), reserve);
  }

  std::string read_file(const std::string& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) throw_errno(errno, "open", path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno(errno, "stat", path);
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    for (;;) {
      if (got == out.size()) out.resize(out.size() + 65536);  // the file grew
      const ssize_t n = ::read(fd.get(), &out[got], out.size() - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno(errno, "read", path);
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
    return out;
  }

  std::string read_at(const std::string& path, std::uint64_t offset, std::size_t size) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
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
};

}  // namespace

std::shared_ptr<SpoolIo> posix_spool_io() { return std::make_shared<PosixSpoolIo>(); }

}  // namespace xmatters
