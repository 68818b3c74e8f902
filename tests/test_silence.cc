// Silences and maintenance windows (collectd-xmatters(5) MAINTENANCE,
// collectd-xmatters(1) SILENCES): matchers, the silence model, the
// system's time zones read from tzdata, and windows across real
// daylight-saving transitions of Europe/Berlin and America/New_York.
#include <time.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "silence/cover_watch.h"
#include "silence/coverage.h"
#include "outage/outage_tracker.h"
#include "silence/silence.h"
#include "silence/silence_book.h"
#include "store/spool.h"
#include "store/spool_format.h"
#include "store/spool_replay.h"
#include "power_loss_io.h"
#include "testing.h"
#include "silence/time_zone.h"
#include "silence/window_schedule.h"

using namespace xmatters;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

TimePoint utc(const char* rfc3339) { return parse_rfc3339(rfc3339); }
std::int64_t ns_since_epoch(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
std::int64_t secs(TimePoint t) { return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count(); }

template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no error>";
}

OutageKey key(const std::string& host, const std::string& plugin = "cpu", const std::string& type = "percent") {
  return OutageKey{host, plugin, "0", type, "user"};
}

// --- matchers ---------------------------------------------------------------------------------

void test_matcher_equal() {
  const Matcher m = Matcher::parse("host=web1");
  CU_ASSERT_TRUE(m.matches(key("web1")));
  CU_ASSERT_FALSE(m.matches(key("web10")));
  CU_ASSERT_FALSE(m.matches(key("xweb1")));
  CU_ASSERT_EQUAL(m.text(), "host=web1");
  CU_ASSERT_TRUE(Matcher::parse("plugin_instance=0").matches(key("a")));
  CU_ASSERT_TRUE(Matcher::parse("type_instance=user").matches(key("a")));
  CU_ASSERT_FALSE(Matcher::parse("type_instance=").matches(key("a")));
  CU_ASSERT_TRUE(Matcher::parse("plugin=cpu").matches(key("a")));
  CU_ASSERT_TRUE(Matcher::parse("type=percent").matches(key("a")));
  // A value may contain '=' and '~' after the operator.
  CU_ASSERT_EQUAL(Matcher::parse("host=a=b").value(), "a=b");
}

void test_matcher_regex_is_anchored() {
  const Matcher m = Matcher::parse("host=~web[0-9]+");
  CU_ASSERT_TRUE(m.is_regex());
  CU_ASSERT_TRUE(m.matches(key("web1")));
  CU_ASSERT_TRUE(m.matches(key("web42")));
  CU_ASSERT_FALSE(m.matches(key("web")));
  CU_ASSERT_FALSE(m.matches(key("xweb1")));
  CU_ASSERT_FALSE(m.matches(key("web1x")));
  // An alternation is anchored as a whole, as amtool's.
  const Matcher alt = Matcher::parse("host=~db1|db2");
  CU_ASSERT_TRUE(alt.matches(key("db2")));
  CU_ASSERT_FALSE(alt.matches(key("db12")));
  CU_ASSERT_FALSE(alt.matches(key("xdb1")));
  CU_ASSERT_EQUAL(alt.text(), "host=~db1|db2");
}

void test_matcher_errors() {
  CU_ASSERT_EQUAL(error_of([] { Matcher::parse("web1"); }), "matcher \"web1\": expects field=value or field=~regex");
  CU_ASSERT_EQUAL(error_of([] { Matcher::parse("=web1"); }), "matcher \"=web1\": expects field=value or field=~regex");
  CU_ASSERT_EQUAL(error_of([] { Matcher::parse("hostname=web1"); }),
                  "matcher \"hostname=web1\": the field must be one of host, plugin, plugin_instance, type, "
                  "type_instance");
  CU_ASSERT_EQUAL(error_of([] { Matcher::parse("host!=web1"); }),
                  "matcher \"host!=web1\": only = and =~ are supported");
  const std::string bad = error_of([] { Matcher::parse("host=~web[0-9"); });
  CU_ASSERT(bad.rfind("matcher \"host=~web[0-9\": not a valid POSIX extended regular expression: ", 0) == 0);
}

// --- durations and times ----------------------------------------------------------------------------

void test_durations() {
  CU_ASSERT(parse_duration("90m") == minutes(90));
  CU_ASSERT(parse_duration("2h") == hours(2));
  CU_ASSERT(parse_duration("3d") == hours(72));
  CU_ASSERT(parse_duration("1h30m") == minutes(90));
  CU_ASSERT(parse_duration("45s") == seconds(45));
  CU_ASSERT(parse_duration("1w") == hours(168));
  for (const char* bad : {"", "90", "m", "1.5h", "2x", "-1h", "1h 30m", "0m"})
    CU_ASSERT(error_of([&] { parse_duration(bad); }).rfind("duration \"" + std::string(bad) + "\": ", 0) == 0);
}

