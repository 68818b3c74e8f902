// A host outage's members (host_members.h).
#include "outage/host_members.h"

#include "outage/notification_text.h"  // notification_items, notification_reasons

namespace xmatters {

Member member_of(const Notification& n) {
  Member m;
  m.key = OutageKey::of(n);
  m.items = notification_items(n);
  m.reasons = notification_reasons(n);
  return m;
}

}  // namespace xmatters
