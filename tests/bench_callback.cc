// `make bench`: what the notification callback costs collectd, measured
// through the fake collectd host with the real pipeline behind it (router,
// tracker, payload, spool, delivery to the stand-in on loopback), each
// situation in a plugin of its own, next to peers measured in the same run:
// a bare write(2) of one event-sized record (what taking an event into
// custody costs a plugin that appends with a system call), the same after
// each of the pauses that precede the calls of the paced cases (on a
// virtual machine a thread that slept runs its next microseconds several
// times slower, whatever it runs) or just before and after the calls of
// the others, and a synchronous HTTP POST per notification (what a plugin
// that sends from collectd's thread costs it). Timings are reported, never
// asserted.
#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <malloc.h>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fake_collectd.h"
#include "standin.h"
#include "testing.h"

extern "C" void module_register(void);

namespace {

using xmatters::ConfigNode;
using xmatters::ConfigValue;
using Micros = std::chrono::duration<double, std::micro>;

struct Result {
  std::string name;
  double median_us;
  double p99_us;
  std::size_t samples;
  double faults = -1;  // page faults per call, when counted
  // Its paired peer's median: a write(2) after each of the same pauses,
  // measured between the calls (a paced row), or the write(2)s made just
  // before and just after the row (a row of calls back to back); 0:
  // compared with the plain write(2) peer.
  double paired_peer_us = 0;
  const char* paired_peer = "";  // how it was measured
};

// Timings of the calls, and the page faults they took: in a virtual
// machine a first touch of a fresh page can cost more than everything else
// a callback does.
struct Samples {
  std::vector<double> us;
  long faults = 0;
  // A paced run's paired peer: a write(2) timed after each pause.
  std::vector<double> peer_us;
};

Result summarize(const std::string& name, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {name, us[us.size() / 2], us[us.size() * 99 / 100], us.size()};
}

Result summarize(const std::string& name, Samples s) {
  const double faults = static_cast<double>(s.faults) / static_cast<double>(s.us.size());
  Result r = summarize(name, std::move(s.us));
  r.faults = faults;
  if (!s.peer_us.empty()) {
    r.paired_peer_us = summarize("", std::move(s.peer_us)).median_us;
    r.paired_peer = "write(2) after each of the same pauses";
  }
  return r;
}

long thread_page_faults() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt + ru.ru_majflt;
}

// Anonymous memory: what the plugin allocates (not the pages of the code,
// which the run touches more or less of).
long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "RssAnon:") {
      status >> value;
      return value;
    }
    status.ignore(4096, '\n');
  }
  return 0;
}

ConfigNode opt(const std::string& key, std::vector<ConfigValue> values, std::vector<ConfigNode> children = {}) {
  return ConfigNode{key, std::move(values), std::move(children)};
}

class Plugin {
 public:
  Plugin(const std::string& base, const xmtest::Standin& standin) {
    fake_collectd::reset();
    fake_collectd::set_global_option("BaseDir", base);
    module_register();
    fake_collectd::OConfig ci(opt("Plugin", {ConfigValue::of("xmatters")},
                                  {opt("QueueLimit", {ConfigValue::of(1e6)}),
                                   opt("Integration", {ConfigValue::of("ops")},
                                       {opt("OutageURL", {ConfigValue::of(standin.url("outage"))}),
                                        opt("ClearURL", {ConfigValue::of(standin.url("clear"))}),
                                        // The callback's cost, not FloodLimit's pacing (its default
                                        // 4 would hold back all but four pages a minute).
                                        opt("FloodLimit", {ConfigValue::of(0.0)})})}));
    if (fake_collectd::call_config(ci.item()) != 0 || fake_collectd::call_init() != 0) {
      std::fprintf(stderr, "%s", fake_collectd::dump_log().c_str());
      std::exit(1);
    }
  }
  ~Plugin() { fake_collectd::call_shutdown(); }

  // The threshold plugin's OKAY at the first value of each of count value
  // lists (hosts from key_offset) after collectd starts: a FAILURE under
  // collectd finds its value list known to the tracker.
  void known(int count, int key_offset) { run(NOTIF_OKAY, count, count, key_offset); }

