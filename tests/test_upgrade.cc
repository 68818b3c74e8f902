// Upgrades: a SpoolDir written by an earlier release is read by this code
// without loss (doc/storage.md, "Changing the format"). The fixtures under
// tests/fixtures/ were written by the released plugin; their manifest.json
// says what they hold.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fake_collectd.h"
#include "outage/outage.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"
#include "standin.h"
#include "testing.h"

extern "C" void module_register(void);

namespace {

using xmatters::ConfigNode;
using xmatters::ConfigValue;
using xmtest::json_string_member;
namespace sf = xmatters::spool_format;

const std::string kFixtureV1 = TOP_SRCDIR "/tests/fixtures/spool-v1";
// Format 2, the last before format 3's SILENCE records (doc/storage.md).
const std::string kFixtureV2 = TOP_SRCDIR "/tests/fixtures/spool-v2";

// A copy of a fixture's segments in a fresh directory (mode 0700), as the
// plugin would find them after an upgrade.
struct FixtureCopy {
  xmtest::TempDir base;
  std::string dir = base / "spool";
  explicit FixtureCopy(const std::string& fixture) {
    ::mkdir(dir.c_str(), 0700);
    const int rc = std::system(("cp " + fixture + "/spool-*.log " + dir + "/").c_str());
    CU_ASSERT_EQUAL(rc, 0);
  }
};

xmtest::JsonPtr manifest(const std::string& fixture) {
  auto m = xmtest::parse_json(xmtest::read_file(fixture + "/manifest.json"));
  CU_ASSERT_FATAL(m != nullptr);
  return m;
}

const char* kind_name(xmatters::OutageKind k) {
  switch (k) {
    case xmatters::OutageKind::ValueList: return "value_list";
    case xmatters::OutageKind::Host: return "host";
    case xmatters::OutageKind::Flood: return "flood";
  }
  return "?";
}

xmatters::OutageKey key_of(const json_t* o) {
  return {json_string_member(o, "host"), json_string_member(o, "plugin"), json_string_member(o, "plugin_instance"),
          json_string_member(o, "type"), json_string_member(o, "type_instance")};
}

std::size_t count(const json_t* o, const char* member) {
  return static_cast<std::size_t>(json_integer_value(json_object_get(o, member)));
}

// The outage table as the spool's recovered changes rebuild it: the last
// change of each key wins.
std::map<std::string, xmatters::Change> table_of(const std::vector<std::string>& changes) {
  std::map<std::string, xmatters::Change> table;
  // A change may be two records written together (a fold).
  for (const std::string& c : changes)
    xmatters::spool_format::scan_records(c, [&](const auto&, std::uint64_t, std::string_view bytes) {
      xmatters::Change ch;
      CU_ASSERT(xmatters::decode_change(bytes, &ch));
      table[std::string(ch.integration) + " " + ch.key.identifier()] = ch;
    });
  for (auto it = table.begin(); it != table.end();) it = it->second.set ? std::next(it) : table.erase(it);
  return table;
}

// The outages the manifest lists are recovered exactly: ids, kinds,
// sequences, severities, members; and the queued events, in their order.
void check_recovery(const std::string& fixture) {
  FixtureCopy copy(fixture);
  const auto m = manifest(fixture);
  xmtest::CapturingLogger log;
  xmatters::Spool spool(copy.dir, log);
  const auto recovered = spool.take_recovered();
  const std::vector<std::string> changes = spool.take_recovered_changes();
  const auto table = table_of(changes);
  CU_ASSERT_EQUAL(log.count(xmatters::LogLevel::Warning), 0u);

  const json_t* outages = json_object_get(m.get(), "outages");
  CU_ASSERT_FATAL(json_array_size(outages) > 0);
  CU_ASSERT_EQUAL(table.size(), json_array_size(outages));
  for (std::size_t i = 0; i < json_array_size(outages); ++i) {
    const json_t* o = json_array_get(outages, i);
    const std::string k = json_string_member(o, "integration") + " " + key_of(o).identifier();
    const auto it = table.find(k);
    CU_ASSERT_FATAL(it != table.end());
    const xmatters::Outage& got = *it->second.set;
    CU_ASSERT_EQUAL(got.id, json_string_member(o, "outage_id"));
    CU_ASSERT_STRING_EQUAL(kind_name(got.kind), json_string_member(o, "kind").c_str());
    CU_ASSERT_EQUAL(got.sequence, count(o, "sequence"));
    CU_ASSERT_EQUAL(got.severity == xmatters::Severity::Failure ? "failure" : "warning",
                    json_string_member(o, "severity"));
    CU_ASSERT_EQUAL(got.folded, json_is_true(json_object_get(o, "folded")));
    // Before silences existed every open outage had been paged.
    CU_ASSERT(got.paged && !got.held);
    CU_ASSERT_EQUAL(got.outages, count(o, "outages"));
    CU_ASSERT_EQUAL(got.hosts, count(o, "hosts"));
    const json_t* members = json_object_get(o, "members");
    CU_ASSERT_FATAL(got.members.size() == json_array_size(members));
    for (std::size_t j = 0; j < got.members.size(); ++j) {
      const json_t* mj = json_array_get(members, j);
      CU_ASSERT(got.members[j].key == key_of(mj));
      CU_ASSERT_EQUAL(got.members[j].failing, json_is_true(json_object_get(mj, "failing")));
    }
  }

  // The outage whose clear was held in memory (a full disk) when the
  // fixture's plugin stopped is open: its clear comes with the next OKAY.
  bool held_open = false;
  for (const auto& [k, change] : table) held_open |= change.set->id == json_string_member(m.get(), "held_clear_outage_id");
  CU_ASSERT(held_open);

  const json_t* pending = json_object_get(m.get(), "pending");
  CU_ASSERT_FATAL(recovered.size() == json_array_size(pending));
  for (std::size_t i = 0; i < recovered.size(); ++i) {
    const json_t* e = json_array_get(pending, i);
    CU_ASSERT_EQUAL(recovered[i].event_id, json_string_member(e, "event_id"));
    CU_ASSERT_EQUAL(recovered[i].integration, json_string_member(e, "integration"));
    CU_ASSERT_EQUAL(recovered[i].outage_id, json_string_member(e, "outage_id"));
    CU_ASSERT_EQUAL(xmatters::event_type_name(recovered[i].type), json_string_member(e, "type"));
    CU_ASSERT(!recovered[i].body.empty());
  }
}

void test_v1_fixture_recovers_every_outage_and_event() { check_recovery(kFixtureV1); }
void test_v2_fixture_recovers_every_outage_and_event() { check_recovery(kFixtureV2); }

ConfigNode opt(const std::string& key, std::vector<ConfigValue> values, std::vector<ConfigNode> children = {}) {
  return ConfigNode{key, std::move(values), std::move(children)};
}

// The integrations the fixture was written with (README.md there), from
// the same SpoolDir. FloodLimit is larger than when it was written (and than
// its default, 4) so that the clears below do not wait a minute for the
// flood budget; RetryMaxAge
// is large so that the fixture's events are still young enough to send.
ConfigNode plugin_config(const std::string& spool_dir, const xmtest::Standin& standin) {
  const auto integration = [&](const std::string& name, std::vector<ConfigNode> extra) {
    std::vector<ConfigNode> children{opt("OutageURL", {ConfigValue::of(standin.url("outage-fn"))}),
                                     opt("ClearURL", {ConfigValue::of(standin.url("clear-fn"))}),
                                     opt("RetryMaxAge", {ConfigValue::of(1e9)}),
                                     opt("FloodLimit", {ConfigValue::of(100.0)})};
    for (auto& e : extra) children.push_back(std::move(e));
    return opt("Integration", {ConfigValue::of(name)}, std::move(children));
  };
  return opt("Plugin", {ConfigValue::of("xmatters")},
             {opt("SpoolDir", {ConfigValue::of(spool_dir)}), integration("values", {}),
              integration("hosts", {opt("GroupBy", {ConfigValue::of("host")})}),
              integration("flood", {})});
}

// Whether a segment of dir holds a record of format 1's types.
bool has_v1_records(const std::string& dir) {
  bool found = false;
  for (const auto& [seq, size] : xmatters::read_spool(dir).segments) {
    const std::string data = xmtest::read_file(dir + "/" + sf::segment_name(seq));
    sf::scan_records(data, [&](const sf::Record& rec, std::uint64_t, std::string_view) {
      found |= rec.type == sf::RecordType::EventV1 || rec.type == sf::RecordType::OutageSetV1 ||
               rec.type == sf::RecordType::OutageCloseV1;
    });
  }
  return found;
}

struct Sent {
  std::string event_id, outage_id, event_type;
};

std::vector<Sent> sent(const xmtest::Standin& standin) {
  std::vector<Sent> out;
  for (const auto& r : standin.requests()) {
    if (r.status < 200 || r.status > 299) continue;
    const auto body = xmtest::parse_json(r.body);
    if (!body) continue;
    out.push_back({json_string_member(body.get(), "event_id"), json_string_member(body.get(), "outage_id"),
                   json_string_member(body.get(), "event_type")});
  }
  return out;
}

void notify_okay(const xmatters::OutageKey& k, double at) {
  fake_collectd::Notif n(NOTIF_OKAY, k.host, k.plugin, k.type, "back to normal", DOUBLE_TO_CDTIME_T(at));
  n.plugin_instance(k.plugin_instance).type_instance(k.type_instance);
  CU_ASSERT_EQUAL(fake_collectd::call_notification(n.get()), 0);
}

// Through the plugin as collectd runs it: the queued events are delivered
// once each, a clear after its outage's events; every outage still open
// goes on under its id, its next event <outage_id>-<sequence + 1>.
void check_continuation(const std::string& fixture) {
  FixtureCopy copy(fixture);
  const auto m = manifest(fixture);
  xmtest::Standin standin;
  fake_collectd::reset();
  fake_collectd::set_global_option("BaseDir", copy.base.path());
  module_register();
  fake_collectd::OConfig ci(plugin_config(copy.dir, standin));
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_config(ci.item()), 0);
  CU_ASSERT_EQUAL_FATAL(fake_collectd::call_init(), 0);
  struct Shutdown {
    ~Shutdown() { fake_collectd::call_shutdown(); }
  } shutdown;