void test_rfc3339() {
  CU_ASSERT_EQUAL(secs(utc("1970-01-01T00:00:00Z")), 0);
  CU_ASSERT_EQUAL(secs(utc("2026-12-05T02:00:00Z")), 1796436000);
  CU_ASSERT_EQUAL(secs(utc("2026-12-05T03:00:00+01:00")), 1796436000);
  CU_ASSERT_EQUAL(secs(utc("2026-12-04T21:00:00-05:00")), 1796436000);
  CU_ASSERT_EQUAL(secs(utc("2026-12-05t02:00:00z")), 1796436000);
  CU_ASSERT(utc("2026-12-05T02:00:00.5Z") - utc("2026-12-05T02:00:00Z") == std::chrono::milliseconds(500));
  CU_ASSERT_EQUAL(format_utc_seconds(utc("2026-12-05T03:00:00+01:00")), "2026-12-05T02:00:00Z");
  CU_ASSERT_EQUAL(format_utc_seconds(utc("2024-02-29T23:59:59Z")), "2024-02-29T23:59:59Z");
  for (const char* bad : {"2026-12-05", "2026-12-05T02:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                          "2026-12-05T24:00:00Z", "2026-12-05T02:00:00+1:00", "tomorrow"})
    CU_ASSERT(error_of([&] { parse_rfc3339(bad); }).rfind("time \"" + std::string(bad) + "\": expects RFC 3339", 0) == 0);
}

// --- the silence --------------------------------------------------------------------------------------

SilenceRequest request() {
  SilenceRequest r;
  r.matchers = {"host=web1"};
  r.duration = hours(2);
  r.author = "alice";
  r.comment = "patch night";
  return r;
}

void test_silence_made_and_its_states() {
  const TimePoint now = utc("2026-12-05T02:00:00Z");
  const Silence s = make_silence(request(), now);
  CU_ASSERT_EQUAL(s.id.size(), 36u);
  CU_ASSERT(s.id != make_silence(request(), now).id);
  CU_ASSERT(s.start == now);
  CU_ASSERT(s.end == now + hours(2));
  CU_ASSERT_EQUAL(s.author, "alice");
  CU_ASSERT(s.state(now - seconds(1)) == Silence::State::Pending);
  CU_ASSERT(s.state(now) == Silence::State::Active);
  CU_ASSERT(s.state(now + hours(2) - seconds(1)) == Silence::State::Active);
  CU_ASSERT(s.state(now + hours(2)) == Silence::State::Expired);
  CU_ASSERT_FALSE(s.forgotten(now + hours(2) + hours(5 * 24) - seconds(1)));
  CU_ASSERT_TRUE(s.forgotten(now + hours(2) + hours(5 * 24)));
  CU_ASSERT_STRING_EQUAL(silence_state_name(s.state(now)), "active");

  SilenceRequest later = request();
  later.duration.reset();
  later.start = utc("2026-12-06T01:00:00Z");
  later.end = utc("2026-12-06T03:00:00+01:00");
  const Silence p = make_silence(later, now);
  CU_ASSERT(p.state(now) == Silence::State::Pending);
  CU_ASSERT(p.end - p.start == hours(1));
}

void test_silence_matches_all_matchers_and_integration() {
  SilenceRequest r = request();
  r.matchers = {"host=~web[0-9]+", "plugin=cpu"};
  const Silence all = make_silence(r, utc("2026-12-05T02:00:00Z"));
  CU_ASSERT_TRUE(all.matches("ops", key("web1")));
  CU_ASSERT_TRUE(all.matches("dba", key("web1")));
  CU_ASSERT_FALSE(all.matches("ops", key("web1", "memory")));
  CU_ASSERT_FALSE(all.matches("ops", key("db1")));
  r.integration = "ops";
  const Silence one = make_silence(r, utc("2026-12-05T02:00:00Z"));
  CU_ASSERT_TRUE(one.matches("ops", key("web1")));
  CU_ASSERT_FALSE(one.matches("dba", key("web1")));
}

void test_silence_refused() {
  const TimePoint now = utc("2026-12-05T02:00:00Z");
  const auto refused = [&](SilenceRequest r) { return error_of([&] { make_silence(r, now); }); };
  SilenceRequest r = request();
  r.matchers.clear();
  CU_ASSERT(refused(r).rfind("at least one matcher is required", 0) == 0);
  r = request();
  r.comment = " ";
  CU_ASSERT_EQUAL(refused(r), "--comment is required: say why the silence is there");
  r = request();
  r.end = now + hours(1);
  CU_ASSERT_EQUAL(refused(r), "give one of --duration and --end");
  r.duration.reset();
  r.end.reset();
  CU_ASSERT_EQUAL(refused(r), "give one of --duration and --end");
  r = request();
  r.duration = hours(31 * 24) + seconds(1);
  CU_ASSERT_EQUAL(refused(r), "a silence lasts at most 31 days");
  r.duration = hours(31 * 24);
  CU_ASSERT_EQUAL(refused(r), "<no error>");
  r = request();
  r.duration.reset();
  r.end = now - hours(1);
  r.start = now - hours(2);
  CU_ASSERT_EQUAL(refused(r), "the end 2026-12-05T01:00:00Z is already past");
  r.start = now + hours(1);
  r.end = now + hours(1);
  CU_ASSERT_EQUAL(refused(r), "the end 2026-12-05T03:00:00Z is not after the start 2026-12-05T03:00:00Z");
  r = request();
  r.matchers = {"host=web1", "nope"};
  CU_ASSERT_EQUAL(refused(r), "matcher \"nope\": expects field=value or field=~regex");
}

// --- time zones ----------------------------------------------------------------------------------------

void test_time_zone_offsets_from_tzdata() {
  const TimeZone berlin = TimeZone::load("Europe/Berlin");
  CU_ASSERT_EQUAL(berlin.name(), "Europe/Berlin");
  CU_ASSERT_EQUAL(berlin.offset_at(secs(utc("2026-01-15T12:00:00Z"))), 3600);
  CU_ASSERT_EQUAL(berlin.offset_at(secs(utc("2026-07-15T12:00:00Z"))), 7200);
  // The transitions of 2026: 29 March and 25 October, 01:00 UTC.
  CU_ASSERT_EQUAL(berlin.offset_at(secs(utc("2026-03-29T00:59:59Z"))), 3600);
  CU_ASSERT_EQUAL(berlin.offset_at(secs(utc("2026-03-29T01:00:00Z"))), 7200);
  CU_ASSERT_EQUAL(*berlin.next_transition(secs(utc("2026-03-01T00:00:00Z"))), secs(utc("2026-03-29T01:00:00Z")));
  CU_ASSERT_EQUAL(*berlin.next_transition(secs(utc("2026-03-29T01:00:00Z"))), secs(utc("2026-10-25T01:00:00Z")));
  // Past the file's table: its footer's rule.
  CU_ASSERT_EQUAL(berlin.offset_at(secs(utc("2100-07-01T00:00:00Z"))), 7200);
  CU_ASSERT_EQUAL(berlin.offset_at(secs(utc("2100-12-01T00:00:00Z"))), 3600);
  const TimeZone ny = TimeZone::load("America/New_York");
  CU_ASSERT_EQUAL(ny.offset_at(secs(utc("2026-03-08T06:59:59Z"))), -5 * 3600);
  CU_ASSERT_EQUAL(ny.offset_at(secs(utc("2026-03-08T07:00:00Z"))), -4 * 3600);
  CU_ASSERT_EQUAL(ny.offset_at(secs(utc("2026-11-01T05:59:59Z"))), -4 * 3600);
  CU_ASSERT_EQUAL(ny.offset_at(secs(utc("2026-11-01T06:00:00Z"))), -5 * 3600);
  CU_ASSERT_EQUAL(TimeZone::load("UTC").offset_at(secs(utc("2026-07-15T12:00:00Z"))), 0);
}

void test_time_zone_errors() {
  CU_ASSERT(error_of([] { TimeZone::load("Europe/Berln"); })
                .rfind("is not a time zone of the system's tzdata (/usr/share/zoneinfo/Europe/Berln: ", 0) == 0);
  CU_ASSERT_EQUAL(error_of([] { TimeZone::load("../../etc/passwd"); }),
                  "is not an IANA time zone name such as \"Europe/Berlin\"");
  CU_ASSERT_EQUAL(error_of([] { TimeZone::load("/etc/localtime"); }),
                  "is not an IANA time zone name such as \"Europe/Berlin\"");
  CU_ASSERT_EQUAL(error_of([] { TimeZone::load("leapseconds"); }),
                  "is not a time zone of the system's tzdata (/usr/share/zoneinfo/leapseconds: is not a TZif file)");
  CU_ASSERT_EQUAL(error_of([] { TimeZone::load("Europe"); }),
                  "is not a time zone of the system's tzdata (/usr/share/zoneinfo/Europe: not a file)");
  CU_ASSERT(error_of([] { TimeZone::from_tzif("TZif2", "x"); }).find("truncated") != std::string::npos);
}

// A TZif file of version 2 with no transition at all: every instant goes
// by its footer's POSIX TZ string.
std::string footer_only_tzif(const std::string& rule) {
  std::string header = "TZif2" + std::string(15, '\0');
  const auto u32 = [](std::uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  header += u32(0) + u32(0) + u32(0) + u32(0) + u32(1) + u32(4);
  const std::string block = u32(0) + std::string(2, '\0') + std::string("XXX", 4);
  return header + block + header + block + "\n" + rule + "\n";
}

// The footer's rule agrees with tzdata's own table of transitions, hour by
// hour over years the fat files list.
void test_footer_rule_agrees_with_the_table() {
  for (const auto& [zone, rule] : {std::pair{"Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"},
                                   {"America/New_York", "EST5EDT,M3.2.0,M11.1.0"},
                                   {"Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3"}}) {
    const TimeZone real = TimeZone::load(zone);
    const TimeZone footer = TimeZone::from_tzif(footer_only_tzif(rule), zone);
    int differ = 0;
    for (std::int64_t t = secs(utc("2025-01-01T00:00:00Z")); t < secs(utc("2030-01-01T00:00:00Z")); t += 1800) {
      if (real.offset_at(t) != footer.offset_at(t)) ++differ;
      if (real.next_transition(t) != footer.next_transition(t)) ++differ;
    }
    CU_ASSERT_EQUAL(differ, 0);
  }
}

// --- windows ------------------------------------------------------------------------------------------

void test_weekdays_and_times_parsed() {
  CU_ASSERT_EQUAL(parse_weekdays("mon-fri"), 0x3e);
  CU_ASSERT_EQUAL(parse_weekdays("sat,sun"), 0x41);
  CU_ASSERT_EQUAL(parse_weekdays("Sunday"), 0x01);
  CU_ASSERT_EQUAL(parse_weekdays("fri-mon"), 0x63);
  CU_ASSERT_EQUAL(parse_weekdays("mon, wed"), 0x0a);
  CU_ASSERT_EQUAL(error_of([] { parse_weekdays("mon-fry"); }),
                  "\"fry\" is not a weekday (sun, mon, tue, wed, thu, fri, sat)");
  CU_ASSERT_EQUAL(error_of([] { parse_weekdays(""); }), "expects weekdays such as \"mon-fri\" or \"sat,sun\"");
  CU_ASSERT(error_of([] { parse_weekdays("mon,"); }).find("is not a weekday") != std::string::npos);

  const TimeRange r = parse_time_range("02:00-04:30");
  CU_ASSERT_EQUAL(r.start, 7200);
  CU_ASSERT_EQUAL(r.end, 16200);
  CU_ASSERT_EQUAL(parse_time_range("22:00-24:00").end, 86400);
  CU_ASSERT_EQUAL(parse_time_range("23:00-01:00").end, 3600);
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("02:00"); }),
                  "expects a range of times of day such as \"02:00-04:30\"");
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("2:00-4:00"); }), "\"2:00\" is not a time of day hh:mm");
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("24:00-02:00"); }),
                  "\"24:00\" is not a time of day (00:00 to 23:59)");
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("02:00-25:00"); }),
                  "\"25:00\" is not a time of day (00:00 to 23:59, or 24:00 as an end)");
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("02:00-02:00"); }), "is empty: it starts where it ends");
  // To the second.
  const TimeRange s = parse_time_range("02:00:30-02:01:15");
  CU_ASSERT_EQUAL(s.start, 7230);
  CU_ASSERT_EQUAL(s.end, 7275);
  CU_ASSERT_EQUAL(parse_time_range("23:59:59-24:00:00").end, 86400);
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("02:00:60-03:00"); }),
                  "\"02:00:60\" is not a time of day (00:00 to 23:59)");
  CU_ASSERT_EQUAL(error_of([] { parse_time_range("02:00-24:00:01"); }),
                  "\"24:00:01\" is not a time of day (00:00 to 23:59, or 24:00 as an end)");
  for (const char* bad : {"02:00:0-03:00", "02:0000-03:00", "02:00:00:00-03:00", "02-00-03:00"})
    CU_ASSERT(!error_of([bad] { parse_time_range(bad); }).empty());
}