  // Times one callback per notification; host i % keys, time advancing.
  // between(i, samples), untimed, runs after the i-th.
  Samples run(int severity, int count, int keys, int key_offset,
              const std::function<void(int, Samples&)>& between = nullptr) {
    Samples samples;
    samples.us.reserve(count);
    // Counted over the whole run, not around each call: a system call
    // between two callbacks would leave the second one running cold (caches,
    // branch predictors), which is not what it costs in collectd. The
    // untimed between() is counted too; it allocates little.
    const long faults = thread_page_faults();
    for (int i = 0; i < count; ++i) {
      fake_collectd::Notif n(severity, "host" + std::to_string(key_offset + i % keys), "cpu", "percent",
                             "Host h, plugin cpu type percent: Data source \"value\" is currently 95.000000. "
                             "That is above the failure threshold of 90.000000.",
                             DOUBLE_TO_CDTIME_T(1.7e9 + clock_++ * 1e-3));
      n.meta("DataSource", "value").meta("CurrentValue", 95.0).meta("FailureMax", 90.0);
      const auto start = std::chrono::steady_clock::now();
      fake_collectd::call_notification(n.get());
      const auto end = std::chrono::steady_clock::now();
      samples.us.push_back(Micros(end - start).count());
      if (between) between(i, samples);
    }
    samples.faults = thread_page_faults() - faults;
    return samples;
  }

 private:
  long clock_ = 0;
};