  const json_t* pending = json_object_get(m.get(), "pending");
  const std::size_t queued = json_array_size(pending);
  CU_ASSERT_FATAL(queued > 0);
  XM_REQUIRE(standin.wait_for_accepted(queued, std::chrono::seconds(30)));
  auto got = sent(standin);
  CU_ASSERT_EQUAL(got.size(), queued);
  std::map<std::string, std::size_t> place;  // event_id -> index sent
  for (std::size_t i = 0; i < got.size(); ++i) {
    CU_ASSERT_EQUAL(place.count(got[i].event_id), 0u);  // once each
    place[got[i].event_id] = i;
  }
  std::map<std::string, std::size_t> last_outage_event;  // outage_id -> index of its last outage event
  for (std::size_t i = 0; i < queued; ++i) {
    const json_t* e = json_array_get(pending, i);
    const auto it = place.find(json_string_member(e, "event_id"));
    CU_ASSERT_FATAL(it != place.end());
    CU_ASSERT_EQUAL(got[it->second].event_type, json_string_member(e, "type"));
    CU_ASSERT_EQUAL(got[it->second].outage_id, json_string_member(e, "outage_id"));
    if (json_string_member(e, "type") == "outage")
      last_outage_event[got[it->second].outage_id] =
          std::max(last_outage_event[got[it->second].outage_id], it->second);
  }
  for (const Sent& s : got)
    if (s.event_type == "clear" && last_outage_event.count(s.outage_id))
      CU_ASSERT(place[s.event_id] > last_outage_event[s.outage_id]);