// Each change of coverage from..until: the instants next_change() walks through.
std::vector<std::string> changes(const WindowSchedule& w, const char* from, const char* until) {
  std::vector<std::string> out;
  TimePoint t = utc(from);
  while (auto next = w.next_change(t)) {
    if (*next > utc(until)) break;
    CU_ASSERT(w.covers(*next) != w.covers(*next - seconds(1)));
    out.push_back(format_utc_seconds(*next) + (w.covers(*next) ? " on" : " off"));
    t = *next;
  }
  return out;
}

void test_window_weekly_in_utc() {
  const WindowSchedule w(parse_weekdays("sun"), {parse_time_range("02:00-04:30")}, TimeZone::load("UTC"));
  // 2026-12-06 is a Sunday.
  CU_ASSERT_FALSE(w.covers(utc("2026-12-06T01:59:59Z")));
  CU_ASSERT_TRUE(w.covers(utc("2026-12-06T02:00:00Z")));
  CU_ASSERT_TRUE(w.covers(utc("2026-12-06T04:29:59Z")));
  CU_ASSERT_FALSE(w.covers(utc("2026-12-06T04:30:00Z")));
  CU_ASSERT_FALSE(w.covers(utc("2026-12-07T03:00:00Z")));
  const std::vector<std::string> expected{"2026-12-06T02:00:00Z on", "2026-12-06T04:30:00Z off",
                                          "2026-12-13T02:00:00Z on", "2026-12-13T04:30:00Z off"};
  CU_ASSERT(changes(w, "2026-12-02T10:00:00Z", "2026-12-14T00:00:00Z") == expected);
  // From inside a second of the window.
  CU_ASSERT(*w.next_change(utc("2026-12-06T02:00:00.5Z")) == utc("2026-12-06T04:30:00Z"));
}

