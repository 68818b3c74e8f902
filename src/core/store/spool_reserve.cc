#include "store/spool_reserve.h"

#include <algorithm>
#include <system_error>
#include <utility>

namespace xmatters {

namespace {

constexpr std::uint64_t kPage = 4096;  // what a file system allocates at least

std::uint64_t round_up(std::uint64_t n, std::uint64_t step) { return (n + step - 1) / step * step; }

}  // namespace

SpoolReserve::SpoolReserve(SpoolIo& io, std::string dir, std::uint64_t step)
    : io_(io), dir_(std::move(dir)), path_(dir_ + "/reserve"), step_(step) {}

bool SpoolReserve::admits(std::uint64_t need, std::uint64_t bytes, std::uint64_t freeing) {
  if (!covers_) return false;
  // An allocation running takes free space before size_ counts it.
  const std::uint64_t held = std::max(size_.load(), growing_.load());
  if (need <= held || need - held + bytes + kPage <= free_bytes() + freeing) return true;
  refuse();
  return false;
}

bool SpoolReserve::restore(std::uint64_t need) {
  MutexLock lock(mutex_);
  if (step_ == 0) return false;
  const std::uint64_t roomy = round_up(2 * need + step_, step_);
  const std::uint64_t held = size_;
  if (held > 4 * roomy) {
    shrink(roomy);
  } else if (held < roomy) {
    const std::uint64_t want = held + free_bytes() >= 2 * roomy ? roomy : round_up(need, kPage);
    if (held < want) {
      growing_ = want;
      try {
        io_.allocate(path_, want);
        size_ = want;
      } catch (const std::system_error&) {
        if (held == 0) remove();  // a part is worse than nothing: it is not counted on
      }
      growing_ = 0;
    }
  }
  return covers_ = size_ >= need && (covers_ || free_bytes() >= step_);
}

bool SpoolReserve::release() {
  MutexLock lock(mutex_);
  covers_ = false;
  if (size_ == 0) return false;
  remove();
  return true;
}

std::uint64_t SpoolReserve::free_bytes() const {
  try {
    return io_.free_bytes(dir_);
  } catch (const std::system_error&) {
    return 0;
  }
}

void SpoolReserve::shrink(std::uint64_t to) {
  size_ = to;  // first: what goes is no longer counted on
  try {
    io_.open_append(path_)->truncate(to);
  } catch (const std::system_error&) {
    remove();
  }
}

void SpoolReserve::remove() {
  size_ = 0;
  try {
    io_.remove(path_);
  } catch (const std::system_error&) {
  }
}

}  // namespace xmatters
