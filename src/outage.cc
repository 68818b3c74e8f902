#include "outage.h"

#include <chrono>
#include <utility>

#include "spool_format.h"
#include "uuid.h"  // name_uuid

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

std::size_t member_size(const Member& m) {
  return 5 * 4 + m.key.host.size() + m.key.plugin.size() + m.key.plugin_instance.size() + m.key.type.size() +
         m.key.type_instance.size() + 8 + 1 + 4 + m.items.size() + 4 + m.reasons.size();
}

void put_key(sf::RecordBuilder& b, const OutageKey& key) {
  b.field(key.host);
  b.field(key.plugin);
  b.field(key.plugin_instance);
  b.field(key.type);
  b.field(key.type_instance);
}

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

}  // namespace

std::string encode_change(const std::string& integration, const OutageKey& key, const Outage* outage,
                          TimePoint last_time) {
  std::size_t size = 6 * 4 + integration.size() + key.host.size() + key.plugin.size() + key.plugin_instance.size() +
                     key.type.size() + key.type_instance.size();
  if (outage) {
    size += 8 + 8 + 1 + 8 + 4 + outage->id.size() + 4 + 1 + 1;
    if (outage->kind == OutageKind::Flood) size += 4 + 4;
    if (outage->kind != OutageKind::ValueList) {
      size += 4;
      for (const Member& m : outage->members) size += member_size(m);
    }
  }
  sf::RecordBuilder b(outage ? sf::RecordType::OutageSet : sf::RecordType::OutageClose, size);
  b.field(integration);
  put_key(b, key);
  if (outage) {
    b.i64(to_ns(outage->last_page));
    b.i64(to_ns(last_time));
    b.u8(outage->severity == Severity::Failure ? kRecordFailure : kRecordWarning);
    b.i64(to_ns(outage->start));
    b.field(outage->id);
    b.u32(outage->sequence);
    b.u8(static_cast<std::uint8_t>(outage->kind));
    b.u8(outage->folded ? 1 : 0);
    if (outage->kind == OutageKind::Flood) {
      b.u32(outage->outages);
      b.u32(outage->hosts);
    }
    if (outage->kind != OutageKind::ValueList) {
      b.u32(static_cast<std::uint32_t>(outage->members.size()));
      for (const Member& m : outage->members) {
        put_key(b, m.key);
        b.i64(m.last_time ? to_ns(*m.last_time) : 0);
        b.u8(m.failing ? 1 : 0);
        b.field(m.items);
        b.field(m.reasons);
      }
    }
  }
  return std::move(b).finish();
}

bool decode_change(std::string_view bytes, Change* out) {
  sf::Record rec{};
  if (bytes.empty() || sf::parse_record(bytes, 0, &rec) != bytes.size()) return false;
  if (rec.type != sf::RecordType::OutageSet && rec.type != sf::RecordType::OutageClose) return false;
  sf::PayloadReader r(rec.payload);
  std::string_view integration;
  OutageKey key;
  if (!r.field(&integration) || !read_key(r, &key)) return false;
  std::optional<Outage> set;
  TimePoint set_last_time{};
  if (rec.type == sf::RecordType::OutageSet) {
    std::int64_t last_page = 0, last_time = 0, start = 0;
    std::uint8_t severity = 0, kind = 0, folded = 0;
    std::uint32_t sequence = 0;
    std::string_view id;
    if (!r.i64(&last_page) || !r.i64(&last_time) || !r.u8(&severity) || !r.i64(&start) || !r.field(&id) ||
        !r.u32(&sequence) || !r.u8(&kind) || !r.u8(&folded))
      return false;
    const auto k = static_cast<OutageKind>(kind);
    if (!valid_outage_id(id) || (severity != kRecordWarning && severity != kRecordFailure) || sequence == 0 ||
        (k != OutageKind::ValueList && k != OutageKind::Host && k != OutageKind::Flood) || folded > 1 ||
        (k == OutageKind::Flood) != (key == OutageKey{}) || (k == OutageKind::Flood && folded == 1))
      return false;
    set.emplace();
    set->id.assign(id);
    set->severity = severity == kRecordFailure ? Severity::Failure : Severity::Warning;
    set->start = from_ns(start);
    set->last_page = from_ns(last_page);
    set->sequence = sequence;
    set_last_time = from_ns(last_time);
    set->kind = k;
    set->folded = folded == 1;
    if (k == OutageKind::Flood && (!r.u32(&set->outages) || !r.u32(&set->hosts))) return false;
    if (k != OutageKind::ValueList &&
        !read_members(r, k == OutageKind::Host ? kMaxMembers : kFloodListed, &set->members))
      return false;
  }
  if (!r.done()) return false;
  out->integration = integration;
  out->key = std::move(key);
  out->set = std::move(set);
  out->last_time = set_last_time;
  return true;
}

}  // namespace xmatters