void test_window_several_times_and_whole_days() {
  const WindowSchedule two(kEveryDay, {parse_time_range("01:00-02:00"), parse_time_range("02:00-03:00")},
                           TimeZone::load("UTC"));
  // Adjacent ranges make one occurrence.
  const std::vector<std::string> expected{"2026-12-06T01:00:00Z on", "2026-12-06T03:00:00Z off"};
  CU_ASSERT(changes(two, "2026-12-06T00:00:00Z", "2026-12-06T12:00:00Z") == expected);
  const WindowSchedule weekend(parse_weekdays("sat,sun"), {}, TimeZone::load("UTC"));
  const std::vector<std::string> weekend_expected{"2026-12-05T00:00:00Z on", "2026-12-07T00:00:00Z off"};
  CU_ASSERT(changes(weekend, "2026-12-02T00:00:00Z", "2026-12-08T00:00:00Z") == weekend_expected);
  const WindowSchedule always(kEveryDay, {}, TimeZone::load("Europe/Berlin"));
  CU_ASSERT_TRUE(always.covers(utc("2026-03-29T01:30:00Z")));
  CU_ASSERT_FALSE(always.next_change(utc("2026-03-25T00:00:00Z")).has_value());
}

void test_window_across_midnight_belongs_to_its_first_day() {
  const WindowSchedule w(parse_weekdays("sat"), {parse_time_range("22:00-02:00")}, TimeZone::load("UTC"));
  const std::vector<std::string> expected{"2026-12-05T22:00:00Z on", "2026-12-06T02:00:00Z off"};
  CU_ASSERT(changes(w, "2026-12-05T00:00:00Z", "2026-12-12T00:00:00Z") == expected);
  CU_ASSERT_FALSE(w.covers(utc("2026-12-05T01:00:00Z")));  // Saturday early: Friday's night is not in it
}

