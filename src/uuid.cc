#include "uuid.h"

#include <uuid/uuid.h>

#include <cstring>
#include <random>
#include <string_view>

namespace xmatters {

namespace {
// The namespace of collectd-xmatters' ids, chosen once at random; changing
// it changes every outage_id.
constexpr uuid_t kNamespace = {0x34, 0x05, 0x9f, 0xa7, 0xbb, 0x36, 0x40, 0x38,
                               0x80, 0x11, 0x8c, 0xb2, 0x0c, 0xba, 0x53, 0x7e};

std::string unparse(const uuid_t id) {
  char text[37];
  uuid_unparse_lower(id, text);
  return std::string(text, 36);
}
}  // namespace

std::string name_uuid(std::string_view name) {
  uuid_t id;
  uuid_generate_sha1(id, kNamespace, name.data(), name.size());
  return unparse(id);
}

std::string random_uuid() {
  // The bits come from a generator per thread, seeded from the kernel, not
  // from libuuid's uuid_generate_random: that makes six system calls
  // (getrandom, getpid, getppid, gettid...) per id, which measured 3 times
  // the whole callback in `bench_callback burst` (two ids per event, on
  // collectd's thread). No lock, and ids of different hosts and restarts do
  // not collide.
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  const std::uint64_t halves[2] = {rng(), rng()};
  uuid_t id;
  std::memcpy(id, halves, sizeof id);
  id[6] = static_cast<unsigned char>((id[6] & 0x0f) | 0x40);  // version 4 (random)
  id[8] = static_cast<unsigned char>((id[8] & 0x3f) | 0x80);  // variant 1 (RFC 4122)
  return unparse(id);
}

}  // namespace xmatters
