// `make bench`: the plugin at a fleet's aggregator (issue 15). One real
// collectd (tests/collectd_harness) thresholding a fleet's values, put
// through one unixsock connection as the network plugin would dispatch
// them, and this plugin delivering to the stand-in:
// - the storm: 200 outages on 50 hosts at once, then all recover, with
//   FloodLimit 4 (GroupBy value_list): when the pages and clears arrive;
// - the fleet: 10,000 hosts with 20 value lists each, 1 % of the value lists
//   failing per minute, GroupBy host and FloodLimit 4, against the same
//   collectd without the plugin (the floor): PUTVAL round trip and
//   collectd's CPU per value, memory per open outage and per member key
//   (VmRSS deltas), time from the first FAILURE to the flood outage's page;
// - the churn (issue 11): N distinct keys failing and recovering once each
//   (N = 0, 1,000 and 200,000, each in a fresh collectd), every event
//   delivered and the spool compacted: collectd's VmRSS and RssAnon, and
//   SpoolDir's bytes, that stay afterwards.
// Method and one run's figures: doc/benchmarks.md, "Fleets". Numbers are
// reported, never asserted.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "collectd_harness.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using xmtest::CollectdProcess;

struct Options {
  int hosts = 10000;
  int lists = 20;            // value lists per host
  double fail_pct = 1;       // of all value lists, failing per minute
  int minutes = 2;           // of failures; the first opens outages, the next add members to them
  int minute_s = 60;         // a minute's length (FloodLimit counts real minutes)
  int storm_hosts = 50;
  int storm_lists = 4;
  int churn_keys = 200000;    // the churn's large N
  bool storm = true;
  bool fleet = true;
  bool churn = true;
};

void usage() {
  std::puts(
      "bench_fleet [--hosts N] [--lists N] [--fail-pct P] [--minutes N] [--minute-seconds S]\n"
      "            [--storm-hosts N] [--storm-lists N] [--churn-keys N] [--no-storm] [--no-fleet] [--no-churn]\n"
      "defaults: 10000 hosts, 20 lists, 1 % failing per minute, 2 minutes of 60 s; storm of 50 x 4;\n"
      "churn of 0, 1000 and 200000 keys");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--hosts") o.hosts = std::atoi(next());
    else if (a == "--lists") o.lists = std::atoi(next());
    else if (a == "--fail-pct") o.fail_pct = std::atof(next());
    else if (a == "--minutes") o.minutes = std::atoi(next());
    else if (a == "--minute-seconds") o.minute_s = std::atoi(next());
    else if (a == "--storm-hosts") o.storm_hosts = std::atoi(next());
    else if (a == "--storm-lists") o.storm_lists = std::atoi(next());
    else if (a == "--no-storm") o.storm = false;
    else if (a == "--no-fleet") o.fleet = false;
    else if (a == "--churn-keys") o.churn_keys = std::atoi(next());
    else if (a == "--no-churn") o.churn = false;
    else {
      usage();
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  return o;
}

// --- collectd's process, from /proc -----------------------------------------------

long long status_kb(pid_t pid, const char* field) {
  const std::string s = xmtest::read_file("/proc/" + std::to_string(pid) + "/status");
  const std::size_t at = s.find(std::string("\n") + field + ":");
  return at == std::string::npos ? 0 : std::atoll(s.c_str() + at + std::strlen(field) + 2);
}

// utime + stime of every thread, dead ones included, in clock ticks.
long long cpu_ticks(pid_t pid) {
  const std::string stat = xmtest::read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long long v = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i >= 14) v += std::atoll(field.c_str());
  return v;
}

double ticks_ms(long long t) { return 1000.0 * static_cast<double>(t) / static_cast<double>(::sysconf(_SC_CLK_TCK)); }
double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// VmRSS once it has stopped moving (two readings 500 ms apart within 64 kB):
// collectd's write threads may still be working through the queue.
long long settled_rss(pid_t pid) {
  long long last = status_kb(pid, "VmRSS");
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(500ms);
    const long long now = status_kb(pid, "VmRSS");
    if (std::llabs(now - last) < 64) return now;
    last = now;
  }
  return last;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// --- the aggregator ------------------------------------------------------------------

