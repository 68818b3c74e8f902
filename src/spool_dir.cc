#include "spool_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config.h"

namespace xmatters {

namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

SpoolDir::SpoolDir(std::string path, bool create_parent, std::vector<std::string>& warnings)
    : path_(std::move(path)) {
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  const auto refuse = [&](const std::string& why) { return ConfigError("SpoolDir \"" + path_ + "\": " + why); };
  const auto failed = [&](const std::string& what, int err) { return refuse(what + ": " + std::strerror(err)); };

  // collectd creates its BaseDir (0755) only after reading the configuration.
  if (create_parent && ::mkdir(parent_of(path_).c_str(), 0755) != 0 && errno != EEXIST)
    throw failed("cannot create its parent directory", errno);
  if (::mkdir(path_.c_str(), 0700) != 0 && errno != EEXIST) {
    if (errno == ENOENT) throw refuse("its parent directory does not exist");
    throw failed("cannot create it", errno);
  }

  // Judged at its target when it is a symlink; everything after this goes
  // through the descriptor, so the path cannot be swapped between checks.
  UniqueFd dir(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
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
    throw refuse("has mode " + octal(st.st_mode) +
                 ", writable by other users, who could plant files in it; refused (use a directory of its own, "
                 "mode 0700)");
  if ((st.st_mode & 077) != 0)
    warnings.push_back("SpoolDir \"" + path_ + "\" has mode " + octal(st.st_mode) +
                       "; 0700 is recommended (other users can list it); it is left as it is");
  if (::faccessat(dir.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) throw failed("cannot be written", errno);

  lock_ = UniqueFd(::openat(dir.get(), "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (lock_.get() < 0) {
    if (errno == ELOOP) throw refuse("its file lock is a symbolic link; refused");
    throw failed("cannot open its file lock", errno);
  }
  if (::fstat(lock_.get(), &st) != 0) throw failed("cannot stat its file lock", errno);
  if (!S_ISREG(st.st_mode)) throw refuse("its lock is not a regular file; refused");
  if (::flock(lock_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) throw refuse("is in use by another process (is another collectd running with it?)");
    throw failed("cannot lock it", errno);
  }
}

}  // namespace xmatters
