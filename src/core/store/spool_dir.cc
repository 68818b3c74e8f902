#include "store/spool_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "config/config.h"
#ifndef XMATTERS_VERSION
#define XMATTERS_VERSION "unknown"
#endif
#include "store/spool_format.h"
#include "store/spool_io.h"
#include "store/spool_replay.h"
#include "util/text.h"

namespace xmatters {

namespace {

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The checks both uses share. take: create what is missing and lock it
// (the plugin); otherwise only look (the command). Returns the lock (-1
// when only looking).
UniqueFd judge(std::string& path, bool create_parent, bool take, std::vector<std::string>& warnings) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto refuse = [&](const std::string& why) { return ConfigError("SpoolDir \"" + path + "\": " + why); };
  const auto failed = [&](const std::string& what, int err) { return refuse(what + ": " + std::strerror(err)); };

  if (!take) {
    // What the creation below would find.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      const std::string parent = parent_of(path);
      if (::access(parent.c_str(), F_OK) != 0) {
        if (!create_parent) throw refuse("its parent directory does not exist");
        if (::access(parent_of(parent).c_str(), W_OK | X_OK) != 0)
          throw failed("cannot create its parent directory", errno);
        return UniqueFd();
      }
      if (::access(parent.c_str(), W_OK | X_OK) != 0) throw failed("cannot create it", errno);
      return UniqueFd();
    }
  } else {
    // collectd creates its BaseDir (0755) only after reading the configuration.
    if (create_parent && ::mkdir(parent_of(path).c_str(), 0755) != 0 && errno != EEXIST)
      throw failed("cannot create its parent directory", errno);
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      if (errno == ENOENT) throw refuse("its parent directory does not exist");
      throw failed("cannot create it", errno);
    }
  }

  // Judged at its target when it is a symlink; everything after this goes
  // through the descriptor, so the path cannot be swapped between checks.
  UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) {
    if (errno == ENOTDIR) throw refuse("is not a directory");
    throw failed("cannot open it", errno);
  }
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0) throw failed("cannot stat it", errno);
  if (st.st_uid != ::geteuid())
    throw refuse("is owned by uid " + std::to_string(st.st_uid) + ", not by collectd's user (uid " +
                 std::to_string(::geteuid()) + "); refused");
  if ((st.st_mode & 022) != 0)
    throw refuse("has mode " + mode_octal(st.st_mode) +
                 ", writable by other users, who could plant files in it; refused (use a directory of its own, "
                 "mode 0700)");
  if ((st.st_mode & 077) != 0)
    warnings.push_back("SpoolDir \"" + path + "\" has mode " + mode_octal(st.st_mode) +
                       "; 0700 is recommended (other users can list it); it is left as it is");
  if (::faccessat(dir.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) throw failed("cannot be written", errno);

  // Before anything is created in it: a SpoolDir that a newer plugin wrote
  // is left exactly as it is (doc/storage.md, "Changing the format").
  std::uint32_t format = 0;
  try {
    format = spool_format_version(*posix_spool_io(), path);
  } catch (const std::system_error& e) {
    throw refuse(std::string("cannot read its spool: ") + e.what());
  }
  if (format > spool_format::kFormatVersion)
    throw refuse("holds a spool in format version " + std::to_string(format) +
                 ", written by a newer collectd-xmatters; this one (" XMATTERS_VERSION ") reads format versions 1 to " +
                 std::to_string(spool_format::kFormatVersion) +
                 " and leaves it untouched: upgrade the plugin again, or give it another SpoolDir");

  const int flags = take ? O_RDWR | O_CREAT : O_RDONLY;
  UniqueFd lock(::openat(dir.get(), "lock", flags | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (lock.get() < 0) {
    if (errno == ELOOP) throw refuse("its file lock is a symbolic link; refused");
    if (!take && errno == ENOENT) return UniqueFd();  // the plugin would create it
    throw failed("cannot open its file lock", errno);
  }
  if (::fstat(lock.get(), &st) != 0) throw failed("cannot stat its file lock", errno);
  if (!S_ISREG(st.st_mode)) throw refuse("its lock is not a regular file; refused");
  if (!take) return UniqueFd();  // held by the running collectd: fine
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) throw refuse("is in use by another process (is another collectd running with it?)");
    throw failed("cannot lock it", errno);
  }
  return lock;
}

}  // namespace

SpoolDir::SpoolDir(std::string path, bool create_parent, std::vector<std::string>& warnings)
    : path_(std::move(path)) {
  lock_ = judge(path_, create_parent, true, warnings);
}

std::string SpoolDir::inspect(std::string path, bool create_parent, std::vector<std::string>& warnings) {
  judge(path, create_parent, false, warnings);
  return path;
}

}  // namespace xmatters