std::string thresholds() {
  return "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"fleet\">\n    <Type \"gauge\">\n"
         "      DataSource \"value\"\n      FailureMax 90\n    </Type>\n  </Plugin>\n</Plugin>\n";
}

std::string xmatters(const xmtest::Standin& xm, const std::string& group_by) {
  return "LoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"" + xm.url("outage") +
         "\"\n    ClearURL \"" + xm.url("clear") + "\"\n    GroupBy \"" + group_by +
         "\"\n    FloodLimit 4\n  </Integration>\n</Plugin>\n";
}

// Timeout 1000: no value goes missing during a run, however long the feed.
std::string aggregator(const std::string& plugin) { return "Timeout 1000\n" + thresholds() + plugin; }

std::string host_name(const char* prefix, int h) {
  char s[32];
  std::snprintf(s, sizeof s, "%s-%05d", prefix, h);
  return s;
}

struct Value {
  std::string host;
  int list;
};

// One pass of PUTVALs, each timed, then a marker value that collectd's
// cache shows once the write threads have reached it.
struct Pass {
  std::vector<double> rtt_us;
  long long ticks = 0;
  double wall_s = 0;
};

Pass put(CollectdProcess& c, const std::vector<Value>& values, double value) {
  static int marker = 0;
  Pass p;
  const long long t0 = cpu_ticks(c.pid());
  const auto w0 = Clock::now();
  char number[32];
  std::snprintf(number, sizeof number, "%g", value);
  p.rtt_us.reserve(values.size());
  for (const auto& v : values) {
    const std::string line = "PUTVAL " + xmtest::quote_unixsock(v.host + "/fleet/gauge-" + std::to_string(v.list)) +
                             " interval=60 N:" + number;
    const auto s = Clock::now();
    if (!c.unixsock().command(line).ok()) throw std::runtime_error("PUTVAL refused: " + line);
    p.rtt_us.push_back(1e6 * secs(Clock::now() - s));
  }
  ++marker;
  c.unixsock().command("PUTVAL \"marker/drain/gauge\" interval=60 N:" + std::to_string(marker));
  xmtest::wait_until([&] { return c.getval("marker/drain/gauge") == static_cast<double>(marker); }, 120s);
  p.wall_s = secs(Clock::now() - w0);
  p.ticks = cpu_ticks(c.pid()) - t0;
  return p;
}

double cpu_us_per_value(const Pass& p) {
  return p.rtt_us.empty() ? 0.0 : 1000.0 * ticks_ms(p.ticks) / static_cast<double>(p.rtt_us.size());
}

// With floor: the ratios of the PUTVAL median and of the CPU per value to it.
void print_pass(const char* config, const char* what, const Pass& p, const Pass* floor = nullptr) {
  const double median = percentile(p.rtt_us, 0.5);
  std::printf("  %-9s %-28s %8zu values  PUTVAL median %5.1f us p99 %6.1f us  CPU %6.2f us/value  %6.2f s", config,
              what, p.rtt_us.size(), median, percentile(p.rtt_us, 0.99), cpu_us_per_value(p), p.wall_s);
  if (floor != nullptr && percentile(floor->rtt_us, 0.5) > 0 && cpu_us_per_value(*floor) > 0)
    std::printf("  (x%.2f, CPU x%.2f the floor's)", median / percentile(floor->rtt_us, 0.5),
                cpu_us_per_value(p) / cpu_us_per_value(*floor));
  std::printf("\n");
}

bool is_flood(const xmtest::RecordedRequest& r, const char* host_prefix) {
  const auto body = xmtest::parse_json(r.body);
  return xmtest::json_string_member(body.get(), "name").rfind(host_prefix, 0) != 0;
}

std::optional<Clock::time_point> first_flood_page(const xmtest::Standin& xm, const char* host_prefix) {
  for (const auto& r : xm.requests())
    if (r.function_id == "outage" && r.status / 100 == 2 && is_flood(r, host_prefix)) return r.time;
  return std::nullopt;
}

std::size_t count_fn(const xmtest::Standin& xm, const char* fn) {
  std::size_t n = 0;
  for (const auto& r : xm.requests()) n += r.function_id == fn && r.status / 100 == 2;
  return n;
}

// --- the storm -------------------------------------------------------------------------

