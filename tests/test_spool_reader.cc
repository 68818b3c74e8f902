// The read-only reader of a SpoolDir (spool_replay.h): what the operator
// command lists. It reads through the parser recovery uses, so it agrees
// with a Spool opening the directory, and it changes nothing, not even
// beside a running plugin.
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "outage/outage.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"
#include "testing.h"

namespace {

using xmatters::Event;
using xmatters::EventType;

// Appends as the store does (src/core/store/store.cc): a clear may use the reserve, an
// outage event must leave it its need.
void append(xmatters::Spool& spool, const xmatters::Event& event) {
  spool.append(event, event.type == xmatters::EventType::Clear ? xmatters::Spool::Room::Reserve
                                                                : xmatters::Spool::Room::Free);
}

namespace fs = std::filesystem;

Event make_event(int i) {
  Event e;
  e.event_id = "ev-" + std::to_string(i);
  e.integration = i % 2 == 0 ? "ops" : "dba";
  e.outage_id = "outage-" + std::to_string(i / 3);
  e.type = i % 3 == 2 ? EventType::Clear : EventType::Outage;
  e.created = xmatters::TimePoint(std::chrono::seconds(1795000000 + i));
  e.body = "{\"event_id\":\"" + e.event_id + "\",\"n\":" + std::to_string(i) + "}";
  e.change = i % 4 == 3 ? std::string() : "change of ev-" + std::to_string(i);
  return e;
}

// Every entry of dir: name -> size, mtime (ns), inode.
struct FileState {
  std::uintmax_t size;
  std::int64_t mtime_ns;
  ino_t inode;
  bool operator==(const FileState& o) const { return size == o.size && mtime_ns == o.mtime_ns && inode == o.inode; }
};
std::map<std::string, FileState> state_of(const std::string& dir) {
  std::map<std::string, FileState> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    struct stat st {};
    CU_ASSERT_EQUAL(::stat(entry.path().c_str(), &st), 0);
    out[entry.path().filename().string()] =
        FileState{static_cast<std::uintmax_t>(st.st_size),
                  static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, st.st_ino};
  }
  return out;
}

void copy_dir(const std::string& from, const std::string& to) {
  fs::create_directory(to);
  for (const auto& entry : fs::directory_iterator(from))
    if (entry.path().filename() != "lock") fs::copy_file(entry.path(), to + "/" + entry.path().filename().string());
}

// A log with acknowledged events, changes of their own, a compaction and
// records after it.
void fill(xmatters::Spool& spool) {
  for (int i = 0; i < 12; ++i) append(spool, make_event(i));
  for (int i = 0; i < 9; ++i) spool.acknowledge("ev-" + std::to_string(i));
  spool.append_change(xmatters::encode_change("ops", xmatters::OutageKey{"db1", "cpu", "", "percent", ""}, nullptr,
                                              xmatters::TimePoint{}));
  spool.maintain();  // compacts: most of it is dropped
  for (int i = 12; i < 18; ++i) append(spool, make_event(i));
  spool.acknowledge("ev-13");
  spool.append_change(xmatters::encode_change("ops", xmatters::OutageKey{"db2", "cpu", "", "percent", ""}, nullptr,
                                              xmatters::TimePoint{}));
}

