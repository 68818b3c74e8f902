#include "power_loss_io.h"

#include "testing.h"

namespace xmtest {

namespace {
std::string base(const std::string& path) { return path.substr(path.rfind('/') + 1); }
}  // namespace

class PowerLossIo::File final : public xmatters::WritableFile {
 public:
  File(PowerLossIo& io, std::unique_ptr<xmatters::WritableFile> real, int inode)
      : io_(io), real_(std::move(real)), inode_(inode) {}
  void append(std::string_view data) override {
    io_.hook();
    real_->append(data);
    xmatters::MutexLock lock(io_.mutex_);
    io_.inodes_[inode_].current.append(data);
  }
  void truncate(std::uint64_t size) override {
    real_->truncate(size);
    xmatters::MutexLock lock(io_.mutex_);
    io_.inodes_[inode_].current.resize(size);
  }
  void sync() override {
    io_.hook();
    real_->sync();
    xmatters::MutexLock lock(io_.mutex_);
    io_.inodes_[inode_].durable = io_.inodes_[inode_].current;
  }
  void close() override { real_->close(); }

 private:
  PowerLossIo& io_;
  std::unique_ptr<xmatters::WritableFile> real_;
  int inode_;
};

void PowerLossIo::image(const std::string& to, std::mt19937& rng, bool torn) {
  xmatters::MutexLock lock(mutex_);
  for (const auto& [name, inode] : durable_names_) {
    const Inode& i = inodes_.at(inode);
    std::string data = i.durable;
    if (torn && i.current.size() > i.durable.size() && i.current.compare(0, i.durable.size(), i.durable) == 0) {
      const std::size_t tail = i.current.size() - i.durable.size();
      data += i.current.substr(i.durable.size(), rng() % (tail + 1));
    }
    write_file(to + "/" + name, data);
  }
}

std::unique_ptr<xmatters::WritableFile> PowerLossIo::open_append(const std::string& path) {
  hook();
  auto file = real_->open_append(path);
  xmatters::MutexLock lock(mutex_);
  auto [it, fresh] = names_.try_emplace(base(path), next_inode_);
  if (fresh) inodes_[next_inode_++];
  return std::make_unique<File>(*this, std::move(file), it->second);
}

void PowerLossIo::rename(const std::string& from, const std::string& to) {
  hook();
  real_->rename(from, to);
  xmatters::MutexLock lock(mutex_);
  names_[base(to)] = names_.at(base(from));
  names_.erase(base(from));
}

bool PowerLossIo::remove(const std::string& path) {
  hook();
  const bool removed = real_->remove(path);
  xmatters::MutexLock lock(mutex_);
  names_.erase(base(path));
  return removed;
}

void PowerLossIo::sync_dir(const std::string& dir) {
  hook();
  real_->sync_dir(dir);
  xmatters::MutexLock lock(mutex_);
  durable_names_ = names_;
}

}  // namespace xmtest
