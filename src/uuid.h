#pragma once

#include <string>

namespace xmatters {

// A random (version 4) UUID, e.g. "1b4e28ba-2fa1-41d2-883f-0016d3cca427":
// 36 characters of [0-9a-f-], fit for outage_id and event_id. Thread-safe.
std::string random_uuid();

}  // namespace xmatters
