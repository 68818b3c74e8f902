// The table of open outages (collectd-xmatters(5) OUTAGES). Its records' format and how the
// spool replays them: doc/storage.md.
#include "outage/outage_tracker.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "outage/flood_budget.h"
#include "outage/flood_outage.h"
#include "outage/host_members.h"
#include "util/mutex.h"
#include "outage/outage_memory.h"
#include "outage/outage_table.h"
#include "store/spool_format.h"

namespace xmatters {

namespace sf = spool_format;

namespace {


// The place of the page released for a held outage: the next after its last
// page, or 1 when nothing of it was paged (a held page took no place; an
// outage recovered from an older plugin's records may say otherwise).
std::uint32_t released_sequence(const Outage& held) { return held.paged ? held.sequence + 1 : 1; }

}  // namespace

struct OutageTracker::Decider {
  using Closed = ClosedOutages::Closed;
  using Steady = std::chrono::steady_clock;

  Decider(std::string i, TrackerOptions o, Logger& l, ChangeWriter w)
      : integration(std::move(i)), options(std::move(o)), log(l), write_change(std::move(w)),
        flood(integration, options.flood_limit, options.flood_budget, options.send_clear) {}

  const std::string integration;
  const TrackerOptions options;
  Logger& log;
  const ChangeWriter write_change;

  OutageTable table;  // the keys with an open outage (outage_table.h)
  // Closed outages remembered (outage_memory.h): stale input is ignored,
  // and a reopened outage gets a new id. Its OUTAGE_CLOSE record carries
  // each, and compaction writes again the kClosedKept closed last
  // (snapshot()), so a restart remembers them too.
  ClosedOutages closed;
  std::atomic<std::size_t> open_count{0};
  // Open outages recovered from before a change of GroupBy: each keeps its
  // own grouping until it clears, so its key is looked up too.
  std::atomic<std::size_t> other_grouping{0};
  // The integration's flood outage (flood_outage.h), FloodLimit's budget
  // with it; its mutex is taken under a key's, never the other way round.
  FloodOutage flood;
  std::atomic<std::uint64_t> silenced_total{0};

  // Whether a silence or window covers the outage now: a host outage's
  // every failing member, a value list's key; never a flood outage.
  bool covered(const Outage& o, const OutageKey& key) const {
    if (!options.covering || o.kind == OutageKind::Flood) return false;
    if (o.kind == OutageKind::ValueList) return options.covering(key).has_value();
    bool any = false;
    for (const Member& m : o.members) {
      if (!m.failing) continue;
      if (!options.covering(m.key)) return false;
      any = true;
    }
    return any;
  }

  // Decides under ks.mutex; false when ks was erased meanwhile (look again).
  bool decide(TrackedKey& ks, const Notification& n, TransitionHandler handler) EXCLUDES(ks.mutex);
  void decide_value_list(TrackedKey& ks, const Notification& n, TransitionHandler handler) REQUIRES(ks.mutex);
  void decide_host(TrackedKey& ks, const Notification& n, TransitionHandler handler) REQUIRES(ks.mutex);
  // True when n is older than last and to be ignored; resets last when n
  // is far older (the clock went back).
  bool older(std::optional<TimePoint>& last, const Notification& n, const OutageKey& key);