// Between two calls of the idle case: the event is accepted, and the
// delivery thread that sent it has had the time to finish and go back to
// sleep (it does within a millisecond), as between two real notifications.
void idle_gap(const xmtest::Standin& standin, std::size_t accepted) {
  standin.wait_for_accepted(accepted, std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

// A write(2) of an event-sized record, appended to path.
class BareWrite {
 public:
  explicit BareWrite(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)), record_(700, 'x') {}
  ~BareWrite() { ::close(fd_); }
  BareWrite(const BareWrite&) = delete;
  BareWrite& operator=(const BareWrite&) = delete;
  // µs it took.
  double timed() {
    const auto start = std::chrono::steady_clock::now();
    if (::write(fd_, record_.data(), record_.size()) < 0) std::perror("bench: write");
    return Micros(std::chrono::steady_clock::now() - start).count();
  }

 private:
  int fd_;
  std::string record_;
};

Result bare_write(const std::string& dir, int count) {
  BareWrite w(dir + "/bare.log");
  std::vector<double> us;
  us.reserve(count);
  for (int i = 0; i < count; ++i) us.push_back(w.timed());
  return summarize("peer: write(2) of a 700-byte record", us);
}

// row(), with the write(2)s of a block made just before it and of one made
// just after it as its peer: the machine's speed drifts by a factor of
// several within minutes, and a peer measured at another time would
// compare the row with another machine.
template <typename Row>
Result with_peer_around(const std::string& dir, Row&& row) {
  constexpr int kBlock = 20000;
  const double before = bare_write(dir, kBlock).median_us;
  Result r = row();
  const double after = bare_write(dir, kBlock).median_us;
  r.paired_peer_us = (before + after) / 2;
  r.paired_peer = "write(2)s just before and after the row";
  return r;
}

Result synchronous_post(const xmtest::Standin& standin, int count) {
  CURL* curl = curl_easy_init();
  const std::string url = standin.url("sync");
  const std::string body = R"({"event_type":"outage","name":"h","description":"bench"})";
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
  std::vector<double> us;
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    curl_easy_perform(curl);
    us.push_back(Micros(std::chrono::steady_clock::now() - start).count());
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return summarize("peer: synchronous POST to xMatters on loopback", us);
}

// The situations measured; each in a plugin of its own (its own SpoolDir),
// started as under collectd: the threshold plugin's OKAY at the first value
// of each value list, 1,000 of them, and of those that will fail.
struct Situation {
  const char* name;
  bool xmatters_down;
  // The pause before each call; none: back to back.
  enum class Pace { BackToBack, Idle20ms, EveryMs } pace;
};

constexpr Situation kBurst{"FAILURE opening an outage, xMatters busy (burst)", false, Situation::Pace::BackToBack};
constexpr Situation kIdle{"FAILURE opening an outage, xMatters idle, 20 ms pause", false, Situation::Pace::Idle20ms};
constexpr Situation kEveryMs{"FAILURE opening an outage, xMatters idle, 1 ms pause", false, Situation::Pace::EveryMs};
constexpr Situation kDown{"FAILURE opening an outage, xMatters down", true, Situation::Pace::BackToBack};

// count outage-opening FAILUREs in situation; more(plugin), untimed, runs
// after them, still in the same plugin.
Samples measure(const Situation& situation, xmtest::Standin& standin, int count,
                const std::function<void(Plugin&)>& more = nullptr) {
  xmtest::TempDir base;
  if (situation.xmatters_down) standin.stop();
  Samples samples;
  {
    Plugin plugin(base.path(), standin);
    plugin.run(NOTIF_OKAY, 2000, 1000, 0);
    plugin.known(count, 0);
    const std::size_t accepted = standin.accepted_count();
    std::function<void(int)> pause;
    switch (situation.pace) {
      case Situation::Pace::BackToBack:
        break;
      case Situation::Pace::Idle20ms:
        // One outage at a time, each delivered before the next: the endpoint
        // is idle when the notification comes, as it is most of the time.
        pause = [&](int i) { idle_gap(standin, accepted + i + 1); };
        break;
      case Situation::Pace::EveryMs:
        // xMatters answering at once, collectd busy: notifications a
        // millisecond apart, as from a collectd with hundreds of values a
        // second.
        pause = [](int) { std::this_thread::sleep_for(std::chrono::milliseconds(1)); };
        break;
    }
    // A paced run's peer is measured in the same run, call by call: after
    // each pause a write(2), then the same pause again before the next
    // call (so calls are two pauses apart, each preceded by one). The
    // machine's cold costs change by a factor of several within minutes
    // (other guests); each pair sees the same.
    BareWrite peer(base / "bare.log");
    std::function<void(int, Samples&)> between;
    if (pause)
      between = [&](int i, Samples& s) {
        const auto start = std::chrono::steady_clock::now();
        pause(i);
        const auto took = std::chrono::steady_clock::now() - start;
        s.peer_us.push_back(peer.timed());
        std::this_thread::sleep_for(took);
      };
    samples = plugin.run(NOTIF_FAILURE, count, count, 0, between);
    if (more) more(plugin);
  }
  if (situation.xmatters_down) standin.restart();
  return samples;
}

// Bytes of the spool's segments under base.
std::uintmax_t spool_bytes(const std::string& base) {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(base + "/xmatters", ec))
    if (entry.path().filename().string().rfind("spool-", 0) == 0) total += entry.file_size(ec);
  return total;
}

struct Footprint {
  int keys;
  long rss_kib;              // anonymous memory kept, after malloc_trim
  long heap_kib = 0;         // of it, allocated and not freed (mallinfo2)
  std::uintmax_t spool = 0;  // bytes of segments
};

// keys distinct value lists failing and recovering once each, every event
// delivered: what stays in memory and in SpoolDir afterwards. apart: the
// stand-in runs in another process (this one is forked from it), so the
// memory it frees does not count; delivery is then waited for as the spool
// emptying (an empty SNAPSHOT).
Footprint keys_failing_once(xmtest::Standin& standin, int keys, bool apart = false) {
  xmtest::TempDir base;
  Footprint f{keys, 0};
  if (!apart) standin.clear();
  malloc_trim(0);
  const long before = rss_kib();
  const long heap_before = static_cast<long>(mallinfo2().uordblks / 1024);
  {
    Plugin plugin(base.path(), standin);
    plugin.run(NOTIF_FAILURE, keys, keys, 0);
    plugin.run(NOTIF_OKAY, keys, keys, 0);
    const bool delivered =
        apart ? xmtest::wait_until([&] { return spool_bytes(base.path()) == 9; }, std::chrono::seconds(600))
              : standin.wait_for_accepted(2 * static_cast<std::size_t>(keys), std::chrono::seconds(600));
    if (!delivered) std::fprintf(stderr, "not every event was delivered\n");
    if (!apart) standin.clear();  // the stand-in's own record of the requests is not the plugin's
    // The maintenance tick compacts within a second or two of the last
    // acknowledgement; give it until the spool stops shrinking.
    std::uintmax_t last = spool_bytes(base.path());
    for (int i = 0; i < 50; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const std::uintmax_t now = spool_bytes(base.path());
      if (now == last && i >= 15) break;
      last = now;
    }
    f.spool = last;
    fake_collectd::clear_log();  // the host's record of the log lines is not the plugin's either
    malloc_trim(0);
    f.rss_kib = rss_kib() - before;
    f.heap_kib = static_cast<long>(mallinfo2().uordblks / 1024) - heap_before;
  }
  return f;
}

}  // namespace