  // Every open outage recovers; each not folded into the flood outage sends
  // its clear as the next event of its sequence.
  const json_t* outages = json_object_get(m.get(), "outages");
  std::set<std::string> expected;
  double at = static_cast<double>(std::time(nullptr)) + 3600;  // after everything the fixture saw
  for (std::size_t i = 0; i < json_array_size(outages); ++i) {
    const json_t* o = json_array_get(outages, i);
    const std::string kind = json_string_member(o, "kind");
    if (kind == "value_list") notify_okay(key_of(o), at += 1);
    if (kind == "host") {
      const json_t* members = json_object_get(o, "members");
      for (std::size_t j = 0; j < json_array_size(members); ++j)
        if (json_is_true(json_object_get(json_array_get(members, j), "failing")))
          notify_okay(key_of(json_array_get(members, j)), at += 1);
    }
    if (!json_is_true(json_object_get(o, "folded")))
      expected.insert(xmatters::event_id_of(json_string_member(o, "outage_id"),
                                            static_cast<std::uint32_t>(count(o, "sequence") + 1)));
  }
  XM_REQUIRE(standin.wait_for_accepted(queued + expected.size(), std::chrono::seconds(30)));
  got = sent(standin);
  std::set<std::string> clears;
  for (std::size_t i = queued; i < got.size(); ++i) {
    CU_ASSERT_EQUAL(got[i].event_type, "clear");
    CU_ASSERT(clears.insert(got[i].event_id).second);
  }
  CU_ASSERT(clears == expected);
  if (clears != expected) {
    for (const auto& c : clears) std::fprintf(stderr, "sent     %s\n", c.c_str());
    for (const auto& c : expected) std::fprintf(stderr, "expected %s\n", c.c_str());
  }

