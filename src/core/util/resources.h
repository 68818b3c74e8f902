// RAII owners of the C resources the units share: jansson references, the
// malloc'ed text json_dumps returns, and file descriptors.
#pragma once

#include <jansson.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

namespace xmatters {

struct JsonDecref {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDecref>;

struct FreeChars {
  void operator()(char* p) const { std::free(p); }
};
// What json_dumps returns.
using DumpedJson = std::unique_ptr<char, FreeChars>;

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // close() reports errors (a delayed write failure) that a destructor would lose.
  int close() { return ::close(release()); }

 private:
  int fd_;
};

}  // namespace xmatters
