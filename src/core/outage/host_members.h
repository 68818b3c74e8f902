// A host outage's members (GroupBy host, collectd-xmatters(5) OUTAGES): the
// value lists of one host that failed while it was open, each failing or
// recovered (listed for the clear). At most kMaxMembers are listed; the
// limit counts failing members, so a recovered one gives its place.
#pragma once

#include <cstddef>
#include <optional>

#include "outage/notification.h"
#include "outage/outage.h"

namespace xmatters {

// n's value list as a member: its key, items and reasons (as the payload
// lists them).
Member member_of(const Notification& n);

// The member of host for value list vl; null when it has none.
Member* find_member(Outage& host, const OutageKey& vl);

// How many of host's members are failing.
std::size_t failing_members(const Outage& host);

// host with n's value list as a member, failing or recovered, last_time
// the time of its last notification (for the age check): the member is
// updated, or added; a full list first gives up the first recovered member
// it lists (the caller refuses a new failing one when kMaxMembers fail).
void put_member(Outage& host, const Notification& n, bool failing, std::optional<TimePoint> last_time);

}  // namespace xmatters