  // The end of every decision that changes ks's outage: sends the event
  // `send` (none: a change without an event) and records the change, then
  // makes `after` the key's state, or closes it. A clear describes `after`,
  // the outage as it closed. False when the event was refused: nothing
  // changed. With a FloodLimit, a new outage beyond it is folded, and a
  // folded outage's events become its flood outage's (FloodOutage::plan).
  bool commit(TrackedKey& ks, const Notification& n, std::optional<EventType> send, Outage after, bool closes,
              std::optional<TimePoint> last_time, TransitionHandler handler) REQUIRES(ks.mutex) EXCLUDES(flood.mutex);
  // Sends send about outage with change in it, or records change alone.
  bool emit(std::optional<EventType> send, const Notification& n, const Outage& outage, std::string change,
            TransitionHandler handler, Steady::time_point not_before = {}) {
    if (send) {
      const std::uint32_t sequence = *send == EventType::Clear ? outage.sequence + 1 : outage.sequence;
      Transition t{*send, n, outage, sequence, std::move(change), not_before};
      return handler(t);
    }
    // A change without an event has a record of its own, under the key's
    // lock so that the log's order for the key is the order decided.
    if (write_change) write_change(change);
    return true;
  }
  Steady::time_point steady_now() const { return options.steady_now ? options.steady_now() : Steady::now(); }
};

// Recovery runs before any other thread can see the tracker: no lock.
OutageTracker::OutageTracker(std::string integration, TrackerOptions options, Logger& log,
                             const std::vector<std::string>& recovered, ChangeWriter write_change)
    NO_THREAD_SAFETY_ANALYSIS : decider_(std::make_unique<Decider>(std::move(integration), std::move(options), log, std::move(write_change))) {
  Decider& s = *decider_;
  std::size_t malformed = 0;
  const auto apply = [&](std::string_view bytes) {
    Change c;
    if (!decode_change(bytes, &c)) {
      ++malformed;
      return;
    }
    if (c.integration != s.integration) return;
    // (The locks only for the analysis: no other thread sees it yet.)
    if (c.key == OutageKey{}) {  // the flood outage's
      s.flood.recover(std::move(c.set));
      return;
    }
    if (!c.set) {
      s.table.erase(c.key);
      // A close remembers its outage, as it did before the restart.
      if (c.closed_start) s.closed.remember(c.key, Decider::Closed{c.last_time, *c.closed_start}, c.closed_members);
      return;
    }
    const std::shared_ptr<TrackedKey> ks = s.table.find(c.key, true);
    MutexLock lock(ks->mutex);
    ks->outage = std::move(c.set);
    // A missing value's FAILURE leaves last_time behind its last_page, on
    // purpose; none at all is stored as 0.
    if (c.last_time != TimePoint{})
      ks->last_time = c.last_time;
    else
      ks->last_time.reset();
  };
  for (const std::string& bytes : recovered) {
    // A change that folds an outage is two records in one write: the
    // outage's and its flood outage's.
    std::size_t offset = 0;
    sf::Record rec{};
    while (offset < bytes.size()) {
      const std::size_t size = sf::parse_record(bytes, offset, &rec);
      if (size == 0) {
        apply(std::string_view(bytes).substr(offset));  // malformed
        break;
      }
      // The spool's table also holds the operator's silences (silence.h)
      // and FloodLimit's minute (below).
      if (rec.type != sf::RecordType::Silence && rec.type != sf::RecordType::FloodSent)
        apply(std::string_view(bytes).substr(offset, size));
      offset += size;
    }
    if (bytes.empty()) ++malformed;
  }
  s.flood.recover_budget(recovered, s.steady_now());
  std::size_t unheld = 0;
  for (const auto& ks : s.table.entries()) {
    Outage& o = *ks->outage;
    if (o.kind != s.options.group_by) ++s.other_grouping;
    if (o.folded && !s.flood.recover_held(ks->key.host)) {
      // Cannot happen but by damage to the spool: paged by nobody, so it
      // clears on its own.
      o.folded = false;
      ++unheld;
    }
  }
  const std::size_t flood_open = s.flood.recover_end(log);
  if (unheld > 0)
    log.warning("integration " + s.integration + ": " + std::to_string(unheld) +
                " folded outage(s) without their flood outage: each clears on its own");
  s.open_count = s.table.size() + flood_open;
  if (s.other_grouping > 0)
    log.info("integration " + s.integration + ": " + std::to_string(s.other_grouping.load()) +
             " open outage(s) of the other GroupBy keep their grouping until they clear");
  if (malformed > 0)
    log.warning("integration " + s.integration + ": " + std::to_string(malformed) +
                " malformed outage change(s) in the spool skipped");
  if (s.open_count > 0)
    log.info("integration " + s.integration + ": " + std::to_string(s.open_count.load()) + " open outage(s) restored");
}

OutageTracker::~OutageTracker() = default;

std::size_t OutageTracker::open_outages() const { return decider_->open_count.load(std::memory_order_relaxed); }

std::uint64_t OutageTracker::folded() const { return decider_->flood.folded(); }

std::uint64_t OutageTracker::silenced() const { return decider_->silenced_total.load(std::memory_order_relaxed); }

std::size_t OutageTracker::release(TimePoint now, TransitionHandler handler) {
  Decider& s = *decider_;
  std::size_t paged = 0;
  for (const auto& ks : s.table.entries()) {
    MutexLock lock(ks->mutex);
    if (ks->erased || !ks->outage || !ks->outage->held || ks->outage->folded || s.covered(*ks->outage, ks->key))
      continue;
    Notification n;
    if (ks->held_notification) {
      n = *ks->held_notification;
    } else {
      n.host = ks->key.host;
      n.plugin = ks->key.plugin;
      n.plugin_instance = ks->key.plugin_instance;
      n.type = ks->key.type;
      n.type_instance = ks->key.type_instance;
      n.message = "outage held back by a silence or maintenance window, still open";
    }
    n.severity = ks->outage->severity;
    n.time = now;
    Outage next = *ks->outage;
    next.sequence = released_sequence(next);
    next.held = false;
    next.paged = true;
    next.last_page = now;
    // A page sent now counts towards FloodLimit, and is never folded: the
    // lane paces it.
    MutexLock flood_lock(s.flood.mutex);
    const auto steady = s.steady_now();
    if (!s.emit(EventType::Outage, n, next, encode_change(s.integration, ks->key, &next, ks->last_time.value_or(TimePoint{})),
                handler))
      continue;  // tried again at the next release
    s.flood.decided(FloodRequest::Page, steady);
    ks->outage = std::move(next);
    ks->held_notification.reset();
    ++paged;
  }
  return paged;
}

void OutageTracker::for_each_open(FunctionRef<void(const OutageKey&, const Outage&)> visit) const {
  Decider& s = *decider_;
  for (const auto& ks : s.table.entries()) {
    std::optional<Outage> copy;
    {
      MutexLock lock(ks->mutex);
      if (ks->erased || !ks->outage) continue;
      copy = *ks->outage;
    }
    visit(ks->key, *copy);
  }
  std::optional<Outage> flood;
  {
    MutexLock lock(s.flood.mutex);
    flood = s.flood.outage();
  }
  if (flood) visit(OutageKey{}, *flood);
}

void OutageTracker::snapshot(FunctionRef<void(std::string_view)> write) const {
  Decider& s = *decider_;
  // The closed value lists remembered, first (a key that reopened since
  // has its OUTAGE_SET after its close, which it must win over); only the
  // kClosedKept closed last, so that a storm of closes does not make every
  // compaction of its minute rewrite them all (collectd-xmatters(5)
  // OUTAGES). Oldest first, as they closed.
  std::deque<std::pair<OutageKey, Decider::Closed>> closed = s.closed.last_closed(kClosedKept);
  for (const auto& [key, c] : closed) write(encode_change(s.integration, key, nullptr, c.last, c.start));
  closed.clear();
  s.closed.repack();  // a compaction follows a storm: its pages can go back to the system
  for (const auto& ks : s.table.entries()) {
    std::string record;
    {
      MutexLock lock(ks->mutex);
      if (ks->erased || !ks->outage) continue;
      record = encode_change(s.integration, ks->key, &*ks->outage, ks->last_time.value_or(TimePoint{}));
    }
    write(record);
  }
  std::string flood;
  {
    MutexLock lock(s.flood.mutex);
    if (s.flood.outage()) flood = encode_change(s.integration, OutageKey{}, &*s.flood.outage(), TimePoint{});
  }
  if (!flood.empty()) write(flood);
}

void OutageTracker::process(const Notification& n, TransitionHandler handler) {
  Decider& s = *decider_;
  // A notification that can open an outage makes a key where none is, and
  // so does an OKAY: it is remembered under the key's mutex (an older
  // FAILURE on another thread then finds it, and is stale).
  const bool makes_key = n.severity == Severity::Okay || n.severity >= s.options.min_severity;
  for (;;) {
    std::shared_ptr<TrackedKey> ks;
    if (s.other_grouping.load(std::memory_order_relaxed) > 0) {
      const OutageKind other = s.options.group_by == OutageKind::Host ? OutageKind::ValueList : OutageKind::Host;
      ks = s.table.find(table_key(n, other), false);
    }
    if (!ks) ks = s.table.find(table_key(n, s.options.group_by), makes_key);
    if (!ks) return;
    if (s.decide(*ks, n, handler)) return;
  }
}

bool OutageTracker::Decider::decide(TrackedKey& ks, const Notification& n, TransitionHandler handler) {
  MutexLock lock(ks.mutex);
  if (ks.erased) return false;
  try {
    const OutageKind kind = ks.outage ? ks.outage->kind : options.group_by;
    if (kind == OutageKind::Host)
      decide_host(ks, n, handler);
    else
      decide_value_list(ks, n, handler);
  } catch (...) {
    if (!ks.outage) table.forget(ks);  // made for this notification: nothing to keep
    throw;
  }
  return true;
}

bool OutageTracker::Decider::older(std::optional<TimePoint>& last, const Notification& n, const OutageKey& key) {
  if (!last || n.time >= *last) return false;
  // Overtaken by a newer one on another thread: ignored. Far older, the
  // clock went back (an NTP step, a VM's clock set after boot): ignoring
  // would silence the key until the clock catches up, so the bar resets.
  if (*last - n.time < kClockStep) return true;
  log.warning("notification for " + key.identifier() + " is " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(*last - n.time).count()) +
              " s older than the last one: taking it as a step back of the clock");
  last.reset();
  return false;
}

