#include "outage/outage.h"

#include <chrono>
#include <utility>

#include "store/spool_format.h"
#include "util/uuid.h"  // name_uuid

namespace xmatters {

namespace sf = spool_format;

OutageKey OutageKey::of(const Notification& n) {
  return OutageKey{n.host, n.plugin, n.plugin_instance, n.type, n.type_instance};
}

std::string OutageKey::identifier() const {
  std::string s = host + "/" + plugin;
  if (!plugin_instance.empty()) s += "-" + plugin_instance;
  if (!type.empty()) s += "/" + type;
  if (!type_instance.empty()) s += "-" + type_instance;
  return s;
}

bool OutageKey::operator==(const OutageKey& o) const {
  return host == o.host && plugin == o.plugin && plugin_instance == o.plugin_instance && type == o.type &&
         type_instance == o.type_instance;
}

namespace {
void put_field(std::string& name, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) name += static_cast<char>((n >> (8 * i)) & 0xff);
  name += s;
}
}  // namespace

std::string outage_id_of(std::string_view integration, OutageKind kind, const OutageKey& key, TimePoint start) {
  std::string name;
  name.reserve(64 + integration.size() + key.host.size() + key.plugin.size() + key.plugin_instance.size() +
               key.type.size() + key.type_instance.size());
  // The kind is part of the name: a value list's, a host's and a flood's
  // outage never share an id.
  name += kind == OutageKind::Host ? 'h' : kind == OutageKind::Flood ? 'f' : 'v';
  put_field(name, integration);
  for (const std::string* s : {&key.host, &key.plugin, &key.plugin_instance, &key.type, &key.type_instance})
    put_field(name, *s);
  const auto ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count());
  for (int i = 0; i < 8; ++i) name += static_cast<char>((ns >> (8 * i)) & 0xff);
  return name_uuid(name);
}

std::string event_id_of(const std::string& outage_id, std::uint32_t sequence) {
  return outage_id + "-" + std::to_string(sequence);
}