// Clocks go forward: a window 02:00-04:00 lasts one hour, from 03:00 CEST.
void test_window_berlin_spring_forward() {
  const WindowSchedule w(parse_weekdays("sun"), {parse_time_range("02:00-04:00")}, TimeZone::load("Europe/Berlin"));
  const std::vector<std::string> expected{"2026-03-29T01:00:00Z on", "2026-03-29T02:00:00Z off"};
  CU_ASSERT(changes(w, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z") == expected);
  // The Sunday before, in winter time: two hours.
  const std::vector<std::string> before{"2026-03-22T01:00:00Z on", "2026-03-22T03:00:00Z off"};
  CU_ASSERT(changes(w, "2026-03-21T12:00:00Z", "2026-03-23T00:00:00Z") == before);
  // A window inside the skipped hour does not happen that night.
  const WindowSchedule skipped(kEveryDay, {parse_time_range("02:15-02:45")}, TimeZone::load("Europe/Berlin"));
  const std::vector<std::string> next_night{"2026-03-30T00:15:00Z on", "2026-03-30T00:45:00Z off"};
  CU_ASSERT(changes(skipped, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z") == next_night);
}

// Clocks go back: the wall clock shows 02:00-03:00 twice, and a window
// 02:00-04:00 covers both passes: three hours of real time, one occurrence.
void test_window_berlin_fall_back() {
  const WindowSchedule w(parse_weekdays("sun"), {parse_time_range("02:00-04:00")}, TimeZone::load("Europe/Berlin"));
  const std::vector<std::string> expected{"2026-10-25T00:00:00Z on", "2026-10-25T03:00:00Z off"};
  CU_ASSERT(changes(w, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z") == expected);
  // A window inside the repeated hour happens on each pass.
  const WindowSchedule inside(parse_weekdays("sun"), {parse_time_range("02:15-02:45")}, TimeZone::load("Europe/Berlin"));
  const std::vector<std::string> twice{"2026-10-25T00:15:00Z on", "2026-10-25T00:45:00Z off",
                                       "2026-10-25T01:15:00Z on", "2026-10-25T01:45:00Z off"};
  CU_ASSERT(changes(inside, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z") == twice);
}

void test_window_new_york_transitions() {
  const TimeZone ny = TimeZone::load("America/New_York");
  const WindowSchedule w(parse_weekdays("sun"), {parse_time_range("02:00-04:00")}, ny);
  // Forward at 02:00 EST: 03:00-04:00 EDT, one hour.
  const std::vector<std::string> spring{"2026-03-08T07:00:00Z on", "2026-03-08T08:00:00Z off"};
  CU_ASSERT(changes(w, "2026-03-07T12:00:00Z", "2026-03-09T00:00:00Z") == spring);
  // Back at 02:00 EDT to 01:00 EST: 02:00-04:00 EST, two hours as usual.
  const std::vector<std::string> fall{"2026-11-01T07:00:00Z on", "2026-11-01T09:00:00Z off"};
  CU_ASSERT(changes(w, "2026-10-31T12:00:00Z", "2026-11-02T00:00:00Z") == fall);
  // 01:00-03:00 spans both passes of the repeated hour 01:00-02:00: three hours.
  const WindowSchedule early(parse_weekdays("sun"), {parse_time_range("01:00-03:00")}, ny);
  const std::vector<std::string> spans{"2026-11-01T05:00:00Z on", "2026-11-01T08:00:00Z off"};
  CU_ASSERT(changes(early, "2026-10-31T12:00:00Z", "2026-11-02T00:00:00Z") == spans);
}

// Coverage is a function of the instant asked about: a clock set back or
// forward gets the answer for the new time, nothing cached from before.
void test_window_follows_a_changed_clock() {
  const WindowSchedule w(parse_weekdays("sun"), {parse_time_range("02:00-04:00")}, TimeZone::load("Europe/Berlin"));
  const TimePoint inside = utc("2026-12-06T02:00:00Z");
  CU_ASSERT_TRUE(w.covers(inside));
  CU_ASSERT(*w.next_change(inside) == utc("2026-12-06T03:00:00Z"));
  // The clock jumps back a day: the next change is that day's start.
  CU_ASSERT_FALSE(w.covers(inside - hours(24)));
  CU_ASSERT(*w.next_change(inside - hours(24)) == utc("2026-12-06T01:00:00Z"));
  // And forward past the end.
  CU_ASSERT(*w.next_change(inside + hours(3)) == utc("2026-12-13T01:00:00Z"));
}

// --- coverage: silences and windows together ------------------------------------------------------------

MaintenanceConfig sunday_window() {
  MaintenanceConfig m;
  m.name = "sunday-patching";
  m.host_filter.emplace("^web[0-9]+$");
  m.weekdays = parse_weekdays("sun");
  m.times = {parse_time_range("02:00-04:00")};
  m.time_zone = TimeZone::load("UTC");
  return m;
}

void test_coverage_windows_and_silences() {
  xmtest::CapturingLogger log;
  Coverage c({sunday_window()}, log);
  const TimePoint sunday = utc("2026-12-06T02:30:00Z"), monday = utc("2026-12-07T02:30:00Z");
  CU_ASSERT(c.covering("ops", key("web1"), sunday) == std::string("maintenance sunday-patching"));
  CU_ASSERT_FALSE(c.covering("ops", key("db1"), sunday).has_value());
  CU_ASSERT_FALSE(c.covering("ops", key("web1"), monday).has_value());

  SilenceRequest r = request();
  r.matchers = {"host=db1"};
  r.integration = "ops";
  r.start = monday - hours(1);
  const Silence s = make_silence(r, sunday);
  c.add(s);
  CU_ASSERT(c.covering("ops", key("db1"), monday) == "silence " + s.id);
  CU_ASSERT_FALSE(c.covering("dba", key("db1"), monday).has_value());
  CU_ASSERT_FALSE(c.covering("ops", key("db1"), sunday).has_value());  // pending
  CU_ASSERT_EQUAL(c.silences(sunday, false).size(), 1u);
  // The next change: the window's end, then the silence's start and end.
  CU_ASSERT(*c.next_change(sunday) == utc("2026-12-06T04:00:00Z"));
  CU_ASSERT(*c.next_change(utc("2026-12-06T04:00:00Z")) == monday - hours(1));
  CU_ASSERT(*c.next_change(monday) == monday + hours(1));

  Silence expired;
  CU_ASSERT_TRUE(c.expire(s.id, monday, &expired));
  CU_ASSERT(expired.end == monday);
  CU_ASSERT_FALSE(c.expire(s.id, monday + seconds(1)));
  CU_ASSERT_FALSE(c.expire("no-such-id", monday));
  CU_ASSERT_FALSE(c.covering("ops", key("db1"), monday).has_value());
  CU_ASSERT_TRUE(c.silences(monday, false).empty());
  CU_ASSERT_EQUAL(c.silences(monday, true).size(), 1u);
  // Forgotten 5 days after its end.
  c.tick(monday + hours(5 * 24));
  CU_ASSERT_TRUE(c.silences(monday + hours(5 * 24), true).empty());
}

void test_coverage_tick_logs_each_start_and_end() {
  xmtest::CapturingLogger log;
  Coverage c({sunday_window()}, log);
  SilenceRequest r = request();
  r.start = utc("2026-12-06T03:00:00Z");
  const Silence s = make_silence(r, utc("2026-12-06T01:00:00Z"));
  c.add(s);
  CU_ASSERT_FALSE(c.tick(utc("2026-12-06T01:00:00Z")));
  CU_ASSERT_EQUAL(log.count(LogLevel::Info), 0u);
  CU_ASSERT_FALSE(c.tick(utc("2026-12-06T02:00:00Z")));
  CU_ASSERT_TRUE(log.contains(LogLevel::Info,
                              "maintenance window \"sunday-patching\" begins, until 2026-12-06T04:00:00Z"));
  CU_ASSERT_FALSE(c.tick(utc("2026-12-06T03:00:00Z")));
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "silence " + s.id +
                                                  " begins, until 2026-12-06T05:00:00Z: host=web1, by alice: patch night"));
  CU_ASSERT_TRUE(c.tick(utc("2026-12-06T04:00:00Z")));
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "maintenance window \"sunday-patching\" ends"));
  CU_ASSERT_TRUE(c.tick(utc("2026-12-06T05:00:00Z")));
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "silence " + s.id + " ends"));
  CU_ASSERT_EQUAL(log.count(LogLevel::Info), 4u);
  CU_ASSERT_FALSE(c.tick(utc("2026-12-06T06:00:00Z")));
  CU_ASSERT_EQUAL(log.count(LogLevel::Info), 4u);
  // A clock set back into the window: it begins again, as the wall clock says.
  CU_ASSERT_FALSE(c.tick(utc("2026-12-06T02:30:00Z")));
  CU_ASSERT_EQUAL(log.count(LogLevel::Info, "maintenance window \"sunday-patching\" begins"), 2u);
}

// "hh:mm:ss" of t in UTC.
std::string time_of(std::int64_t t) {
  const std::int64_t tod = ((t % 86400) + 86400) % 86400;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", static_cast<int>(tod / 3600), static_cast<int>(tod / 60 % 60),
                static_cast<int>(tod % 60));
  return buf;
}

// The watch wakes when a window ends, and only then (and once at its
// start): it logs the end and releases the outages held back, at an
// instant at or after the end. No polling: two rounds in all.
void test_cover_watch_wakes_when_a_window_ends() {
  xmtest::CapturingLogger log;
  const std::int64_t now = secs(Clock::now());
  const std::int64_t end = now + 2;
  MaintenanceConfig m;
  m.name = "short";
  m.times = {parse_time_range(time_of(now - 60) + "-" + time_of(end))};
  m.time_zone = TimeZone::load("UTC");
  Coverage c({m}, log);
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<TimePoint> rounds;
  CoverWatch watch(c, [&](TimePoint t) {
    std::lock_guard<std::mutex> lock(mutex);
    rounds.push_back(t);
    cv.notify_all();
  }, log);
  watch.start();
  {
    std::unique_lock<std::mutex> lock(mutex);
    CU_ASSERT_FATAL(cv.wait_for(lock, std::chrono::seconds(60), [&] { return rounds.size() >= 2; }));
  }
  watch.stop();
  CU_ASSERT_EQUAL(rounds.size(), 2u);
  CU_ASSERT(secs(rounds[1]) >= end);
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "maintenance window \"short\" begins"));
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "maintenance window \"short\" ends"));
  CU_ASSERT_FALSE(c.covering("ops", key("web1"), Clock::now()).has_value());
}



// A clock of the test's own, stepped by hand: wait() records its deadline
// and returns only when the clock is stepped or interrupt() is called, as
// the system's returns on ECANCELED from its timerfd.
struct SteppedClockState {
  std::mutex mutex;
  std::condition_variable changed;
  TimePoint now;
  std::vector<std::optional<TimePoint>> deadlines;  // one per wait()
  std::vector<TimePoint> rounds;                     // one per release
  bool woken = false;

