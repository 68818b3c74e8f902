// SpoolDir as collectd-xmatters(5), OPTIONS and SECURITY want it: checked while the configuration
// is read (so that an unusable one stops collectd from starting, like any
// other configuration error) and held by this process alone until shutdown.
#pragma once

#include <string>
#include <vector>

#include "util/resources.h"

namespace xmatters {

class SpoolDir {
 public:
  // Makes path the plugin's SpoolDir, or throws ConfigError naming SpoolDir
  // and path. A missing directory is created with mode 0700 (its parent
  // must exist, unless create_parent: collectd's BaseDir, which collectd
  // itself would create). An existing one is never chmodded; it is refused
  // when it is not a directory, is owned by another user than this
  // process's, is writable by group or others, cannot be written, or is
  // held by another process; it is judged at its target when it is itself
  // a symlink. Looser than 0700 otherwise adds a line to warnings.
  // A symlink where the lock file should be is refused.
  SpoolDir(std::string path, bool create_parent, std::vector<std::string>& warnings);

  // The same judgement without touching anything, for collectd-xmatters
  // check: nothing is created, no lock is taken, and a SpoolDir that another
  // process holds (the running collectd) is fine. A missing one passes when
  // the plugin could create it. Throws ConfigError with the same words.
  // Returns the path as the plugin would use it.
  static std::string inspect(std::string path, bool create_parent, std::vector<std::string>& warnings);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  UniqueFd lock_;  // flock(2)ed: the kernel releases it when the process dies
};

}  // namespace xmatters