  // None is left open.
  CU_ASSERT_EQUAL(fake_collectd::call_read(), 0);
  std::size_t gauges = 0;
  for (const auto& v : fake_collectd::dispatched_values())
    if (v.type == "count" && v.type_instance == "open_outages") {
      ++gauges;
      CU_ASSERT_EQUAL(v.value, 0.0);
    }
  CU_ASSERT_EQUAL(gauges, 3u);

  // Once everything is delivered, compaction rewrites the log in the
  // current format: no record of format 1 is left.
  CU_ASSERT(xmtest::wait_until([&] { return !has_v1_records(copy.dir); }));
  CU_ASSERT_EQUAL(xmatters::read_spool(copy.dir).format_version, sf::kFormatVersion);
}

void test_v1_fixture_delivers_its_queue_once_and_continues_its_outages() { check_continuation(kFixtureV1); }
void test_v2_fixture_delivers_its_queue_once_and_continues_its_outages() { check_continuation(kFixtureV2); }

// --- a format newer than this code --------------------------------------------------

// Every entry of dir, with its bytes, size and mtime.
std::map<std::string, std::string> state_of(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    struct stat st {};
    CU_ASSERT_EQUAL(::stat(entry.path().c_str(), &st), 0);
    out[entry.path().filename().string()] = xmtest::read_file(entry.path().string()) + "|" +
                                            std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) +
                                            "." + std::to_string(st.st_mtim.tv_nsec);
  }
  return out;
}

// A segment as the next format would write it: its HEADER says so, and
// what follows may be records this code does not know.
std::string newer_segment() {
  sf::RecordBuilder header(sf::RecordType::Header, 0);
  sf::FieldWriter w(header);
  w.u32(1, sf::kFormatVersion + 1);
  std::string seg = std::move(header).finish();
  seg += sf::RecordBuilder(static_cast<sf::RecordType>(sf::kLastType + 1), 0).finish();
  return seg;
}

// collectd does not start: one ERROR, naming both versions, while the
// configuration is read; the SpoolDir (without a lock file, as a newer
// plugin could leave it) is left byte for byte as it was.
void test_newer_format_refused_and_left_untouched() {
  xmtest::TempDir base;
  const std::string dir = base / "spool";
  ::mkdir(dir.c_str(), 0700);
  FixtureCopy v1(kFixtureV1);  // an older segment beside it changes nothing
  std::filesystem::copy_file(v1.dir + "/spool-000001.log", dir + "/spool-000001.log");
  xmtest::write_file(dir + "/spool-000002.log", newer_segment());
  xmtest::write_file(dir + "/spool-000003.log.tmp", "a compaction of the newer plugin");
  const auto before = state_of(dir);

  xmtest::Standin standin;
  fake_collectd::reset();
  fake_collectd::set_global_option("BaseDir", base.path());
  module_register();
  fake_collectd::OConfig ci(plugin_config(dir, standin));
  CU_ASSERT_EQUAL(fake_collectd::call_config(ci.item()), -1);
  CU_ASSERT_EQUAL(fake_collectd::call_init(), -1);
  fake_collectd::call_shutdown();
  const std::string newer = std::to_string(sf::kFormatVersion + 1), known = std::to_string(sf::kFormatVersion);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR), 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "SpoolDir \"" + dir + "\""), 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "format version " + newer), 1u);
  CU_ASSERT_EQUAL(fake_collectd::count_log(LOG_ERR, "versions 1 to " + known), 1u);
  CU_ASSERT(state_of(dir) == before);

  // The same for a Spool opened on it, and the reader says why.
  xmtest::CapturingLogger log;
  bool refused = false;
  try {
    xmatters::Spool spool(dir, log);
  } catch (const xmatters::NewerSpoolFormat& e) {
    refused = e.found == sf::kFormatVersion + 1 && e.known == sf::kFormatVersion;
  }
  CU_ASSERT(refused);
  CU_ASSERT(state_of(dir) == before);
}

