// The sizes a payload keeps within (collectd-xmatters(5), PAYLOAD and
// OUTAGES), shared by the payload units and the start-up checks.
#pragma once

#include <cstddef>

namespace xmatters {

// A host or flood outage's payload lists at most this many members in
// `services`, `items` and `reasons`, and only while the list stays within
// kJoinedMax bytes, then " and N more" (collectd-xmatters(5), OUTAGES):
// ten members of collectd's longest names, each byte escaped as "\u0001",
// would take the body past kMaxBody.
inline constexpr std::size_t kMembersListed = 10;
inline constexpr std::size_t kJoinedMax = 1536;

// The most bytes a request body has: a template that could expand to more is
// refused at start-up, and the built-in payload leaves out meta items beyond
// it (collectd-xmatters(5), PAYLOAD).
inline constexpr std::size_t kMaxBody = 64 * 1024;

// The most bytes DetailsURL may expand to (with the longest, least valid
// values collectd allows): a longer one is refused at start-up, so that the
// built-in payload keeps within kMaxBody.
inline constexpr std::size_t kDetailsUrlMax = 16 * 1024;

}  // namespace xmatters