void storm(const Options& o) {
  xmtest::Standin xm;
  CollectdProcess c(aggregator(xmatters(xm, "value_list")));
  if (!c.start()) throw std::runtime_error("collectd did not start: " + c.log());
  std::vector<Value> all;
  for (int l = 0; l < o.storm_lists; ++l)
    for (int h = 0; h < o.storm_hosts; ++h) all.push_back({host_name("storm", h), l});
  put(c, all, 50);
  const auto t0 = Clock::now();
  const Pass failing = put(c, all, 95);
  xmtest::wait_until([&] { return first_flood_page(xm, "storm").has_value(); }, 120s);
  const auto flood = first_flood_page(xm, "storm");
  const std::size_t pages = count_fn(xm, "outage");
  const auto t1 = Clock::now();
  put(c, all, 50);
  // Every page's clear: as many clears as outage_ids paged.
  std::size_t outage_ids = 0;
  const bool cleared = xmtest::wait_until(
      [&] {
        std::vector<std::string> ids;
        for (const auto& r : xm.requests())
          if (r.function_id == "outage") ids.push_back(xmtest::json_string_member(xmtest::parse_json(r.body).get(), "outage_id"));
        std::sort(ids.begin(), ids.end());
        outage_ids = static_cast<std::size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
        return outage_ids > 0 && count_fn(xm, "clear") >= outage_ids;
      },
      300s);
  const auto t2 = Clock::now();
  std::printf("storm: %zu outages on %d hosts at once, FloodLimit 4, GroupBy value_list\n", all.size(), o.storm_hosts);
  print_pass("xmatters", "FAILUREs", failing);
  std::printf("  outage events %zu (%zu outage_ids) in the first %.1f s; flood outage paged %s after the first FAILURE\n",
              pages, outage_ids, secs(t1 - t0),
              flood ? (std::to_string(secs(*flood - t0)).substr(0, 5) + " s").c_str() : "never");
  std::printf("  all %zu clears %s %.1f s after the recovery began; outage events in all %zu, requests %zu\n",
              count_fn(xm, "clear"), cleared ? "in" : "NOT ALL in", secs(t2 - t1), count_fn(xm, "outage"),
              xm.request_count());
}

// --- the fleet ----------------------------------------------------------------------------

struct FleetRun {
  Pass first, minute[8];
  long long rss_start = 0, rss_base = 0, rss_after[8] = {}, hwm = 0;
  std::optional<double> flood_s;
  std::size_t outage_events = 0;
  std::optional<double> open_outages, queue_length;
};

FleetRun fleet_run(const Options& o, bool with_plugin, std::size_t per_minute, int minutes) {
  xmtest::Standin xm;
  CollectdProcess c(aggregator(with_plugin ? xmatters(xm, "host") : ""));
  if (!c.start()) throw std::runtime_error("collectd did not start: " + c.log());
  FleetRun run;
  run.rss_start = settled_rss(c.pid());
  std::vector<Value> all;
  all.reserve(static_cast<std::size_t>(o.hosts) * static_cast<std::size_t>(o.lists));
  for (int h = 0; h < o.hosts; ++h)
    for (int l = 0; l < o.lists; ++l) all.push_back({host_name("fleet", h), l});
  run.first = put(c, all, 50);  // first values: an OKAY each, nothing sent
  run.rss_base = settled_rss(c.pid());
  // Minute m fails list m of per_minute hosts spread over the fleet: the
  // first minute opens per_minute host outages of one member each, every
  // later one adds a member to each of them.
  const auto t0 = Clock::now();
  for (int m = 0; m < minutes; ++m) {
    if (m > 0 && with_plugin) std::this_thread::sleep_until(t0 + std::chrono::seconds(o.minute_s) * m);
    std::vector<Value> failing;
    for (std::size_t i = 0; i < per_minute; ++i)
      failing.push_back({host_name("fleet", static_cast<int>(i * static_cast<std::size_t>(o.hosts) / per_minute)), m});
    run.minute[m] = put(c, failing, 95);
    if (m == 0 && with_plugin) {
      xmtest::wait_until([&] { return first_flood_page(xm, "fleet").has_value(); }, 90s);
      if (const auto f = first_flood_page(xm, "fleet")) run.flood_s = secs(*f - t0);
    }
    run.rss_after[m] = settled_rss(c.pid());
  }
  run.hwm = status_kb(c.pid(), "VmHWM");
  run.outage_events = count_fn(xm, "outage");
  if (with_plugin) {
    std::this_thread::sleep_for(1500ms);  // a ReportStats interval
    run.open_outages = c.getval("testhost/xmatters-ops/count-open_outages");
    run.queue_length = c.getval("testhost/xmatters-ops/queue_length");
  }
  return run;
}