  void step_to(TimePoint t) {
    std::lock_guard<std::mutex> lock(mutex);
    now = t;
    woken = true;
    changed.notify_all();
  }
  // Waits for the watch's wait number n (1-based) and returns its deadline.
  std::optional<TimePoint> deadline_of_wait(std::size_t n) {
    std::unique_lock<std::mutex> lock(mutex);
    CU_ASSERT_FATAL(changed.wait_for(lock, seconds(30), [&] { return deadlines.size() >= n; }));
    return deadlines[n - 1];
  }
};

class SteppedClock final : public WakeSource {
 public:
  explicit SteppedClock(std::shared_ptr<SteppedClockState> s) : s_(std::move(s)) {}
  TimePoint now() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    return s_->now;
  }
  void wait(std::optional<TimePoint> deadline) override {
    std::unique_lock<std::mutex> lock(s_->mutex);
    s_->deadlines.push_back(deadline);
    s_->changed.notify_all();
    s_->changed.wait(lock, [&] { return s_->woken; });
    s_->woken = false;
  }
  void interrupt() override {
    std::lock_guard<std::mutex> lock(s_->mutex);
    s_->woken = true;
    s_->changed.notify_all();
  }

 private:
  std::shared_ptr<SteppedClockState> s_;
};

// A step of the system clock wakes the watch, which computes the next
// boundary from the new time: set back a day, it waits for that day's
// window (not next week's, the deadline computed before the step); set
// forward into a window, it logs the window's start.
void test_cover_watch_recomputes_after_a_clock_step() {
  xmtest::CapturingLogger log;
  Coverage c({sunday_window()}, log);  // Sundays 02:00-04:00 UTC
  auto clock = std::make_shared<SteppedClockState>();
  clock->now = utc("2026-12-06T05:00:00Z");
  CoverWatch watch(c, [&](TimePoint t) {
    std::lock_guard<std::mutex> lock(clock->mutex);
    clock->rounds.push_back(t);
  }, log, std::make_unique<SteppedClock>(clock));
  watch.start();
  CU_ASSERT(clock->deadline_of_wait(1) == utc("2026-12-13T02:00:00Z"));
  clock->step_to(utc("2026-12-06T01:00:00Z"));  // back four hours
  CU_ASSERT(clock->deadline_of_wait(2) == utc("2026-12-06T02:00:00Z"));
  CU_ASSERT_EQUAL(log.count(LogLevel::Info), 0u);
  clock->step_to(utc("2026-12-06T03:00:00Z"));  // forward into the window
  CU_ASSERT(clock->deadline_of_wait(3) == utc("2026-12-06T04:00:00Z"));
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "maintenance window \"sunday-patching\" begins, until 2026-12-06T04:00:00Z"));
  watch.poke();  // a silence changed: one more round, same deadline
  CU_ASSERT(clock->deadline_of_wait(4) == utc("2026-12-06T04:00:00Z"));
  watch.stop();
  std::lock_guard<std::mutex> lock(clock->mutex);
  CU_ASSERT_EQUAL(clock->rounds.size(), 4u);
  CU_ASSERT(clock->rounds[1] == utc("2026-12-06T01:00:00Z"));
}

// The system's wake source: its wait ends at the deadline (not before), at
// once for one already past, and on interrupt(), also one made before the
// wait began.
void test_system_wake_source_deadline_and_interrupt() {
  auto wakes = system_wake_source();
  const TimePoint deadline = wakes->now() + std::chrono::milliseconds(200);
  wakes->wait(deadline);
  CU_ASSERT(Clock::now() >= deadline);
  wakes->now();
  wakes->wait(Clock::now() - hours(1));
  wakes->wait(TimePoint{});  // the epoch: long past, not a disarmed timer
  wakes->now();
  wakes->interrupt();
  wakes->wait(std::nullopt);  // returns: the interrupt is remembered
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    wakes->interrupt();
  });
  wakes->now();
  wakes->wait(Clock::now() + hours(1));
  later.join();
}

// A real step of the system clock ends the wait (ECANCELED from the
// timerfd). It sets the clock, to the time it reads, so it runs only with
// XM_TEST_STEP_CLOCK=1 (and CAP_SYS_TIME): the machine's clock is not the
// test's to change.
void test_system_wake_source_wakes_on_a_clock_step() {
  const char* opt = std::getenv("XM_TEST_STEP_CLOCK");
  if (!opt || std::string(opt) != "1") return;
  auto wakes = system_wake_source();
  std::thread stepper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    CU_ASSERT_EQUAL(::clock_settime(CLOCK_REALTIME, &t), 0);
  });
  wakes->now();
  const auto before = std::chrono::steady_clock::now();
  wakes->wait(Clock::now() + hours(1));  // hangs here if the step is missed
  CU_ASSERT(std::chrono::steady_clock::now() - before < hours(1));
  stepper.join();
}

// A comment or author with control characters stays one INFO line.
void test_silence_log_line_is_one_line() {
  xmtest::CapturingLogger log;
  Coverage c({}, log);
  SilenceRequest r = request();
  r.comment = "reboot\nERROR: fake line";
  r.author = "bob\t";
  const TimePoint now = utc("2026-12-05T02:00:00Z");
  c.add(make_silence(r, now));
  c.tick(now);
  const auto entries = log.entries();
  XM_REQUIRE(entries.size() == 1u);
  CU_ASSERT_EQUAL(entries[0].message.find('\n'), std::string::npos);
  CU_ASSERT_EQUAL(entries[0].message.find('\t'), std::string::npos);
  CU_ASSERT_TRUE(log.contains(LogLevel::Info, "by bob\\x09: reboot\\x0aERROR: fake line"));
}

// --- SILENCE records (doc/storage.md, record 10) ----------------------------------------

Silence sample_silence(TimePoint now) {
  SilenceRequest r;
  r.matchers = {"host=~web[0-9]+", "plugin=~load|cpu"};
  r.duration = hours(2);
  r.comment = "patch night: kernel 6.1";
  r.author = "alice";
  r.integration = "ops";
  return make_silence(r, now);
}

