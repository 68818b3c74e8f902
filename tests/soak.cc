// The soak (make bench; not part of make check): a real collectd with the
// plugin, random PUTNOTIF FAILUREs and OKAYs over a few thousand value lists
// for SECONDS (argv[1], default 3600), the xMatters stand-in failing about
// 10 % of the requests (503), and collectd restarted every RESTART seconds
// (argv[2], default 180). At the end every open outage gets its OKAY, and
// the soak checks that every outage was paged exactly once and cleared
// exactly once, and prints collectd's resident memory and the size of
// SpoolDir, sampled every minute (just before each restart too), for
// doc/benchmarks.md. Exit status 0 when every outage checks out.
#include <dirent.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collectd_harness.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr int kKeys = 3000;
constexpr int kRate = 40;  // notifications per second

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

long dir_bytes(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return 0;
  long total = 0;
  while (const dirent* e = ::readdir(d)) {
    struct stat st {};
    if (::stat((path + "/" + e->d_name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
  }
  ::closedir(d);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const auto seconds = std::chrono::seconds(argc > 1 ? std::atol(argv[1]) : 3600);
  const auto restart_every = std::chrono::seconds(argc > 2 ? std::atol(argv[2]) : 180);

  xmtest::Standin xm;
  // 10 % of the requests fail, at random; scripted for far more requests
  // than the soak makes, after which every request succeeds.
  std::mt19937_64 rng(14);
  {
    std::vector<xmtest::Standin::Reply> replies(2000000);
    std::bernoulli_distribution fails(0.1);
    for (auto& r : replies)
      if (fails(rng)) r.status = 503;
    xm.script(std::move(replies));
  }
  xmtest::CollectdProcess c("LoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"soak\">\n    OutageURL \"" +
                            xm.url("outage-fn") + "\"\n    ClearURL \"" + xm.url("clear-fn") +
                            "\"\n    Timeout 5\n    FloodLimit 0\n  </Integration>\n</Plugin>\n");
  if (!c.start()) {
    std::fprintf(stderr, "soak: collectd did not start:\n%s\n", c.log().c_str());
    return 1;
  }
  const std::string spool = c.base_dir() + "/xmatters";

  std::vector<bool> open(kKeys, false);  // the model: which keys have an open outage
  std::size_t outages = 0, clears = 0, notifications = 0, restarts = 0;
  std::uniform_int_distribution<int> key(0, kKeys - 1);
  std::bernoulli_distribution failure(0.5);
  auto send = [&](int k, bool fail) {
    const bool ok = c.putnotif(fail ? "failure" : "okay", "host=soak plugin=soak plugin_instance=k" + std::to_string(k),
                               fail ? "soak failure" : "soak okay");
    if (!ok) {
      std::fprintf(stderr, "soak: PUTNOTIF refused\n");
      std::exit(1);
    }
    ++notifications;
    if (fail && !open[k]) ++outages;
    if (!fail && open[k]) ++clears;
    open[k] = fail;
  };

  std::printf("minute  collectd RSS (KB)  SpoolDir (bytes)  accepted  outages opened\n");
  const auto begin = Steady::now();
  auto next_sample = begin + 60s, next_restart = begin + restart_every;
  int minute = 0;
  const auto sample = [&](const char* note) {
    std::printf("%6d  %17ld  %16ld  %8zu  %14zu %s\n", minute, rss_kb(c.pid()), dir_bytes(spool),
                xm.accepted_count(), outages, note);
    std::fflush(stdout);
  };
  for (auto tick = begin; Steady::now() - begin < seconds; tick += std::chrono::milliseconds(1000 / kRate)) {
    std::this_thread::sleep_until(tick);
    send(key(rng), failure(rng));
    if (Steady::now() >= next_sample) {
      ++minute;
      sample("");
      next_sample += 60s;
    }
    if (Steady::now() >= next_restart) {
      sample("(restart)");
      if (!c.restart()) {
        std::fprintf(stderr, "soak: collectd did not restart:\n%s\n", c.log_since_start().c_str());
        return 1;
      }
      ++restarts;
      next_restart = Steady::now() + restart_every;
      tick = Steady::now();
    }
  }
  for (int k = 0; k < kKeys; ++k)
    if (open[k]) send(k, false);

  // Every outage's event and clear accepted once; 10 % failures and their
  // backoff make the last ones take a while.
  const bool drained = xm.wait_for_accepted(2 * outages, 600s);
  sample("(end)");
  c.stop();

  std::map<std::string, std::pair<int, int>> by_outage;  // outage_id -> accepted outage events, clears
  std::set<std::string> event_ids;
  std::size_t duplicates = 0, failed = 0;
  for (const auto& r : xm.requests()) {
    if (r.status < 200 || r.status > 299) {
      ++failed;
      continue;
    }
    const auto body = xmtest::parse_json(r.body);
    const std::string id = xmtest::json_string_member(body.get(), "outage_id");
    const std::string type = xmtest::json_string_member(body.get(), "event_type");
    if (!event_ids.insert(xmtest::json_string_member(body.get(), "event_id")).second) ++duplicates;
    auto& counts = by_outage[id];
    (type == "clear" ? counts.second : counts.first) += 1;
  }
  std::size_t bad = 0;
  for (const auto& [id, counts] : by_outage)
    if (counts.first != 1 || counts.second != 1) ++bad;

  std::printf(
      "soak: %lld s, %zu notifications over %d keys, %zu restarts; %zu outages opened and %zu cleared by the "
      "model; xMatters failed %zu requests and accepted %zu events of %zu outages; %zu outages with other than "
      "one page and one clear, %zu events accepted twice%s\n",
      static_cast<long long>(seconds.count()), notifications, kKeys, restarts, outages, clears,
      failed, event_ids.size(), by_outage.size(), bad, duplicates, drained ? "" : "; NOT DRAINED within 600 s");
  const bool ok = drained && bad == 0 && duplicates == 0 && by_outage.size() == outages;
  std::printf("soak: %s\n", ok ? "every outage paged exactly once and cleared exactly once" : "FAILED");
  return ok ? 0 : 1;
}