void fleet(const Options& o) {
  const std::size_t lists = static_cast<std::size_t>(o.hosts) * static_cast<std::size_t>(o.lists);
  const std::size_t per_minute =
      std::min(static_cast<std::size_t>(o.hosts), static_cast<std::size_t>(static_cast<double>(lists) * o.fail_pct / 100));
  const int minutes = std::clamp(o.minutes, 1, std::min(8, o.lists));
  std::printf("fleet: %d hosts x %d value lists = %zu, %zu failing per minute (%.2g %%) for %d minute(s) of %d s, "
              "GroupBy host, FloodLimit 4\n",
              o.hosts, o.lists, lists, per_minute, o.fail_pct, minutes, o.minute_s);
  const FleetRun floor = fleet_run(o, false, per_minute, minutes);
  const FleetRun xm = fleet_run(o, true, per_minute, minutes);
  print_pass("floor", "first values (OKAYs)", floor.first);
  print_pass("xmatters", "first values (OKAYs)", xm.first, &floor.first);
  for (int m = 0; m < minutes; ++m) {
    const std::string what = "minute " + std::to_string(m + 1) + (m == 0 ? " (new outages)" : " (new members)");
    print_pass("floor", what.c_str(), floor.minute[m]);
    print_pass("xmatters", what.c_str(), xm.minute[m], &floor.minute[m]);
  }
  const auto per = [&](const FleetRun& r, int m) {
    return r.rss_after[m] - (m == 0 ? r.rss_base : r.rss_after[m - 1]);
  };
  // Every value list's first value reaches the plugin as an OKAY: what it
  // keeps per key it has seen (the time of its last notification).
  const long long seen = (xm.rss_base - xm.rss_start) - (floor.rss_base - floor.rss_start);
  std::printf("  VmRSS at the start: floor %lld kB, xmatters %lld kB; after the first values: floor %lld kB, xmatters "
              "%lld kB (%.0f bytes per key seen); VmHWM at the end: floor %lld kB, xmatters %lld kB\n",
              floor.rss_start, xm.rss_start, floor.rss_base, xm.rss_base,
              1024.0 * static_cast<double>(seen) / static_cast<double>(lists), floor.hwm, xm.hwm);
  for (int m = 0; m < minutes; ++m) {
    const long long d = per(xm, m) - per(floor, m);
    std::printf("  minute %d: VmRSS +%lld kB (floor +%lld kB): %.0f bytes per %s\n", m + 1, per(xm, m), per(floor, m),
                1024.0 * static_cast<double>(d) / static_cast<double>(per_minute),
                m == 0 ? "open host outage (with its first member key)" : "member key");
  }
  std::printf("  flood outage paged %s after the first FAILURE; outage events sent %zu; ReportStats open_outages %s, "
              "queue_length %s\n",
              xm.flood_s ? (std::to_string(*xm.flood_s).substr(0, 5) + " s").c_str() : "never", xm.outage_events,
              xm.open_outages ? std::to_string(*xm.open_outages).c_str() : "?",
              xm.queue_length ? std::to_string(*xm.queue_length).c_str() : "?");
}


// --- the churn ----------------------------------------------------------------------------

// Bytes of the regular files in dir whose names start with prefix.
long long dir_bytes(const std::string& dir, const std::string& prefix = "") {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  long long total = 0;
  while (const dirent* e = ::readdir(d)) {
    struct stat st {};
    if (std::string(e->d_name).rfind(prefix, 0) == 0 && ::stat((dir + "/" + e->d_name).c_str(), &st) == 0 &&
        S_ISREG(st.st_mode))
      total += st.st_size;
  }
  ::closedir(d);
  return total;
}

struct Churn {
  int keys = 0;
  long long rss = 0, anon = 0, spool = 0, segments = 0, hwm = 0;
  double storm_s = 0, settle_s = 0;
  bool delivered = false;
};