namespace {

std::int64_t to_ns(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

TimePoint from_ns(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

bool valid_outage_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

// The severity byte of an OUTAGE_SET: numbers of the file format, not of the
// Severity enum, so that reordering the enum cannot change what a file means.
constexpr std::uint8_t kRecordWarning = 1;
constexpr std::uint8_t kRecordFailure = 2;

// The tags of OUTAGE_SET / OUTAGE_CLOSE (doc/storage.md, Records). Never
// renumbered; a new field takes a new tag, and its absence in older records
// must mean what the code did before it.
enum ChangeTag : std::uint32_t {
  kIntegration = 1,
  kKey = 2,  // 2 to 6: host, plugin, plugin_instance, type, type_instance
  // OUTAGE_SET only:
  kLastPage = 10,  // i64 ns
  kLastTime = 11,  // i64 ns: the key's last notification
  kSeverity = 12,  // u8 kRecordWarning / kRecordFailure
  kStart = 13,     // i64 ns
  kOutageId = 14,
  kSequence = 15,  // u32: of the outage's last event, 1 for its first page
  kKind = 16,      // u8 OutageKind
  kFolded = 17,    // u8 1: held by the flood outage (absent: 0)
  kOutages = 18,   // u32, a flood outage's (absent: 0)
  kHosts = 19,     // u32, a flood outage's (absent: 0)
  kMember = 20,    // a message of MemberTag fields, one per member, in order
  // Silences and maintenance windows (collectd-xmatters(5) MAINTENANCE):
  kHeld = 21,      // u8 1: a page was held back, owed once nothing covers it (absent: 0)
  kUnpaged = 22,   // u8 1: no outage event of it was sent, so no clear is (absent: 0, paged)
};
enum MemberTag : std::uint32_t {
  kMemberKey = 1,       // 1 to 5: host, plugin, plugin_instance, type, type_instance
  kMemberLastTime = 6,  // i64 ns (absent: none)
  kMemberFailing = 7,   // u8 1 (absent: 0, recovered)
  kMemberItems = 8,
  kMemberReasons = 9,
};

template <typename W>
void put_key(W& w, std::uint32_t first_tag, const OutageKey& key) {
  w.bytes(first_tag, key.host);
  w.bytes(first_tag + 1, key.plugin);
  w.bytes(first_tag + 2, key.plugin_instance);
  w.bytes(first_tag + 3, key.type);
  w.bytes(first_tag + 4, key.type_instance);
}

// Sets the key field of tag (first_tag .. first_tag + 4); false when tag is
// not one of them.
bool take_key_field(OutageKey& key, std::uint32_t first_tag, std::uint32_t tag, std::string_view v) {
  std::string* fields[] = {&key.host, &key.plugin, &key.plugin_instance, &key.type, &key.type_instance};
  if (tag < first_tag || tag >= first_tag + 5) return false;
  fields[tag - first_tag]->assign(v);
  return true;
}

// An OUTAGE_SET's fields as read, before they are checked.
struct RawSet {
  std::int64_t last_page = 0, last_time = 0, start = 0;
  bool has_start = false, has_last_time = false;
  std::uint8_t severity = 0, kind = 0, folded = 0, held = 0, unpaged = 0;
  std::string_view id;
  std::uint32_t sequence = 0, outages = 0, hosts = 0;
  std::vector<Member> members;
};

// What the tracker never writes is refused, whichever format it came in.
bool make_set(const OutageKey& key, RawSet&& raw, Outage* out) {
  const auto k = static_cast<OutageKind>(raw.kind);
  if (!valid_outage_id(raw.id) || (raw.severity != kRecordWarning && raw.severity != kRecordFailure) ||
      raw.sequence == 0 || (k != OutageKind::ValueList && k != OutageKind::Host && k != OutageKind::Flood) ||
      raw.folded > 1 || (k == OutageKind::Flood) != (key == OutageKey{}) || (k == OutageKind::Flood && raw.folded == 1) ||
      raw.held > 1 || raw.unpaged > 1)
    return false;
  const std::size_t max = k == OutageKind::Host ? kMaxMembers : k == OutageKind::Flood ? kFloodListed : 0;
  if (k == OutageKind::ValueList ? !raw.members.empty() : raw.members.empty() || raw.members.size() > max)
    return false;
  out->id.assign(raw.id);
  out->severity = raw.severity == kRecordFailure ? Severity::Failure : Severity::Warning;
  out->start = from_ns(raw.start);
  out->last_page = from_ns(raw.last_page);
  out->sequence = raw.sequence;
  out->kind = k;
  out->folded = raw.folded == 1;
  out->held = raw.held == 1;
  out->paged = raw.unpaged == 0;
  out->outages = raw.outages;
  out->hosts = raw.hosts;
  out->members = std::move(raw.members);
  return true;
}

// --- format 1 (read only): positional payloads ------------------------------------

bool read_key(sf::PayloadReader& r, OutageKey* key) {
  std::string_view host, plugin, plugin_instance, type, type_instance;
  if (!r.field(&host) || !r.field(&plugin) || !r.field(&plugin_instance) || !r.field(&type) ||
      !r.field(&type_instance))
    return false;
  *key = OutageKey{std::string(host), std::string(plugin), std::string(plugin_instance), std::string(type),
                   std::string(type_instance)};
  return true;
}

bool read_members(sf::PayloadReader& r, std::size_t max, std::vector<Member>* members) {
  std::uint32_t count = 0;
  if (!r.u32(&count) || count == 0 || count > max) return false;
  members->reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    Member m;
    std::int64_t last_time = 0;
    std::uint8_t failing = 0;
    std::string_view items, reasons;
    if (!read_key(r, &m.key) || !r.i64(&last_time) || !r.u8(&failing) || failing > 1 || !r.field(&items) ||
        !r.field(&reasons))
      return false;
    if (last_time != 0) m.last_time = from_ns(last_time);
    m.failing = failing == 1;
    m.items.assign(items);
    m.reasons.assign(reasons);
    members->push_back(std::move(m));
  }
  return true;
}

// integration, the five key fields; OUTAGE_SET: i64 last_page, i64
// last_time, u8 severity, i64 start, outage_id, u32 sequence, u8 kind, u8
// folded, for a flood u32 outages and u32 hosts, for a host or flood u32
// member count and per member the five key fields, i64 last_time, u8
// failing, items, reasons.
bool decode_change_v1(const sf::Record& rec, Change* out) {
  sf::PayloadReader r(rec.payload);
  std::string_view integration;
  OutageKey key;
  if (!r.field(&integration) || !read_key(r, &key)) return false;
  std::optional<Outage> set;
  TimePoint set_last_time{};
  RawSet raw;
  if (rec.type == sf::RecordType::OutageSetV1) {
    if (!r.i64(&raw.last_page) || !r.i64(&raw.last_time) || !r.u8(&raw.severity) || !r.i64(&raw.start) ||
        !r.field(&raw.id) || !r.u32(&raw.sequence) || !r.u8(&raw.kind) || !r.u8(&raw.folded))
      return false;
    const auto k = static_cast<OutageKind>(raw.kind);
    if (k == OutageKind::Flood && (!r.u32(&raw.outages) || !r.u32(&raw.hosts))) return false;
    if ((k == OutageKind::Host || k == OutageKind::Flood) &&
        !read_members(r, k == OutageKind::Host ? kMaxMembers : kFloodListed, &raw.members))
      return false;
    set.emplace();
    const std::int64_t last_time = raw.last_time;
    if (!make_set(key, std::move(raw), &*set)) return false;
    set_last_time = from_ns(last_time);
  }
  if (!r.done()) return false;
  out->integration = integration;
  out->key = std::move(key);
  out->set = std::move(set);
  out->last_time = set_last_time;
  out->closed_start.reset();
  out->closed_members.clear();
  return true;
}

// --- format 2: tagged fields ---------------------------------------------------------

bool read_member(std::string_view bytes, Member* m) {
  sf::FieldReader r(bytes);
  std::uint32_t tag = 0;
  std::string_view v;
  std::int64_t last_time = 0;
  std::uint8_t failing = 0;
  bool good = true;
  while (r.next(&tag, &v)) {
    if (take_key_field(m->key, kMemberKey, tag, v)) continue;
    switch (tag) {
      case kMemberLastTime: good &= sf::field_i64(v, &last_time); break;
      case kMemberFailing: good &= sf::field_u8(v, &failing) && failing <= 1; break;
      case kMemberItems: m->items.assign(v); break;
      case kMemberReasons: m->reasons.assign(v); break;
      default: break;  // a newer plugin's field
    }
  }
  if (!r.ok() || !good) return false;
  if (last_time != 0) m->last_time = from_ns(last_time);
  m->failing = failing == 1;
  return true;
}

bool decode_change_v2(const sf::Record& rec, Change* out) {
  sf::FieldReader r(rec.payload);
  std::string_view integration;
  OutageKey key;
  RawSet raw;
  bool good = true;
  std::uint32_t tag = 0;
  std::string_view v;
  while (r.next(&tag, &v)) {
    if (take_key_field(key, kKey, tag, v)) continue;
    switch (tag) {
      case kIntegration: integration = v; break;
      case kLastPage: good &= sf::field_i64(v, &raw.last_page); break;
      case kLastTime: good &= raw.has_last_time = sf::field_i64(v, &raw.last_time); break;
      case kSeverity: good &= sf::field_u8(v, &raw.severity); break;
      case kStart: good &= raw.has_start = sf::field_i64(v, &raw.start); break;
      case kOutageId: raw.id = v; break;
      case kSequence: good &= sf::field_u32(v, &raw.sequence); break;
      case kKind: good &= sf::field_u8(v, &raw.kind); break;
      case kFolded: good &= sf::field_u8(v, &raw.folded); break;
      case kOutages: good &= sf::field_u32(v, &raw.outages); break;
      case kHosts: good &= sf::field_u32(v, &raw.hosts); break;
      case kHeld: good &= sf::field_u8(v, &raw.held); break;
      case kUnpaged: good &= sf::field_u8(v, &raw.unpaged); break;
      case kMember:
        if (raw.members.size() >= kMaxMembers) return false;
        raw.members.emplace_back();
        good &= read_member(v, &raw.members.back());
        break;
      default: break;  // a newer plugin's field
    }
  }
  if (!r.ok() || !good) return false;
  std::optional<Outage> set;
  TimePoint set_last_time{};
  if (rec.type == sf::RecordType::OutageSet) {
    set.emplace();
    const std::int64_t last_time = raw.last_time;
    if (!make_set(key, std::move(raw), &*set)) return false;
    set_last_time = from_ns(last_time);
  }
  std::optional<TimePoint> closed_start;
  std::vector<Member> closed_members;
  if (rec.type == sf::RecordType::OutageClose && raw.has_start && raw.has_last_time) {
    closed_start = from_ns(raw.start);
    set_last_time = from_ns(raw.last_time);
    for (Member& m : raw.members)
      if (m.last_time) closed_members.push_back(Member{std::move(m.key), false, m.last_time, {}, {}});
  }
  out->integration = integration;
  out->key = std::move(key);
  out->set = std::move(set);
  out->last_time = set_last_time;
  out->closed_start = closed_start;
  out->closed_members = std::move(closed_members);
  return true;
}

}  // namespace

std::string encode_change(const std::string& integration, const OutageKey& key, const Outage* outage,
                          TimePoint last_time, std::optional<TimePoint> closed_start,
                          const std::vector<Member>* closed_members) {
  return sf::encode_tagged(outage ? sf::RecordType::OutageSet : sf::RecordType::OutageClose, [&](auto& w) {
    w.bytes(kIntegration, integration);
    put_key(w, kKey, key);
    if (!outage) {
      if (closed_start) {  // since format 3; an older plugin skips them
        w.i64(kLastTime, to_ns(last_time));
        w.i64(kStart, to_ns(*closed_start));
        if (closed_members)
          for (const Member& m : *closed_members)
            if (m.last_time)
              w.message(kMember, [&](auto& mw) {
                put_key(mw, kMemberKey, m.key);
                mw.i64(kMemberLastTime, to_ns(*m.last_time));
              });
      }
      return;
    }
    w.i64(kLastPage, to_ns(outage->last_page));
    w.i64(kLastTime, to_ns(last_time));
    w.u8(kSeverity, outage->severity == Severity::Failure ? kRecordFailure : kRecordWarning);
    w.i64(kStart, to_ns(outage->start));
    w.bytes(kOutageId, outage->id);
    w.u32(kSequence, outage->sequence);
    w.u8(kKind, static_cast<std::uint8_t>(outage->kind));
    if (outage->folded) w.u8(kFolded, 1);
    if (outage->held) w.u8(kHeld, 1);
    if (!outage->paged) w.u8(kUnpaged, 1);
    if (outage->kind == OutageKind::Flood) {
      w.u32(kOutages, outage->outages);
      w.u32(kHosts, outage->hosts);
    }
    if (outage->kind == OutageKind::ValueList) return;
    for (const Member& m : outage->members)
      w.message(kMember, [&](auto& mw) {
        put_key(mw, kMemberKey, m.key);
        if (m.last_time) mw.i64(kMemberLastTime, to_ns(*m.last_time));
        if (m.failing) mw.u8(kMemberFailing, 1);
        mw.bytes(kMemberItems, m.items);
        mw.bytes(kMemberReasons, m.reasons);
      });
  });
}

bool decode_change(std::string_view bytes, Change* out) {
  sf::Record rec{};
  if (bytes.empty() || sf::parse_record(bytes, 0, &rec) != bytes.size()) return false;
  switch (rec.type) {
    case sf::RecordType::OutageSet:
    case sf::RecordType::OutageClose: return decode_change_v2(rec, out);
    case sf::RecordType::OutageSetV1:
    case sf::RecordType::OutageCloseV1: return decode_change_v1(rec, out);
    default: return false;
  }
}

}  // namespace xmatters