// `bench_callback keys`: only the footprint rows; `keys-apart`: the same with
// the stand-in in another process (the plugin's memory alone).
// `bench_callback burst|idle|ms|down N`: only N outage-opening callbacks in
// that situation, for perf, callgrind or lackey to look at.
int profile(const std::string& mode, int count) {
  const std::map<std::string, const Situation*> modes = {
      {"burst", &kBurst}, {"idle", &kIdle}, {"ms", &kEveryMs}, {"down", &kDown}};
  const auto found = modes.find(mode);
  if (found == modes.end()) {
    std::fprintf(stderr, "usage: bench_callback [burst|idle|ms|down N]\n");
    return 2;
  }
  xmtest::Standin standin;
  const Result r = summarize(found->second->name, measure(*found->second, standin, count));
  std::printf("%s: median %.2f µs, p99 %.2f µs, %.2f page faults per call", r.name.c_str(), r.median_us, r.p99_us,
              r.faults);
  if (r.paired_peer_us > 0) std::printf(", write(2) after the same pauses %.2f µs", r.paired_peer_us);
  std::printf("\n");
  return 0;
}

// keys_failing_once in a child process, the stand-in staying in this one.
Footprint keys_failing_once_apart(xmtest::Standin& standin, int keys) {
  int fds[2];
  if (::pipe(fds) != 0) std::exit(1);
  const pid_t child = ::fork();
  if (child < 0) std::exit(1);
  if (child == 0) {
    ::close(fds[0]);
    const Footprint f = keys_failing_once(standin, keys, true);
    const bool sent = ::write(fds[1], &f, sizeof f) == static_cast<ssize_t>(sizeof f);
    ::_exit(sent ? 0 : 1);
  }
  ::close(fds[1]);
  Footprint f{keys, 0};
  if (::read(fds[0], &f, sizeof f) != static_cast<ssize_t>(sizeof f)) std::fprintf(stderr, "the child failed\n");
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  standin.clear();
  return f;
}

void print_footprints(xmtest::Standin& standin, bool apart) {
  std::printf("\nfootprint after N distinct keys failed and recovered once each, all delivered%s:\n",
              apart ? " (the stand-in in another process)" : "");
  for (const int keys : {1000, 200000}) {
    const Footprint f = apart ? keys_failing_once_apart(standin, keys) : keys_failing_once(standin, keys);
    std::printf("  %6d keys: %6ld KiB anonymous memory kept (%ld KiB of it allocated), %ju bytes in SpoolDir's segments\n",
                f.keys, f.rss_kib, f.heap_kib, f.spool);
  }
}