bool same(const Silence& a, const Silence& b) {
  if (a.id != b.id || a.integration != b.integration || a.start != b.start || a.end != b.end ||
      a.author != b.author || a.comment != b.comment || a.matchers.size() != b.matchers.size())
    return false;
  for (std::size_t i = 0; i < a.matchers.size(); ++i)
    if (a.matchers[i].text() != b.matchers[i].text() || a.matchers[i].is_regex() != b.matchers[i].is_regex())
      return false;
  return true;
}

void test_silence_record_round_trip() {
  const TimePoint now = utc("2026-12-05T21:00:00.123456789Z");
  Silence s = sample_silence(now);
  // An equal matcher whose value starts with '~' stays one: the record keeps
  // the operator apart from the value.
  s.matchers.push_back(Matcher::of(Matcher::Field::Type, false, "~odd=value"));
  const std::string record = encode_silence(s);
  Silence back;
  CU_ASSERT_FATAL(decode_silence(record, &back));
  CU_ASSERT_TRUE(same(s, back));
  CU_ASSERT_FALSE(back.matchers.back().is_regex());
  CU_ASSERT_TRUE(back.matches("ops", OutageKey{"web7", "load", "", "~odd=value", "x"}));
  CU_ASSERT_FALSE(back.matches("ops", OutageKey{"web7x", "load", "", "~odd=value", "x"}));  // anchored

  // Every integration: no integration field at all.
  s.integration.clear();
  CU_ASSERT_FATAL(decode_silence(encode_silence(s), &back));
  CU_ASSERT_TRUE(back.integration.empty());

  // A newer plugin's field is skipped.
  namespace sf = spool_format;
  const std::string newer = sf::encode_tagged(sf::RecordType::Silence, [&](auto& w) {
    w.bytes(1, "id-1");
    w.bytes(99, "from the future");
    w.message(2, [](auto& m) {
      m.u8(1, 1);
      m.bytes(3, "web1");
      m.bytes(9, "x");
    });
    w.i64(4, 1);
    w.i64(5, 2);
  });
  CU_ASSERT_FATAL(decode_silence(newer, &back));
  CU_ASSERT_EQUAL(back.id, "id-1");
  CU_ASSERT_EQUAL(back.matchers.at(0).text(), "host=web1");

  // Damage, or another type: not a silence.
  const std::string no_matcher = sf::encode_tagged(sf::RecordType::Silence, [&](auto& w) {
    w.bytes(1, "id-2");
    w.i64(4, 1);
    w.i64(5, 2);
  });
  CU_ASSERT_FALSE(decode_silence(no_matcher, &back));
  const std::string bad_regex = sf::encode_tagged(sf::RecordType::Silence, [&](auto& w) {
    w.bytes(1, "id-3");
    w.message(2, [](auto& m) {
      m.u8(1, 1);
      m.u8(2, 1);
      m.bytes(3, "web[");
    });
    w.i64(4, 1);
    w.i64(5, 2);
  });
  CU_ASSERT_FALSE(decode_silence(bad_regex, &back));
  CU_ASSERT_FALSE(decode_silence(sf::encode_ack("id-1"), &back));
  std::string torn = record;
  torn[torn.size() - 1] ^= 1;
  CU_ASSERT_FALSE(decode_silence(torn, &back));
}

SpoolOptions compact_often() {
  SpoolOptions o;
  o.segment_bytes = 64;  // every maintain() compacts
  o.compaction_interval = std::chrono::milliseconds(0);
  o.reserve_bytes = 4096;
  return o;
}

// Silences through a real spool: durable records, their recovery (the
// last record of an id wins), the tracker's recovery beside them, and a
// compaction that keeps them through the composed snapshot and forgets
// those ended over 5 days ago.
void test_silences_recovered_and_compacted() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  const TimePoint now = Clock::now();
  const Silence kept = sample_silence(now);
  Silence old = sample_silence(now - hours(24 * 6));  // ended 6 days ago: forgotten
  std::string kept_id, ended_id;
  {
    Spool spool(dir.path(), log, nullptr, compact_often());
    Coverage coverage({}, log);
    int pokes = 0;
    SilenceBook book(coverage, [&](const std::string& r) { spool.append_durable(r); }, [&] { ++pokes; });
    book.add(kept);
    Silence other = sample_silence(now);
    other.matchers = {Matcher::parse("host=db1")};
    book.add(other);
    book.add(old);
    CU_ASSERT_TRUE(book.expire(other.id, now + seconds(1)).has_value());
    CU_ASSERT_FALSE(book.expire(other.id, now + seconds(2)).has_value());  // ended already
    CU_ASSERT_FALSE(book.expire("no-such-id", now).has_value());
    CU_ASSERT_EQUAL(pokes, 4);
    CU_ASSERT_TRUE(coverage.covering("ops", key("web1"), now + seconds(2)).has_value());
    CU_ASSERT_FALSE(coverage.covering("ops", key("db1"), now + seconds(2)).has_value());
    kept_id = kept.id;
    ended_id = other.id;
    // An outage change beside them: the tracker takes its own records only.
    spool.append_change(encode_change("ops", key("web1"), nullptr, TimePoint{}));
  }
  const auto check = [&](const std::vector<std::string>& table, bool old_forgotten) {
    const std::vector<Silence> found = silences_of(table, now + seconds(2));
    CU_ASSERT_EQUAL_FATAL(found.size(), 2u);
    const Silence& a = found[0].id == kept_id ? found[0] : found[1];
    const Silence& b = found[0].id == kept_id ? found[1] : found[0];
    CU_ASSERT_TRUE(same(a, kept));
    CU_ASSERT_EQUAL(b.id, ended_id);
    CU_ASSERT(b.end == now + seconds(1));  // expired: its record again, with the new end
    (void)old_forgotten;
  };
  {
    // The read-only reader sees what recovery sees.
    check(read_spool(dir.path()).changes, true);
    Spool spool(dir.path(), log, nullptr, compact_often());
    const std::vector<std::string> table = spool.take_recovered_changes();
    check(table, true);
    // Forgotten ones are dropped at recovery too, but stay in the log until a compaction.
    std::size_t records = 0;
    for (const auto& r : table) {
      Silence s;
      records += decode_silence(r, &s) ? 1 : 0;
    }
    CU_ASSERT_EQUAL(records, 4u);
    xmtest::CapturingLogger tracker_log;
    const OutageTracker tracker("ops", TrackerOptions{}, tracker_log, table);
    CU_ASSERT_FALSE(tracker_log.contains(LogLevel::Warning, "malformed"));

    Coverage coverage({}, log);
    SilenceBook book(coverage, [&](const std::string& r) { spool.append_durable(r); }, [] {});
    CU_ASSERT_EQUAL(book.recover(table, now + seconds(2)), 2u);
    CU_ASSERT_TRUE(coverage.covering("ops", key("web3"), now + seconds(2)).has_value());
    spool.set_snapshot_source([&](SnapshotWriter write) { book.snapshot(write, now + seconds(2)); });
    spool.maintain();  // compacts: the table now holds the two silences only
    spool.maintain();
  }
  const SpoolContents after = read_spool(dir.path());
  CU_ASSERT_EQUAL(after.segments.size(), 2u);  // the compacted one and the last start's
  std::size_t records = 0;
  for (const auto& r : after.changes) {
    Silence s;
    records += decode_silence(r, &s) ? 1 : 0;
  }
  CU_ASSERT_EQUAL(records, 2u);
  check(after.changes, true);
}

