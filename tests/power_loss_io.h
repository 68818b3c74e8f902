// A file system that remembers what a power loss would keep (LevelDB's way
// of testing its log): per file (inode) the content as of its last
// fdatasync, per directory the names as of its last fsync. The spool's
// power-loss tests (test_spool's outage table, test_silence's SILENCE
// records) drive their scripted sequences through it and restart from
// image() before every operation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "util/mutex.h"
#include "store/spool_io.h"

namespace xmtest {

class PowerLossIo final : public xmatters::SpoolIo {
 public:
  std::function<void()> before;  // called before each operation that changes something

  // Writes into to the directory as a power loss leaves it: each file's
  // unsynced tail dropped or (torn) cut at a random length.
  void image(const std::string& to, std::mt19937& rng, bool torn);

  std::unique_ptr<xmatters::WritableFile> open_append(const std::string& path) override;
  std::uint64_t file_size(const std::string& path) override { return real_->file_size(path); }
  std::string read_at(const std::string& path, std::uint64_t offset, std::size_t size) override {
    return real_->read_at(path, offset, size);
  }
  std::vector<std::string> list(const std::string& dir) override { return real_->list(dir); }
  void rename(const std::string& from, const std::string& to) override;
  bool remove(const std::string& path) override;
  bool make_dir(const std::string& path, mode_t mode) override { return real_->make_dir(path, mode); }
  mode_t mode(const std::string& path) override { return real_->mode(path); }
  void sync_dir(const std::string& dir) override;
  void allocate(const std::string& path, std::uint64_t bytes) override {
    real_->allocate(path, bytes);  // not part of the image: the reserve holds no data
  }
  std::uint64_t free_bytes(const std::string& path) override { return real_->free_bytes(path); }

 private:
  struct Inode {
    std::string current, durable;
  };
  class File;

  void hook() {
    if (before) before();
  }

  const std::shared_ptr<xmatters::SpoolIo> real_ = xmatters::posix_spool_io();
  xmatters::Mutex mutex_;
  std::map<std::string, int> names_ GUARDED_BY(mutex_), durable_names_ GUARDED_BY(mutex_);
  std::map<int, Inode> inodes_ GUARDED_BY(mutex_);
  int next_inode_ GUARDED_BY(mutex_) = 0;
};

}  // namespace xmtest