void test_reading_a_live_spool_changes_nothing_and_agrees_with_recovery() {
  xmtest::TempDir t;
  xmtest::CapturingLogger log;
  const std::string dir = t / "spool";
  xmatters::SpoolOptions options;
  options.compaction_interval = std::chrono::milliseconds(0);
  options.reserve_bytes = 4096;
  xmatters::Spool live(dir, log, nullptr, options);
  fill(live);
  // A compaction's leftover, which recovery (not a reader) removes.
  xmtest::write_file(dir + "/" + xmatters::spool_format::temporary_name(99), "half a compaction");

  const auto before = state_of(dir);
  const xmatters::SpoolContents read = xmatters::read_spool(dir, true);
  const xmatters::SpoolContents without_bodies = xmatters::read_spool(dir);
  CU_ASSERT(state_of(dir) == before);  // sizes, mtimes, inodes, and no new file

  CU_ASSERT_EQUAL(read.format_version, xmatters::spool_format::kFormatVersion);
  CU_ASSERT(read.damage.empty());
  CU_ASSERT_EQUAL(read.temporaries.size(), 1u);
  CU_ASSERT(xmtest::file_exists(dir + "/" + xmatters::spool_format::temporary_name(99)));
  CU_ASSERT(read.segments.size() >= 2);

  // The same as a Spool opening (a copy of) it.
  copy_dir(dir, t / "copy");
  xmatters::Spool reopened(t / "copy", log);
  const std::vector<Event> recovered = reopened.take_recovered();
  CU_ASSERT_EQUAL(recovered.size(), live.pending());
  CU_ASSERT_FATAL(read.pending.size() == recovered.size());
  CU_ASSERT_FATAL(without_bodies.pending.size() == recovered.size());
  for (std::size_t i = 0; i < recovered.size(); ++i) {
    const Event& a = read.pending[i].event;
    CU_ASSERT_EQUAL(a.event_id, recovered[i].event_id);
    CU_ASSERT_EQUAL(a.integration, recovered[i].integration);
    CU_ASSERT_EQUAL(a.outage_id, recovered[i].outage_id);
    CU_ASSERT(a.type == recovered[i].type);
    CU_ASSERT(a.created == recovered[i].created);
    CU_ASSERT_EQUAL(a.body, recovered[i].body);
    CU_ASSERT_EQUAL(without_bodies.pending[i].event.event_id, recovered[i].event_id);
    CU_ASSERT(without_bodies.pending[i].event.body.empty());
  }
  CU_ASSERT(read.changes == reopened.take_recovered_changes());
  CU_ASSERT_FALSE(read.changes.empty());
}

void test_damage_is_reported_not_repaired() {
  xmtest::TempDir t;
  xmtest::CapturingLogger log;
  const std::string dir = t / "spool";
  {
    xmatters::Spool spool(dir, log);
    for (int i = 0; i < 4; ++i) append(spool, make_event(i));
  }
  const std::string first = dir + "/" + xmatters::spool_format::segment_name(1);
  std::string bytes = xmtest::read_file(first);
  bytes += "torn";
  xmtest::write_file(first, bytes);
  const auto before = state_of(dir);
  const xmatters::SpoolContents read = xmatters::read_spool(dir);
  CU_ASSERT(state_of(dir) == before);
  CU_ASSERT_EQUAL(read.pending.size(), 4u);
  CU_ASSERT_FATAL(read.damage.size() == 1u);
  CU_ASSERT_EQUAL(read.damage[0].file, xmatters::spool_format::segment_name(1));
  CU_ASSERT_EQUAL(read.damage[0].bytes, 4u);
  CU_ASSERT(read.damage[0].torn_tail);
}

void test_missing_directory_is_an_error_and_not_created() {
  xmtest::TempDir t;
  bool threw = false;
  try {
    xmatters::read_spool(t / "absent");
  } catch (const std::system_error&) {
    threw = true;
  }
  CU_ASSERT(threw);
  CU_ASSERT_FALSE(xmtest::file_exists(t / "absent"));
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(
      argc, argv,
      {{"spool_reader",
        {{"reading_a_live_spool_changes_nothing_and_agrees_with_recovery",
          xmtest::guarded<test_reading_a_live_spool_changes_nothing_and_agrees_with_recovery>},
         {"damage_is_reported_not_repaired", xmtest::guarded<test_damage_is_reported_not_repaired>},
         {"missing_directory_is_an_error_and_not_created",
          xmtest::guarded<test_missing_directory_is_an_error_and_not_created>}}}});
}