// --- tagged fields -------------------------------------------------------------------

// A field this code does not know (a later plugin's) is skipped; a field
// that is absent (an earlier plugin's record) takes its default.
void test_unknown_fields_skipped_absent_fields_default() {
  xmatters::Event e;
  e.event_id = "o-1";
  e.integration = "ops";
  e.outage_id = "o";
  e.type = xmatters::EventType::Clear;
  e.created = xmatters::TimePoint(std::chrono::seconds(1795000000));
  e.body = "{}";
  const std::string plain = sf::encode_event(e);
  sf::Record rec{};
  CU_ASSERT_FATAL(sf::parse_record(plain, 0, &rec) == plain.size());
  // The same payload with a field of tag 1000 in front and at the end.
  sf::RecordBuilder b(sf::RecordType::Event, 0);
  sf::FieldWriter w(b);
  w.bytes(1000, "from a later version");
  b.bytes(rec.payload);
  w.u32(1001, 7);
  const std::string extended = std::move(b).finish();
  xmatters::Event back;
  CU_ASSERT_FATAL(sf::parse_record(extended, 0, &rec) == extended.size() && sf::decode_event(rec, &back));
  CU_ASSERT(back.event_id == e.event_id && back.outage_id == e.outage_id && back.body == e.body &&
            back.type == e.type && back.created == e.created && back.change.empty());

  // An event without a body field: the default, empty.
  sf::RecordBuilder nb(sf::RecordType::Event, 0);
  sf::FieldWriter nw(nb);
  nw.bytes(1, "o-2");
  nw.u8(4, 1);
  const std::string bare = std::move(nb).finish();
  CU_ASSERT_FATAL(sf::parse_record(bare, 0, &rec) == bare.size() && sf::decode_event(rec, &back));
  CU_ASSERT(back.event_id == "o-2" && back.body.empty() && back.type == xmatters::EventType::Outage);
  // A known field of the wrong size is damage, not a default.
  sf::RecordBuilder wb(sf::RecordType::Event, 0);
  sf::FieldWriter ww(wb);
  ww.bytes(1, "o-3");
  ww.u32(4, 1);
  const std::string wrong = std::move(wb).finish();
  CU_ASSERT_FATAL(sf::parse_record(wrong, 0, &rec) == wrong.size());
  CU_ASSERT_FALSE(sf::decode_event(rec, &back));

  // An outage change with unknown fields, in the outage and in a member.
  xmatters::Outage o;
  o.id = "3f0c6a0e-0000-5000-8000-000000000001";
  o.severity = xmatters::Severity::Failure;
  o.sequence = 4;
  o.kind = xmatters::OutageKind::Host;
  o.members.push_back(xmatters::Member{xmatters::OutageKey{"db1", "df", "var", "percent_bytes", "used"}, true, {}, "v", "r"});
  const xmatters::OutageKey key{"db1", "", "", "", ""};
  const std::string change = xmatters::encode_change("ops", key, &o, xmatters::TimePoint{});
  CU_ASSERT_FATAL(sf::parse_record(change, 0, &rec) == change.size());
  // Rebuilt field by field, with an unknown field after each.
  sf::RecordBuilder cb(sf::RecordType::OutageSet, 0);
  sf::FieldWriter cw(cb);
  sf::FieldReader r(rec.payload);
  std::uint32_t tag = 0;
  std::string_view v;
  while (r.next(&tag, &v)) {
    if (tag == 20) {  // a member: unknown field inside too
      cw.message(20, [&](auto& mw) {
        mw.bytes(500, "later");
        sf::FieldReader mr(v);
        std::uint32_t mt = 0;
        std::string_view mv;
        while (mr.next(&mt, &mv)) mw.bytes(mt, mv);
      });
    } else {
      cw.bytes(tag, v);
    }
    cw.i64(900 + tag, 1);
  }
  const std::string extended_change = std::move(cb).finish();
  xmatters::Change got;
  CU_ASSERT_FATAL(xmatters::decode_change(extended_change, &got) && got.set);
  CU_ASSERT(got.key == key && got.integration == "ops" && got.set->id == o.id && got.set->sequence == 4);
  CU_ASSERT_FATAL(got.set->members.size() == 1u);
  CU_ASSERT(got.set->members[0].key == o.members[0].key && got.set->members[0].failing);
  CU_ASSERT_EQUAL(got.set->members[0].items, "v");
}

