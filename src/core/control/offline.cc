#include "control/offline.h"

#include <algorithm>
#include <map>

#include "outage/outage_tracker.h"
#include "silence/silence_book.h"
#include "store/spool_replay.h"

namespace xmatters::control {

namespace {

namespace sf = spool_format;

// The tracker's recovery logs malformed changes; the start that follows
// says so, the command need not.
class QuietLogger : public Logger {
 public:
  void log(LogLevel, const std::string&) override {}
};

// The integrations that changes name (each one or two framed records).
void names_of_changes(const std::vector<std::string>& changes, std::vector<std::string>& names) {
  for (const std::string& bytes : changes) {
    std::size_t offset = 0;
    sf::Record rec{};
    while (offset < bytes.size()) {
      const std::size_t size = sf::parse_record(bytes, offset, &rec);
      if (size == 0) break;
      Change c;
      if (decode_change(std::string_view(bytes).substr(offset, size), &c) &&
          std::find(names.begin(), names.end(), c.integration) == names.end())
        names.emplace_back(c.integration);
      offset += size;
    }
  }
}

}  // namespace

SpoolView read_spool_view(const std::string& spool_dir, const std::vector<std::string>& configured) {
  const SpoolContents contents = read_spool(spool_dir);
  std::vector<std::string> names = configured;
  for (const auto& p : contents.pending)
    if (std::find(names.begin(), names.end(), p.event.integration) == names.end())
      names.push_back(p.event.integration);
  names_of_changes(contents.changes, names);

  SpoolView view;
  std::map<std::string, IntegrationStatus*> by_name;
  view.integrations.resize(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    view.integrations[i].name = names[i];
    by_name[names[i]] = &view.integrations[i];
  }
  for (const auto& p : contents.pending) {
    const Event& e = p.event;
    IntegrationStatus& st = *by_name[e.integration];
    ++st.queued;
    if (!st.oldest_queued || e.created < *st.oldest_queued) st.oldest_queued = e.created;
    QueuedEvent q;
    q.event_id = e.event_id;
    q.outage_id = e.outage_id;
    q.integration = e.integration;
    q.type = e.type;
    q.created = e.created;
    view.queue.push_back(std::move(q));
  }
  // The open outages as the next start recovers them: the tracker's own
  // recovery, fed the spool's changes.
  // What silences hold back: windows need the whole configuration, which
  // the command reads only for check.
  const TimePoint now = Clock::now();
  view.silences = silences_of(contents.changes, now);
  const auto silenced_by = [&](const std::string& integration, const OutageKey& key) -> std::string {
    for (const Silence& s : view.silences)
      if (s.active(now) && s.matches(integration, key)) return "silence " + s.id;
    return "";
  };
  QuietLogger quiet;
  for (const auto& name : names) {
    const OutageTracker tracker(name, TrackerOptions{}, quiet, contents.changes);
    tracker.for_each_open([&](const OutageKey& key, const Outage& o) {
      std::string by;
      if (o.held && o.kind == OutageKind::ValueList) by = silenced_by(name, key);
      for (const Member& m : o.members)
        if (o.held && by.empty() && m.failing) by = silenced_by(name, m.key);
      view.outages.push_back({name, key, o, by});
    });
  }
  return view;
}

}  // namespace xmatters::control
