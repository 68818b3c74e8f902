// The file system as the spool sees it: a handful of operations behind an
// interface, so that tests can inject the failures a real disk produces
// (short writes, ENOSPC, failing fsync) and stop "crashes" at any step.
//
// Every operation reports failure by throwing std::system_error whose what()
// names the operation and the path (paths under SpoolDir hold no secrets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace xmatters {

// A file opened for appending. sync() may run on one thread while append()
// or truncate() runs on another (the spool fsyncs without its lock).
class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes; errors ignored
  // Appends all of data (one write(2) unless the kernel writes less) or
  // throws; after a throw, part of data may have reached the file.
  virtual void append(std::string_view data) = 0;
  // Cuts the file back to size bytes (to drop a partly written record).
  virtual void truncate(std::uint64_t size) = 0;
  // Data and size to stable storage (fdatasync).
  virtual void sync() = 0;
  virtual void close() = 0;
};

class SpoolIo {
 public:
  virtual ~SpoolIo() = default;
  // Creates the file (mode 0600) if missing; writes go to its end.
  virtual std::unique_ptr<WritableFile> open_append(const std::string& path) = 0;
  // Bytes in path.
  virtual std::uint64_t file_size(const std::string& path) = 0;
  // size bytes of path from offset; fewer than size (the file is shorter)
  // throws EIO.
  virtual std::string read_at(const std::string& path, std::uint64_t offset, std::size_t size) = 0;
  // Names of the entries of dir, without "." and "..".
  virtual std::vector<std::string> list(const std::string& dir) = 0;
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // False when path did not exist.
  virtual bool remove(const std::string& path) = 0;
  // Creates the directory with mode; false when it already existed.
  virtual bool make_dir(const std::string& path, mode_t mode) = 0;
  // st_mode of path (type and permission bits).
  virtual mode_t mode(const std::string& path) = 0;
  // Makes renames and removals in dir durable.
  virtual void sync_dir(const std::string& dir) = 0;
  // Makes path (created 0600 if missing) hold at least bytes of allocated
  // space, synced: the spool's reserve for a full disk (doc/storage.md).
  virtual void allocate(const std::string& path, std::uint64_t bytes) = 0;
  // Bytes an unprivileged write may still take on path's file system
  // (statvfs: f_bavail). No I/O: cheap enough for collectd's threads.
  virtual std::uint64_t free_bytes(const std::string& path) = 0;
};

// The real thing: open(2) with O_NOFOLLOW|O_CLOEXEC (O_APPEND for writing)
// and mode 0600, fdatasync, fsync of the directory, posix_fallocate,
// statvfs.
std::shared_ptr<SpoolIo> posix_spool_io();

}  // namespace xmatters
