#include "util/uuid.h"

#include <uuid/uuid.h>

#include <cstring>
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
  uuid_t id;
  uuid_generate_random(id);
  return unparse(id);
}

}  // namespace xmatters
