#pragma once

#include <string>
#include <string_view>

namespace xmatters {

// A name-based (version 5, SHA-1) UUID of name in the project's own
// namespace, e.g. "1b4e28ba-2fa1-51d2-883f-0016d3cca427": 36 characters of
// [0-9a-f-], fit for outage_id. The same name gives the same id on every
// host and every run: two aggregators fed the same values agree on it.
std::string name_uuid(std::string_view name);

// A random (version 4) UUID, for ids that nothing else must agree on (a
// silence's).
std::string random_uuid();

}  // namespace xmatters