bool OutageTracker::Decider::commit(TrackedKey& ks, const Notification& n, std::optional<EventType> send, Outage after,
                                  bool closes, std::optional<TimePoint> last_time, TransitionHandler handler) {
  const bool opens = !ks.outage;
  // A silence or maintenance window holds pages back, never a clear of a
  // page that went out; an outage never paged closes without a clear.
  bool held_back = false;
  if (send == EventType::Outage && !after.folded && covered(after, ks.key)) {
    if (opens) after.paged = false;
    // A re-page of an outage paged before is not owed afterwards; an
    // escalation, or any page of one never paged, is.
    if (opens || !after.paged || after.severity > ks.outage->severity) after.held = true;
    // A page held back takes no place in its outage: event_ids count what
    // left, and the page released for it takes the next (the first page's
    // "-1" for one never paged). Deterministic, so an HA pair agrees.
    if (!opens) after.sequence = ks.outage->sequence;
    send.reset();
    held_back = true;
  } else if (send == EventType::Outage) {
    after.held = false;
    after.paged = true;
  } else if (send == EventType::Clear && !after.paged) {
    send.reset();
  } else if (!send && !closes && after.held && !after.folded && !covered(after, ks.key)) {
    // A member that nothing covers joined a host outage held back: it pages now.
    after.sequence = released_sequence(after);
    after.held = false;
    after.paged = true;
    after.last_page = n.time;
    send = EventType::Outage;
  }
  // A value list's or host's outage that closes is remembered
  // (outage_memory.h), in its record too, so that a restart remembers it
  // as well.
  std::optional<Closed> closing;
  if (closes && ks.outage && ks.outage->kind != OutageKind::Flood)
    closing = Closed{std::max(n.time, last_time.value_or(n.time)), ks.outage->start};
  const std::vector<Member>* closed_members = closing && ks.outage->kind == OutageKind::Host ? &after.members : nullptr;
  const auto record = [&] {
    if (closing) return encode_change(integration, ks.key, nullptr, closing->last, closing->start, closed_members);
    return encode_change(integration, ks.key, closes ? nullptr : &after, last_time.value_or(TimePoint{}));
  };
  // A folded outage recovered with FloodLimit since set to 0 still goes
  // through its flood outage, until it clears.
  if (!flood.limited() && !after.folded) {
    if (!emit(send, n, after, record(), handler)) return false;
  } else {
    MutexLock lock(flood.mutex);
    const Steady::time_point now = steady_now();
    // A covered outage never joins the flood outage nor counts towards it.
    if (opens && send && !flood.pages_on_its_own(now)) after.folded = true;
    if (after.folded) {
      // Its events become its flood outage's; the flood outage's change
      // rides in the same write as the folded outage's.
      FloodOutage::Fold fold = flood.plan(n, send, after, opens, closes, now);
      std::string change = record();
      change += fold.record;
      if (!emit(fold.send, n, *fold.outage, std::move(change), handler, fold.not_before)) return false;
      const int flood_opened = flood.apply(std::move(fold), now);
      if (flood_opened > 0) open_count.fetch_add(1, std::memory_order_relaxed);
      if (flood_opened < 0) open_count.fetch_sub(1, std::memory_order_relaxed);
    } else {
      if (!emit(send, n, after, record(), handler)) return false;
      if (send == EventType::Outage) flood.decided(FloodRequest::Page, now);
    }
  }
  if (opens) open_count.fetch_add(1, std::memory_order_relaxed);
  ks.last_time = last_time;
  if (held_back) {
    silenced_total.fetch_add(1, std::memory_order_relaxed);
    if (after.held) ks.held_notification = n;
  } else if (!closes && !after.held) {
    ks.held_notification.reset();
  }
  if (!closes) {
    ks.outage = std::move(after);
    return true;
  }
  open_count.fetch_sub(1, std::memory_order_relaxed);
  if (ks.outage->kind != options.group_by) other_grouping.fetch_sub(1, std::memory_order_relaxed);
  ks.outage.reset();
  // Remembered before the key leaves the table: a notification for it on
  // another thread then finds a new key, and this memory to judge it by.
  if (closing) closed.remember(ks.key, *closing, closed_members ? *closed_members : std::vector<Member>{});
  table.forget(ks);
  return true;
}

