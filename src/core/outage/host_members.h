// A host outage's members (GroupBy host, collectd-xmatters(5) OUTAGES): the
// value lists of one host that failed while it was open.
#pragma once

#include "outage/notification.h"
#include "outage/outage.h"

namespace xmatters {

// n's value list as a member: its key, items and reasons (as the payload
// lists them).
Member member_of(const Notification& n);

}  // namespace xmatters
