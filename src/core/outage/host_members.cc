// A host outage's members (host_members.h).
#include "outage/host_members.h"

#include <algorithm>
#include <utility>

#include "outage/notification_text.h"  // notification_items, notification_reasons

namespace xmatters {

Member member_of(const Notification& n) {
  Member m;
  m.key = OutageKey::of(n);
  m.items = notification_items(n);
  m.reasons = notification_reasons(n);
  return m;
}

Member* find_member(Outage& host, const OutageKey& vl) {
  const auto found = std::find_if(host.members.begin(), host.members.end(), [&](const Member& m) { return m.key == vl; });
  return found == host.members.end() ? nullptr : &*found;
}

std::size_t failing_members(const Outage& host) {
  return static_cast<std::size_t>(
      std::count_if(host.members.begin(), host.members.end(), [](const Member& m) { return m.failing; }));
}

void put_member(Outage& host, const Notification& n, bool failing, std::optional<TimePoint> last_time) {
  Member member = member_of(n);
  member.failing = failing;
  member.last_time = last_time;
  if (Member* m = find_member(host, member.key)) {
    *m = std::move(member);
    return;
  }
  if (host.members.size() >= kMaxMembers) {
    const auto recovered =
        std::find_if(host.members.begin(), host.members.end(), [](const Member& m) { return !m.failing; });
    if (recovered != host.members.end()) host.members.erase(recovered);
  }
  host.members.push_back(std::move(member));
}

}  // namespace xmatters