void OutageTracker::Decider::decide_value_list(TrackedKey& ks, const Notification& n, TransitionHandler handler) {
  if (older(ks.last_time, n, ks.key)) return;
  // collectd stamps a missing value's FAILURE with the time it noticed, the
  // OKAY of the value's return with that value's own, earlier time: the
  // FAILURE must not make that OKAY look older, or the outage never clears.
  const std::optional<TimePoint> last_time = n.is_missing_value() ? ks.last_time : n.time;
  const bool problem = n.severity != Severity::Okay;
  if (!ks.outage) {
    if (!problem) closed.remember_okay(ks.key, n.time);  // an older FAILURE after it is stale
    if (!problem || n.severity < options.min_severity) return table.forget(ks);
    if (closed.stale(ks.key, n.time)) return table.forget(ks);
    const TimePoint start = closed.start_after(ks.key, n.time);
    Outage next{outage_id_of(integration, OutageKind::ValueList, ks.key, start), n.severity, start, n.time, 1,
                OutageKind::ValueList, {}, false, 0, 0};
    if (!commit(ks, n, EventType::Outage, std::move(next), false, last_time, handler)) table.forget(ks);
    return;
  }
  if (!problem) {
    // A clear describes the outage as it was: its id, start and highest severity.
    const std::optional<EventType> send = options.send_clear ? std::optional(EventType::Clear) : std::nullopt;
    commit(ks, n, send, *ks.outage, true, last_time, handler);  // remembers it closed
    return;
  }
  const bool escalation = n.severity > ks.outage->severity;
  const bool renotify =
      options.renotify_interval.count() > 0 && n.time - ks.outage->last_page >= options.renotify_interval;
  if (!escalation && !renotify) {
    ks.last_time = last_time;  // changes nothing on disk
    return;
  }
  Outage next = *ks.outage;
  next.severity = std::max(n.severity, ks.outage->severity);
  next.last_page = n.time;
  next.sequence = ks.outage->sequence + 1;
  commit(ks, n, EventType::Outage, std::move(next), false, last_time, handler);
}