// Issue 12, bug 6: a notification with many meta items (a plugin may attach
// any number) costs in proportion to them, not to their square. The median
// of a few callbacks, each a FAILURE of a value list of its own with n
// distinct meta items, and the cost per item (falling: what does not fit in
// the 64 KiB body is counted, not written).
void print_meta_costs(const xmtest::Standin& standin) {
  xmtest::TempDir base;
  Plugin plugin(base.path(), standin);
  std::printf("\nnotification callback with n meta items (a FAILURE each, median of 9):\n");
  int host = 0;
  for (const int n : {20, 2000, 20000}) {
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) names.push_back("meta-" + std::to_string(i));
    std::vector<double> us;
    for (int k = 0; k < 9; ++k) {
      ++host;
      fake_collectd::Notif notif(NOTIF_FAILURE, "meta-host" + std::to_string(host), "plugin", "gauge", "many meta",
                                 DOUBLE_TO_CDTIME_T(1.7e9 + host));
      for (const std::string& name : names) notif.meta(name.c_str(), 1.5);
      const auto start = std::chrono::steady_clock::now();
      fake_collectd::call_notification(notif.get());
      us.push_back(Micros(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(us.begin(), us.end());
    std::printf("  %6d items: %10.1f µs (%.3f µs per item)\n", n, us[us.size() / 2], us[us.size() / 2] / n);
  }
}

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (argc == 2 && (std::string(argv[1]) == "keys" || std::string(argv[1]) == "keys-apart")) {
    xmtest::Standin standin;
    print_footprints(standin, std::string(argv[1]) == "keys-apart");
    curl_global_cleanup();
    return 0;
  }
  if (argc == 2 && std::string(argv[1]) == "meta") {
    xmtest::Standin standin;
    print_meta_costs(standin);
    curl_global_cleanup();
    return 0;
  }
  if (argc == 3) return profile(argv[1], std::atoi(argv[2]));
  std::vector<Result> results;
  xmtest::Standin standin;
  long rss_before = 0, rss_after = 0;
  const int kOutages = 20000;
  {
    xmtest::TempDir base;
    Plugin plugin(base.path(), standin);
    plugin.run(NOTIF_OKAY, 2000, 1000, 0);
    results.push_back(summarize("OKAY without an outage (start-up storm, noise)", plugin.run(NOTIF_OKAY, 200000, 1000, 0)));
  }
  xmtest::TempDir scratch;
  rss_before = rss_kib();
  Samples persist;  // in the burst's plugin, its outages open
  results.push_back(with_peer_around(scratch.path(), [&] {
    return summarize(kBurst.name, measure(kBurst, standin, kOutages, [&](Plugin& plugin) {
      rss_after = rss_kib();
      persist = plugin.run(NOTIF_FAILURE, 200000, kOutages, 0);
    }));
  }));
  results.push_back(summarize("FAILURE repeated for an open outage (Persist)", std::move(persist)));
  results.push_back(summarize(kIdle.name, measure(kIdle, standin, 500)));
  results.push_back(summarize(kEveryMs.name, measure(kEveryMs, standin, 2000)));
  results.push_back(
      with_peer_around(scratch.path(), [&] { return summarize(kDown.name, measure(kDown, standin, kOutages)); }));
  results.push_back(bare_write(scratch.path(), 200000));
  const double plain_write = results.back().median_us;
  results.push_back(synchronous_post(standin, 2000));
  const double sync = results.back().median_us;

  std::printf("%-52s %10s %10s %9s %12s %12s %12s\n", "notification callback", "median µs", "p99 µs", "samples",
              "/ write(2)", "sync POST /", "faults/call");
  for (const auto& r : results) {
    const double peer = r.paired_peer_us > 0 ? r.paired_peer_us : plain_write;
    std::printf("%-52s %10.2f %10.2f %9zu %11.1f%s %12.1f", r.name.c_str(), r.median_us, r.p99_us, r.samples,
                r.median_us / peer, r.paired_peer_us > 0 ? "*" : " ", sync / r.median_us);
    if (r.faults >= 0) std::printf(" %12.2f", r.faults);
    std::printf("\n");
    if (r.paired_peer_us > 0)
      std::printf("  * peer: %-44s %10.2f\n", r.paired_peer, r.paired_peer_us);
  }
  std::printf("\nmemory: %ld KiB resident for %d open outages (%.0f bytes per outage, tracker and queue)\n",
              rss_after - rss_before, kOutages, (rss_after - rss_before) * 1024.0 / kOutages);
  print_footprints(standin, false);
  print_meta_costs(standin);
  curl_global_cleanup();
  return 0;
}