// Whether an outage was paged, or has a page held back by a silence or
// window, is two optional fields of OUTAGE_SET (tags 21, 22): kept exactly,
// and a record without them (an older plugin's) reads as paged, nothing held.
void test_held_and_unpaged_fields_absent_reads_paged() {
  xmatters::Outage o;
  o.id = "3f0c6a0e-0000-5000-8000-000000000002";
  o.severity = xmatters::Severity::Warning;
  o.sequence = 1;
  o.start = xmatters::TimePoint(std::chrono::seconds(1795000000));
  const xmatters::OutageKey key{"web1", "cpu", "0", "percent", "user"};
  for (const auto& [held, paged] : {std::pair{true, false}, std::pair{true, true}, std::pair{false, true}}) {
    o.held = held;
    o.paged = paged;
    const std::string change = xmatters::encode_change("ops", key, &o, xmatters::TimePoint{});
    xmatters::Change got;
    CU_ASSERT_FATAL(xmatters::decode_change(change, &got) && got.set);
    CU_ASSERT_EQUAL(got.set->held, held);
    CU_ASSERT_EQUAL(got.set->paged, paged);
    // The same record without tags 21 and 22, as a plugin before them wrote it.
    sf::Record rec{};
    CU_ASSERT_FATAL(sf::parse_record(change, 0, &rec) == change.size());
    sf::RecordBuilder b(sf::RecordType::OutageSet, 0);
    sf::FieldWriter w(b);
    sf::FieldReader r(rec.payload);
    std::uint32_t tag = 0;
    std::string_view v;
    bool had = false;
    while (r.next(&tag, &v)) {
      if (tag == 21 || tag == 22) {
        had = true;
        continue;
      }
      w.bytes(tag, v);
    }
    CU_ASSERT_EQUAL(had, held || !paged);  // written only when not the default
    const std::string older = std::move(b).finish();
    xmatters::Change old;
    CU_ASSERT_FATAL(xmatters::decode_change(older, &old) && old.set);
    CU_ASSERT(old.set->paged && !old.set->held && old.set->id == o.id);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(
      argc, argv,
      {{"upgrade",
        {{"v1_fixture_recovers_every_outage_and_event", xmtest::guarded<test_v1_fixture_recovers_every_outage_and_event>},
         {"v1_fixture_delivers_its_queue_once_and_continues_its_outages",
          xmtest::guarded<test_v1_fixture_delivers_its_queue_once_and_continues_its_outages>},
         {"v2_fixture_recovers_every_outage_and_event", xmtest::guarded<test_v2_fixture_recovers_every_outage_and_event>},
         {"v2_fixture_delivers_its_queue_once_and_continues_its_outages",
          xmtest::guarded<test_v2_fixture_delivers_its_queue_once_and_continues_its_outages>},
         {"newer_format_refused_and_left_untouched", xmtest::guarded<test_newer_format_refused_and_left_untouched>},
         {"unknown_fields_skipped_absent_fields_default",
          xmtest::guarded<test_unknown_fields_skipped_absent_fields_default>},
         {"held_and_unpaged_fields_absent_reads_paged", xmtest::guarded<test_held_and_unpaged_fields_absent_reads_paged>}}}});
}