// A host outage (GroupBy host): its members join and leave without an
// event; it pages when it opens, escalates or re-pages, and clears when its
// last failing member recovers. Each member keeps its own last time.
void OutageTracker::Decider::decide_host(TrackedKey& ks, const Notification& n, TransitionHandler handler) {
  const OutageKey vl = OutageKey::of(n);
  const bool problem = n.severity != Severity::Okay;
  const bool can_join = problem && n.severity >= options.min_severity;
  // As for a value list: a missing value's FAILURE leaves its last time.
  const auto time_after = [&](const std::optional<TimePoint>& before) {
    return n.is_missing_value() ? before : std::optional<TimePoint>(n.time);
  };

  if (!ks.outage) {
    if (!problem) closed.remember_okay(vl, n.time);  // an older FAILURE after it is stale
    if (!can_join || closed.stale(vl, n.time)) return table.forget(ks);
    const TimePoint start = closed.start_after(ks.key, n.time);
    Outage next{outage_id_of(integration, OutageKind::Host, ks.key, start), n.severity, start, n.time, 1,
                OutageKind::Host, {}, false, 0, 0};
    put_member(next, n, true, time_after(std::nullopt));
    if (!commit(ks, n, EventType::Outage, std::move(next), false, std::nullopt, handler)) table.forget(ks);
    return;
  }

  Outage& open = *ks.outage;
  Member* const m = find_member(open, vl);
  if (m ? older(m->last_time, n, vl) : closed.stale(vl, n.time)) return;
  const bool joins = can_join && (!m || !m->failing);
  if (!m && !joins) {  // not one of its value lists
    if (!problem) closed.remember_okay(vl, n.time);
    return;
  }
  // The limit counts failing members: one that recovered gives its place
  // to a new failure (below), so that it never keeps one from being tracked.
  if (!m && failing_members(open) >= kMaxMembers) {
    if (!std::exchange(ks.warned_full, true))
      log.warning("host outage of " + ks.key.host + " has " + std::to_string(kMaxMembers) +
                  " failing value lists: " + vl.identifier() + " and any further one are not tracked");
    return;
  }
  const bool leaves = !problem && m && m->failing;
  const bool escalation = problem && (joins || m->failing) && n.severity > open.severity;
  const bool renotify = problem && (joins || m->failing) && options.renotify_interval.count() > 0 &&
                        n.time - open.last_page >= options.renotify_interval;
  if (!joins && !leaves && !escalation && !renotify) {
    m->last_time = time_after(m->last_time);  // changes nothing on disk
    return;
  }

  // The outage after this notification; committed once its record is written.
  Outage next = open;
  put_member(next, n, problem, time_after(m ? m->last_time : std::nullopt));

  if (leaves && failing_members(next) == 0) {
    // Its last failing member recovered: the clear lists every member it had.
    const std::optional<EventType> send = options.send_clear ? std::optional(EventType::Clear) : std::nullopt;
    commit(ks, n, send, std::move(next), true, std::nullopt, handler);
    return;
  }
  std::optional<EventType> send;
  if (escalation || renotify) {
    next.severity = std::max(n.severity, open.severity);
    next.last_page = n.time;
    next.sequence = open.sequence + 1;
    send = EventType::Outage;
  }
  // Without an event, a member joining or leaving is a change of its own.
  commit(ks, n, send, std::move(next), false, std::nullopt, handler);
}

}  // namespace xmatters