// keys distinct value lists (one host each) fail and recover once each,
// through PUTNOTIF as the threshold plugin would dispatch them; every page
// and clear delivered, then what collectd keeps once the spool's compaction
// has settled.
Churn churn_run(int keys) {
  xmtest::Standin xm;
  // QueueLimit: all FAILUREs are put before the first is delivered; none may be dropped.
  CollectdProcess c("LoadPlugin xmatters\n<Plugin xmatters>\n  QueueLimit 1000000\n  <Integration \"ops\">\n"
                    "    OutageURL \"" + xm.url("outage") + "\"\n    ClearURL \"" + xm.url("clear") +
                    "\"\n    SendClear true\n    FloodLimit 0\n  </Integration>\n</Plugin>\n");
  if (!c.start()) throw std::runtime_error("collectd did not start: " + c.log());
  Churn r;
  r.keys = keys;
  const auto t0 = Clock::now();
  const std::string now = " time=" + std::to_string(std::time(nullptr));
  for (const char* severity : {"failure", "okay"})
    for (int i = 0; i < keys; ++i)
      if (!c.unixsock()
               .command(std::string("PUTNOTIF severity=") + severity + now + " host=key-" + std::to_string(i) +
                        " plugin=churn type=gauge message=\"value crossed the failure threshold\"")
               .ok())
        throw std::runtime_error("PUTNOTIF refused");
  r.delivered = xm.wait_for_accepted(2 * static_cast<std::size_t>(keys), 600s);
  r.storm_s = secs(Clock::now() - t0);
  xm.clear();  // the stand-in's record is this process's memory, not collectd's
  // Compaction runs at most once a second after the last acknowledgement:
  // settled once SpoolDir's bytes have not fallen for 3 s.
  const std::string spool = c.base_dir() + "/xmatters";
  const auto t1 = Clock::now();
  r.spool = dir_bytes(spool);
  for (auto since = Clock::now(); Clock::now() - since < 3s && Clock::now() - t1 < 120s;) {
    std::this_thread::sleep_for(250ms);
    const long long bytes = dir_bytes(spool);
    if (bytes < r.spool) since = Clock::now();
    r.spool = bytes;
  }
  r.settle_s = secs(Clock::now() - t1);
  r.segments = dir_bytes(spool, "spool-");
  r.rss = settled_rss(c.pid());
  r.anon = status_kb(c.pid(), "RssAnon");
  r.hwm = status_kb(c.pid(), "VmHWM");
  return r;
}

void churn(const Options& o) {
  std::printf("churn: N distinct keys failing and recovering once each, SendClear, all delivered, each N in a fresh "
              "collectd\n");
  std::vector<Churn> runs;
  for (const int keys : {0, 1000, o.churn_keys}) {
    runs.push_back(churn_run(keys));
    const Churn& r = runs.back();
    std::printf("  %7d keys: VmRSS %6lld kB, RssAnon %6lld kB, SpoolDir %8lld bytes (segments %lld); VmHWM %7lld kB; "
                "%s in %.1f s, spool settled in %.1f s\n",
                r.keys, r.rss, r.anon, r.spool, r.segments, r.hwm, r.delivered ? "all delivered" : "NOT ALL DELIVERED",
                r.storm_s, r.settle_s);
  }
  const Churn &base = runs[0], &small = runs[1], &large = runs[2];
  const auto ratio = [](long long a, long long b) {
    return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0;
  };
  std::printf("  %d / %d keys: VmRSS x%.2f (rise above N=0: +%lld vs +%lld kB, x%.2f), RssAnon x%.2f (+%lld vs +%lld kB, "
              "x%.2f), SpoolDir x%.2f\n",
              large.keys, small.keys, ratio(large.rss, small.rss), large.rss - base.rss, small.rss - base.rss,
              ratio(large.rss - base.rss, small.rss - base.rss), ratio(large.anon, small.anon), large.anon - base.anon,
              small.anon - base.anon, ratio(large.anon - base.anon, small.anon - base.anon),
              ratio(large.spool, small.spool));
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress as it comes, also into a file
  try {
    if (o.storm) storm(o);
    if (o.fleet) fleet(o);
    if (o.churn) churn(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fleet: %s\n", e.what());
    return 1;
  }
  return 0;
}