using xmtest::PowerLossIo;  // tests/power_loss_io.h

// Before every file operation of a scripted sequence (add, add, compact,
// expire, compact, add), the directory as a power loss (and as kill -9)
// would leave it is recovered: a silence whose add returned is there, an
// expire that returned is kept, and nothing else is ever found (doc/storage.md,
// the ordering rule, for SILENCE records).
void test_silences_survive_power_loss_at_every_step() {
  xmtest::TempDir dir, images;
  xmtest::CapturingLogger log;
  auto io = std::make_shared<PowerLossIo>();
  std::mt19937 rng(20261205);
  const TimePoint now = Clock::now();
  // Per id: the ends a restart may find; kAbsent: not there at all.
  const std::int64_t kAbsent = -1;
  std::map<std::string, std::set<std::int64_t>> allowed;
  int checked = 0, failures = 0;
  const auto check = [&] {
    for (const bool torn : {true, false}) {
      const std::string to = images / std::to_string(checked++);
      std::filesystem::create_directory(to);
      if (torn) {
        io->image(to, rng, true);
      } else {
        for (const auto& e : std::filesystem::directory_iterator(dir.path()))
          if (e.path().filename() != "reserve") std::filesystem::copy_file(e.path(), to + "/" + e.path().filename().string());
      }
      std::map<std::string, std::int64_t> found;
      for (const Silence& s : silences_of(read_spool(to).changes, now)) found[s.id] = ns_since_epoch(s.end);
      for (const auto& [id, ends] : allowed) {
        const auto f = found.find(id);
        const bool ok = ends.count(f == found.end() ? kAbsent : f->second) == 1;
        if (!ok && failures++ < 3)
          std::fprintf(stderr, "\nimage %d (%s): silence %s recovered %s\n", checked, torn ? "power loss" : "kill -9",
                       id.c_str(), f == found.end() ? "absent" : "with another end");
        CU_ASSERT(ok);
      }
      CU_ASSERT(found.size() <= allowed.size());
      std::filesystem::remove_all(to);
    }
  };
  io->before = check;
  Spool spool(dir.path(), log, io, compact_often());
  Coverage coverage({}, log);
  SilenceBook book(coverage, [&](const std::string& r) { spool.append_durable(r); }, [] {});
  spool.set_snapshot_source([&](SnapshotWriter write) { book.snapshot(write, now); });
  const auto add = [&](const std::string& host) {
    SilenceRequest r = request();
    r.matchers = {"host=" + host};
    const Silence s = make_silence(r, now);
    allowed[s.id] = {kAbsent, ns_since_epoch(s.end)};
    book.add(s);
    allowed[s.id] = {ns_since_epoch(s.end)};
    return s;
  };
  const Silence a = add("web1");
  add("web2");
  spool.maintain();
  const TimePoint ended = now + seconds(1);
  allowed[a.id].insert(ns_since_epoch(ended));
  CU_ASSERT_TRUE(book.expire(a.id, ended).has_value());
  allowed[a.id] = {ns_since_epoch(ended)};
  spool.maintain();
  add("web3");
  io->before = nullptr;
  CU_ASSERT(checked > 20);
}
}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {
                         {"matchers",
                          {
                              {"matcher_equal", test_matcher_equal},
                              {"matcher_regex_is_anchored", test_matcher_regex_is_anchored},
                              {"matcher_errors", test_matcher_errors},
                          }},
                         {"silence",
                          {
                              {"durations", test_durations},
                              {"rfc3339", test_rfc3339},
                              {"silence_made_and_its_states", test_silence_made_and_its_states},
                              {"silence_matches_all_matchers_and_integration",
                               test_silence_matches_all_matchers_and_integration},
                              {"silence_refused", test_silence_refused},
                              {"silence_record_round_trip", test_silence_record_round_trip},
                              {"silence_log_line_is_one_line", test_silence_log_line_is_one_line},
                              {"silences_recovered_and_compacted", test_silences_recovered_and_compacted},
                              {"silences_survive_power_loss_at_every_step",
                               test_silences_survive_power_loss_at_every_step},
                          }},
                         {"time_zone",
                          {
                              {"time_zone_offsets_from_tzdata", test_time_zone_offsets_from_tzdata},
                              {"time_zone_errors", test_time_zone_errors},
                              {"footer_rule_agrees_with_the_table", test_footer_rule_agrees_with_the_table},
                          }},
                         {"coverage",
                          {
                              {"coverage_windows_and_silences", test_coverage_windows_and_silences},
                              {"coverage_tick_logs_each_start_and_end", test_coverage_tick_logs_each_start_and_end},
                              {"cover_watch_wakes_when_a_window_ends", test_cover_watch_wakes_when_a_window_ends},
                              {"cover_watch_recomputes_after_a_clock_step",
                               test_cover_watch_recomputes_after_a_clock_step},
                              {"system_wake_source_deadline_and_interrupt",
                               test_system_wake_source_deadline_and_interrupt},
                              {"system_wake_source_wakes_on_a_clock_step",
                               test_system_wake_source_wakes_on_a_clock_step},
                          }},
                         {"windows",
                          {
                              {"weekdays_and_times_parsed", test_weekdays_and_times_parsed},
                              {"window_weekly_in_utc", test_window_weekly_in_utc},
                              {"window_several_times_and_whole_days", test_window_several_times_and_whole_days},
                              {"window_across_midnight_belongs_to_its_first_day",
                               test_window_across_midnight_belongs_to_its_first_day},
                              {"window_berlin_spring_forward", test_window_berlin_spring_forward},
                              {"window_berlin_fall_back", test_window_berlin_fall_back},
                              {"window_new_york_transitions", test_window_new_york_transitions},
                              {"window_follows_a_changed_clock", test_window_follows_a_changed_clock},
                          }},
                     });
}
