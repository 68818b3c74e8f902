// `make bench`, second part: what a notification plugin costs a real
// collectd, next to what users run today. One real collectd (Debian's, run
// by tests/collectd_harness) per configuration and receiver; a storm of N
// distinct FAILUREs through one unixsock connection (PUTNOTIF, one host per
// notification, so that each opens an outage); then an idle window.
// Configurations: no notification plugin (the floor), write_http
// `Notifications true`, exec `NotificationExec` + curl, this plugin.
// Receivers: nginx answering 202 (fast), the stand-in answering 202 after
// 100 ms (slow), a closed loopback port (down). Method and one run's table:
// doc/benchmarks.md. Numbers are reported, never asserted.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
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

struct Options {
  std::size_t n = 2000;        // notifications per storm (fast and down receivers)
  std::size_t n_slow = 100;    // per storm against the slow receiver
  std::size_t n_exec = 50;     // per storm of exec + curl (a process per notification)
  int idle_s = 10;             // idle window after the storm, in the first round
  int rounds = 3;              // the configurations in alternation, this many times
  int deliver_timeout_s = 60;  // the longest wait for the receiver to have them all
  std::size_t latency = 20;    // pages, one at a time with the queue empty, per configuration and round
  std::string only;            // "receiver" or "receiver:config": run just those
  std::string profile;         // a command run during the storm of the selected runs; {pid} is collectd's
};

// --- collectd's process, from /proc ---------------------------------------------

// utime + stime (+ cutime + cstime: the children collectd waited for, such
// as exec's programs) of every thread, dead ones included, in clock ticks.
struct Cpu {
  long long own = 0;
  long long children = 0;
};

Cpu cpu_of(pid_t pid) {
  const std::string stat = xmtest::read_file("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t paren = stat.rfind(')');
  Cpu c;
  if (paren == std::string::npos) return c;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  // After the comm: state is field 3; utime, stime, cutime, cstime are 14-17.
  long long v[4] = {0, 0, 0, 0};
  for (int i = 3; i <= 17 && in >> field; ++i)
    if (i >= 14) v[i - 14] = std::atoll(field.c_str());
  c.own = v[0] + v[1];
  c.children = v[2] + v[3];
  return c;
}

double ticks_to_ms(long long ticks) { return 1000.0 * static_cast<double>(ticks) / ::sysconf(_SC_CLK_TCK); }

long long status_field(const std::string& status, const std::string& name) {
  const std::size_t at = status.find("\n" + name + ":");
  return at == std::string::npos ? 0 : std::atoll(status.c_str() + at + name.size() + 2);
}

long long peak_rss_kb(pid_t pid) {
  return status_field(xmtest::read_file("/proc/" + std::to_string(pid) + "/status"), "VmHWM");
}

// Voluntary + involuntary context switches per live thread (by tid, with
// its name): each is one time a thread stopped running, so one wake-up of it.
struct ThreadSwitches {
  std::string name;
  long long count = 0;
};

std::map<std::string, ThreadSwitches> switches_by_thread(pid_t pid) {
  std::map<std::string, ThreadSwitches> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return out;
  while (const dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    const std::string task = dir + "/" + e->d_name;
    const std::string status = xmtest::read_file(task + "/status");
    std::string name = xmtest::read_file(task + "/comm");
    if (!name.empty() && name.back() == '\n') name.pop_back();
    out[e->d_name] = {name, status_field(status, "voluntary_ctxt_switches") +
                                status_field(status, "nonvoluntary_ctxt_switches")};
  }
  return out;
}

// The switches since before: in all, of the plugin's own threads (named
// "xm-..."), and the busiest threads' as text.
struct Switches {
  long long all = 0, own = 0;
  std::string busiest;
};
Switches switches_since(const std::map<std::string, ThreadSwitches>& before,
                        const std::map<std::string, ThreadSwitches>& after, int seconds) {
  Switches out;
  std::vector<std::pair<long long, std::string>> by_thread;
  for (const auto& [tid, t] : after) {
    auto b = before.find(tid);
    const long long d = t.count - (b != before.end() ? b->second.count : 0);
    out.all += d;
    if (t.name.rfind("xm-", 0) == 0) out.own += d;
    by_thread.emplace_back(d, t.name);
  }
  std::sort(by_thread.rbegin(), by_thread.rend());
  for (std::size_t i = 0; i < by_thread.size() && i < 3 && by_thread[i].first > 0; ++i) {
    char b[96];
    std::snprintf(b, sizeof b, "%s%s %.1f/s", i > 0 ? ", " : "", by_thread[i].second.c_str(),
                  static_cast<double>(by_thread[i].first) / seconds);
    out.busiest += b;
  }
  return out;
}

// Waits (at most 10 s) until the plugin's threads have finished with the
// storm (its spool's compaction): a second in which none of them woke.
// Returns the seconds waited; 10 when they did not (with the receiver down,
// events wait for their retries).
int settle(pid_t pid) {
  for (int s = 0; s < 10; ++s) {
    const auto before = switches_by_thread(pid);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (switches_since(before, switches_by_thread(pid), 1).own == 0) return s;
  }
  return 10;
}

// --- receivers -------------------------------------------------------------------

// A loopback port bound and not listening: connections to it are refused,
// and nothing else can take it while it is held.
class ClosedPort {
 public:
  ClosedPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("cannot bind a loopback port");
    port_ = ntohs(a.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  unsigned port() const { return port_; }

 private:
  int fd_;
  unsigned port_ = 0;
};

// nginx as one unprivileged foreground process (nobody, when the bench runs
// as root) with its own prefix, pid and logs in a temporary directory,
// answering every request 202 with a requestId; its access log has one line
// per request.
class Nginx {
 public:
  Nginx() {
    unsigned port;
    {
      ClosedPort probe;  // a free port, released just before nginx binds it
      port = probe.port();
    }
    const passwd* nobody = ::geteuid() == 0 ? ::getpwnam("nobody") : nullptr;
    if (nobody != nullptr && ::chown(dir_.path().c_str(), nobody->pw_uid, nobody->pw_gid) != 0)
      throw std::runtime_error("cannot chown nginx's directory");
    std::ostringstream conf;
    conf << "daemon off;\nmaster_process off;\npid " << (dir_ / "nginx.pid") << ";\n"
         << "error_log " << (dir_ / "error.log") << " warn;\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n  access_log " << (dir_ / "access.log") << ";\n"
         // Every temporary path in the prefix: the compiled-in ones under
         // /var/lib/nginx may be missing or not writable by nobody.
         << "  client_body_temp_path " << (dir_ / "body") << ";\n"
         << "  proxy_temp_path " << (dir_ / "proxy") << ";\n"
         << "  fastcgi_temp_path " << (dir_ / "fastcgi") << ";\n"
         << "  uwsgi_temp_path " << (dir_ / "uwsgi") << ";\n"
         << "  scgi_temp_path " << (dir_ / "scgi") << ";\n"
         << "  server {\n    listen 127.0.0.1:" << port << ";\n"
         << "    location / { default_type application/json; return 202 '{\"requestId\":\"x\"}'; }\n"
         << "  }\n}\n";
    xmtest::write_file(dir_ / "nginx.conf", conf.str());
    const std::string bin = "/usr/sbin/nginx", prefix = dir_.path() + "/", cfg = dir_ / "nginx.conf",
                      err = dir_ / "error.log";
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      if (nobody != nullptr &&
          (::setgroups(0, nullptr) != 0 || ::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0))
        ::_exit(126);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // after setuid, which clears it
      ::execl(bin.c_str(), bin.c_str(), "-p", prefix.c_str(), "-c", cfg.c_str(), "-e", err.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    url_ = "http://127.0.0.1:" + std::to_string(port) + "/api/integration/1/functions/f/triggers?apiKey=k";
    const bool up = xmtest::wait_until([&] { return xmtest::file_exists(dir_ / "nginx.pid") && accepts(port); }, 10s);
    if (!up) throw std::runtime_error("nginx did not start: " + xmtest::read_file(err));
  }
  ~Nginx() {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;
  const std::string& url() const { return url_; }
  std::size_t requests() const {
    const std::string log = xmtest::read_file(dir_ / "access.log");
    return static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n'));
  }

 private:
  static bool accepts(unsigned port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }
  xmtest::TempDir dir_;
  pid_t pid_ = -1;
  std::string url_;
};

struct Receiver {
  std::string name;
  std::string url;
  std::function<std::size_t()> received;  // requests that reached it so far
  bool reachable;
};

// --- the configurations -----------------------------------------------------------

struct Config {
  std::string name;
  bool delivers;                            // false: the floor, which sends nothing
  std::vector<std::string> system_plugins;  // beside the harness's own
  std::function<std::string(const std::string& url)> block;
};

// The exec plugin runs nothing as root: its program runs as this user.
std::string exec_user() {
  if (::geteuid() == 0) return "nobody";
  const passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : "nobody";
}

std::vector<Config> configs(const std::string& script) {
  return {
      {"floor (no notification plugin)", false, {}, [](const std::string&) { return std::string(); }},
      {"write_http", true, {"write_http"},
       [](const std::string& url) {
         return "LoadPlugin write_http\n<Plugin write_http>\n  <Node \"bench\">\n    URL \"" + url +
                "\"\n    Format \"JSON\"\n    Metrics false\n    Notifications true\n  </Node>\n</Plugin>\n";
       }},
      {"exec + curl", true, {"exec"},
       [script](const std::string& url) {
         return "LoadPlugin exec\n<Plugin exec>\n  NotificationExec \"" + exec_user() + "\" \"" + script + "\" \"" +
                url + "\"\n</Plugin>\n";
       }},
      {"xmatters", true, {},
       [](const std::string& url) {
         return "LoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"bench\">\n    OutageURL \"" + url +
                "\"\n    FloodLimit 0\n  </Integration>\n</Plugin>\n";
       }},
  };
}

// --- one run ---------------------------------------------------------------------------

struct Row {
  std::string config;
  std::size_t sent = 0, delivered = 0;
  double dispatch_median_us = 0, dispatch_p99_us = 0;
  double deliver_s = 0;        // first PUTNOTIF to the receiver having them all
  double cpu_ms = 0, children_cpu_ms = 0;
  long long peak_rss_kb = 0;
  bool idle_measured = false;
  double idle_switches_per_s = 0, idle_own_per_s = 0, idle_cpu_ms = 0;
  int settle_s = 0;  // before the idle window: the plugin's threads busy after the storm
  std::string idle_busiest;  // the threads that woke most while idle
  std::size_t log_lines = 0;
  bool ok = false;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// A profiler attached to collectd for the storm and the delivery: the
// command is run with {pid} replaced, and gets SIGINT at the end.
class Profiler {
 public:
  Profiler(std::string command, pid_t target) {
    if (command.empty()) return;
    for (std::size_t at = command.find("{pid}"); at != std::string::npos; at = command.find("{pid}"))
      command.replace(at, 5, std::to_string(target));
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(1s);  // for it to attach
  }
  ~Profiler() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

 private:
  pid_t pid_ = -1;
};

// The system plugins the configuration loads, beside the harness's own.
void add_plugins(const Config& config, xmtest::CollectdProcess& c) {
  for (const auto& p : config.system_plugins) {
    const std::string from = std::string(COLLECTD_SYSTEM_PLUGINDIR) + "/" + p + ".so", to = c.dir() + "/plugins/" + p + ".so";
    if (::link(from.c_str(), to.c_str()) != 0) xmtest::write_file(to, xmtest::read_file(from));
  }
}

Row run_one(const Config& config, const Receiver& receiver, std::size_t n, const Options& opt, bool idle, bool profile) {
  Row row;
  row.config = config.name;
  xmtest::CollectdProcess c(config.block(receiver.url));
  add_plugins(config, c);
  if (!c.start()) {
    std::fprintf(stderr, "bench_collectd: collectd did not start (%s, %s):\n%s\n", config.name.c_str(),
                 receiver.name.c_str(), c.log().c_str());
    return row;
  }
  const pid_t pid = c.pid();
  const std::size_t received_before = receiver.received();
  auto& sock = c.unixsock();
  const std::string now = std::to_string(std::time(nullptr));
  std::vector<std::string> commands;
  for (std::size_t i = 0; i < n; ++i)
    commands.push_back("PUTNOTIF severity=failure time=" + now + " host=bench-" + std::to_string(i) +
                       " plugin=storm type=gauge message=\"value 95 is above the failure threshold 90\"");

  std::vector<double> us;
  us.reserve(n);
  std::optional<Profiler> profiler;
  if (profile) profiler.emplace(opt.profile, pid);
  const Cpu cpu0 = cpu_of(pid);
  const auto t0 = Clock::now();
  for (const auto& cmd : commands) {
    const auto a = Clock::now();
    if (sock.command(cmd).ok()) ++row.sent;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  // Delivered: until the receiver has them all; a receiver that is down
  // gets nothing, and the CPU is counted over the storm and 5 s more (the
  // first retries); the floor's over the storm alone.
  const auto delivered = [&] { return receiver.received() - received_before; };
  if (config.delivers && receiver.reachable)
    xmtest::wait_until([&] { return delivered() >= row.sent; }, std::chrono::seconds(opt.deliver_timeout_s));
  else if (config.delivers)
    std::this_thread::sleep_for(5s);
  row.deliver_s = std::chrono::duration<double>(Clock::now() - t0).count();
  row.delivered = delivered();
  const Cpu cpu1 = cpu_of(pid);
  profiler.reset();
  row.cpu_ms = ticks_to_ms(cpu1.own - cpu0.own);
  row.children_cpu_ms = ticks_to_ms(cpu1.children - cpu0.children);
  row.dispatch_median_us = percentile(us, 0.5);
  row.dispatch_p99_us = percentile(us, 0.99);

  // Idle: the storm is over (and delivered, where it can be): nothing happens.
  if (idle && opt.idle_s > 0) {
    row.settle_s = settle(pid);
    const auto sw0 = switches_by_thread(pid);
    const Cpu idle0 = cpu_of(pid);
    std::this_thread::sleep_for(std::chrono::seconds(opt.idle_s));
    const Switches sw = switches_since(sw0, switches_by_thread(pid), opt.idle_s);
    row.idle_switches_per_s = static_cast<double>(sw.all) / opt.idle_s;
    row.idle_own_per_s = static_cast<double>(sw.own) / opt.idle_s;
    row.idle_busiest = sw.busiest;
    const Cpu idle1 = cpu_of(pid);
    row.idle_cpu_ms = ticks_to_ms(idle1.own + idle1.children - idle0.own - idle0.children);
    row.idle_measured = true;
  }
  row.peak_rss_kb = peak_rss_kb(pid);
  c.stop();
  row.log_lines = c.log_lines({""}).size();
  row.ok = true;
  return row;
}

// --- the report ----------------------------------------------------------------------

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// The machine's speed drifts within minutes (other work shares its two
// cores), so the configurations run in alternation, round after round, and
// each ratio is taken within a round: the table gives the median over the
// rounds, and the ratios' lowest-highest.
struct Series {
  std::vector<double> values;
  void add(double v) {
    if (v >= 0) values.push_back(v);
  }
  double median() const { return values.empty() ? -1 : percentile(values, 0.5); }
  std::string range(const char* f) const {
    if (values.empty()) return "–";
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    const std::string low = fmt(f, *lo), high = fmt(f, *hi);
    return low == high ? low : low + "–" + high;
  }
};

// Per delivered event where there are some, else per notification.
double cpu_per(const Row& r) {
  const double total = r.cpu_ms + r.children_cpu_ms;
  if (r.delivered > 0) return total / static_cast<double>(r.delivered);
  return r.sent > 0 ? total / static_cast<double>(r.sent) : -1;
}
double rate(const Row& r) { return r.deliver_s > 0 && r.delivered > 0 ? static_cast<double>(r.delivered) / r.deliver_s : -1; }

// rounds[round][config]; config 0 is the floor, 1 write_http.
void print_table(const std::string& title, const std::vector<std::vector<Row>>& rounds) {
  std::printf("\n#### %s\n\n", title.c_str());
  std::printf(
      "| configuration | sent | delivered | dispatch median µs | p99 µs | ÷ floor | events/s | ÷ write_http | "
      "CPU ms per event | ÷ write_http | peak RSS MB | idle switches/s (the plugin's threads) | idle CPU ms | log lines |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  const std::size_t configs = rounds.front().size();
  for (std::size_t k = 0; k < configs; ++k) {
    Series median, p99, vs_floor, events, events_vs, cpu, cpu_vs, rss, sw, sw_own, idle_cpu;
    std::size_t sent = 0, delivered = 0, log_lines = 0, ok = 0;
    bool children = false;
    for (const auto& round : rounds) {
      const Row& r = round[k];
      if (!r.ok) continue;
      ++ok;
      sent += r.sent;
      delivered += r.delivered;
      log_lines = std::max(log_lines, r.log_lines);
      children = children || r.children_cpu_ms > 0;
      median.add(r.dispatch_median_us);
      p99.add(r.dispatch_p99_us);
      if (round[0].ok) vs_floor.add(r.dispatch_median_us / round[0].dispatch_median_us);
      events.add(rate(r));
      cpu.add(cpu_per(r));
      if (k > 1 && round[1].ok) {
        if (rate(r) > 0 && rate(round[1]) > 0) events_vs.add(rate(r) / rate(round[1]));
        if (cpu_per(round[1]) > 0) cpu_vs.add(cpu_per(r) / cpu_per(round[1]));
      }
      rss.add(static_cast<double>(r.peak_rss_kb) / 1024.0);
      if (r.idle_measured) {
        sw.add(r.idle_switches_per_s);
        sw_own.add(r.idle_own_per_s);
        idle_cpu.add(r.idle_cpu_ms);
      }
    }
    const std::string name = rounds.front()[k].config;
    if (ok == 0) {
      std::printf("| %s | not measured |\n", name.c_str());
      continue;
    }
    const bool floor = k == 0;
    const char* unit = delivered > 0 ? "" : " per notification";
    std::printf("| %s | %zu | %zu | %s | %s | %s | %s | %s | %s%s%s | %s | %s | %s | %s | %zu |\n", name.c_str(), sent,
                delivered, fmt("%.1f", median.median()).c_str(), fmt("%.0f", p99.median()).c_str(),
                floor ? "1" : vs_floor.range("%.2f").c_str(), floor ? "–" : events.range("%.0f").c_str(),
                events_vs.range("%.2f").c_str(), cpu.range("%.3f").c_str(), unit, children ? " (with its children)" : "",
                cpu_vs.range("%.2f").c_str(), rss.range("%.1f").c_str(), (sw.range("%.1f") + " (" + sw_own.range("%.1f") + ")").c_str(),
                idle_cpu.range("%.0f").c_str(), log_lines);
  }
  std::printf("\nIdle wake-ups, the busiest threads (first round, after the plugin's threads were quiet for a second):");
  for (std::size_t k = 0; k < configs; ++k)
    if (const Row& r = rounds.front()[k]; r.idle_measured)
      std::printf(" %s (quiet after %d s): %s;", r.config.c_str(), r.settle_s, r.idle_busiest.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

// Page latency with the queue empty: one FAILURE at a time, each a fifth
// of a second after the previous one arrived (the plugin's threads asleep
// by then, as between pages in production), from the PUTNOTIF until the
// receiver (the stand-in answering 202 at once, in this process, which
// notes when each request arrived) has it. Appends the milliseconds.
void run_latency(const Config& config, xmtest::Standin& receiver, std::size_t pages, const std::string& profile,
                 std::vector<double>& ms) {
  xmtest::CollectdProcess c(config.block(receiver.url("f")));
  add_plugins(config, c);
  if (!c.start()) {
    std::fprintf(stderr, "bench_collectd: collectd did not start (%s, latency):\n%s\n", config.name.c_str(), c.log().c_str());
    return;
  }
  auto& sock = c.unixsock();
  const std::string now = std::to_string(std::time(nullptr));
  std::optional<Profiler> profiler;
  if (!profile.empty()) profiler.emplace(profile, c.pid());
  for (std::size_t i = 0; i < pages; ++i) {
    std::this_thread::sleep_for(200ms);
    const std::size_t before = receiver.request_count();
    const auto sent = Clock::now();
    if (!sock.command("PUTNOTIF severity=failure time=" + now + " host=latency-" + std::to_string(i) +
                      " plugin=page type=gauge message=\"value 95 is above the failure threshold 90\"")
             .ok())
      continue;
    if (!receiver.wait_for_requests(before + 1, 10s)) continue;
    const auto got = receiver.requests();
    if (got.size() > before) ms.push_back(std::chrono::duration<double, std::milli>(got[before].time - sent).count());
  }
  profiler.reset();
  c.stop();
}

void print_latency(const std::vector<std::pair<std::string, std::vector<double>>>& by_config) {
  std::printf("\n#### page latency, the queue empty (stand-in, 202 at once)\n\n"
              "| configuration | pages | median ms | p90 ms | max ms |\n| --- | ---: | ---: | ---: | ---: |\n");
  for (const auto& [name, ms] : by_config) {
    if (ms.empty()) {
      std::printf("| %s | not measured |\n", name.c_str());
      continue;
    }
    std::printf("| %s | %zu | %s | %s | %s |\n", name.c_str(), ms.size(), fmt("%.2f", percentile(ms, 0.5)).c_str(),
                fmt("%.2f", percentile(ms, 0.9)).c_str(), fmt("%.2f", *std::max_element(ms.begin(), ms.end())).c_str());
  }
  std::fflush(stdout);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_collectd: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--n") o.n = std::stoul(next());
    else if (a == "--n-slow") o.n_slow = std::stoul(next());
    else if (a == "--n-exec") o.n_exec = std::stoul(next());
    else if (a == "--idle") o.idle_s = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::max(1, std::stoi(next()));
    else if (a == "--timeout") o.deliver_timeout_s = std::stoi(next());
    else if (a == "--latency") o.latency = std::stoul(next());
    else if (a == "--only") o.only = next();
    else if (a == "--profile") o.profile = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_collectd [--n N] [--n-slow N] [--n-exec N] [--idle S] [--rounds R] [--timeout S]\n"
                   "                      [--latency PAGES] [--only RECEIVER[:CONFIG]] [--profile 'CMD {pid}']\n"
                   "receivers: fast slow down latency; configs: floor write_http exec xmatters\n");
      std::exit(2);
    }
  }
  return o;
}

bool selected(const Options& o, const std::string& receiver, const std::string& config) {
  if (o.only.empty()) return true;
  const std::size_t colon = o.only.find(':');
  if (o.only.substr(0, colon) != receiver) return false;
  return colon == std::string::npos || config.rfind(o.only.substr(colon + 1), 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  // collectd as a systemd service runs it: a soft limit of 1024 open files
  // (exec's children close every descriptor up to it before they run).
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur > 1024) {
    files.rlim_cur = 1024;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }

  // exec's program: collectd's notification text on its stdin, POSTed by
  // curl as it is (a real script would reformat it first, costing more).
  xmtest::TempDir scripts;
  ::chmod(scripts.path().c_str(), 0755);  // for exec's user when run as root
  const std::string script = scripts / "notify-curl";
  xmtest::write_file(script,
                     "#!/bin/sh\nexec curl -sS -o /dev/null -m 10 -H 'Content-Type: application/json' "
                     "--data-binary @- \"$1\"\n");
  ::chmod(script.c_str(), 0755);

  std::optional<Nginx> nginx;
  xmtest::Standin::Reply slow_reply;
  slow_reply.status = 202;  // whatever the body (exec's is collectd's text)
  slow_reply.delay = 100ms;
  xmtest::Standin standin;
  standin.set_default_reply(slow_reply);
  ClosedPort closed;
  try {
    nginx.emplace();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_collectd: %s (Debian's nginx-light: contrib/install-deps)\n", e.what());
    return 1;
  }
  const std::vector<std::pair<Receiver, std::size_t>> receivers = {
      {{"fast", nginx->url(), [&] { return nginx->requests(); }, true}, opt.n},
      {{"slow", standin.url("f"), [&] { return standin.accepted_count(); }, true}, opt.n_slow},
      {{"down", "http://127.0.0.1:" + std::to_string(closed.port()) + "/api/integration/1/functions/f/triggers?apiKey=k",
        [] { return std::size_t{0}; }, false},
       opt.n},
  };
  const char* titles[] = {"fast receiver (nginx, 202 at once)", "slow receiver (stand-in, 202 after 100 ms)",
                          "receiver down (closed loopback port)"};
  const char* short_names[] = {"floor", "write_http", "exec", "xmatters"};

  std::printf("bench_collectd: a real collectd, %zu distinct FAILUREs through one unixsock connection "
              "(%zu against the slow receiver, at most %zu for exec + curl), %d rounds, %d s idle after the first\n",
              opt.n, opt.n_slow, opt.n_exec, opt.rounds, opt.idle_s);
  const auto all = configs(script);
  for (std::size_t r = 0; r < receivers.size(); ++r) {
    const auto& [receiver, n] = receivers[r];
    std::vector<std::vector<Row>> rounds(static_cast<std::size_t>(opt.rounds));
    bool any = false;
    for (std::size_t round = 0; round < rounds.size(); ++round) {
      for (std::size_t k = 0; k < all.size(); ++k) {
        if (!selected(opt, receiver.name, short_names[k])) {
          Row skipped;
          skipped.config = all[k].name;
          rounds[round].push_back(skipped);
          continue;
        }
        any = true;
        const std::size_t storm = std::string(short_names[k]) == "exec" ? std::min(n, opt.n_exec) : n;
        const auto started = Clock::now();
        Row row;
        row.config = all[k].name;
        try {
          row = run_one(all[k], receiver, storm, opt, round == 0, !opt.profile.empty() && !opt.only.empty());
        } catch (const std::exception& e) {  // collectd died or stopped answering: that row is lost
          std::fprintf(stderr, "bench_collectd: %s, %s: %s\n", receiver.name.c_str(), all[k].name.c_str(), e.what());
        }
        // How long each run took, for keeping the whole bounded.
        std::fprintf(stderr, "bench_collectd: %s, %s: %.1f s\n", receiver.name.c_str(), all[k].name.c_str(),
                     std::chrono::duration<double>(Clock::now() - started).count());
        rounds[round].push_back(row);
      }
    }
    if (any) print_table(titles[r], rounds);
  }
  // Page latency: write_http and this plugin, in alternation.
  if (opt.latency > 0) {
    xmtest::Standin prompt;
    xmtest::Standin::Reply at_once;
    at_once.status = 202;
    prompt.set_default_reply(at_once);
    std::vector<std::pair<std::string, std::vector<double>>> by_config;
    for (int round = 0; round < opt.rounds; ++round)
      for (std::size_t k = 0; k < all.size(); ++k) {
        const std::string name = short_names[k];
        if ((name != "write_http" && name != "xmatters") || !selected(opt, "latency", name)) continue;
        auto it = std::find_if(by_config.begin(), by_config.end(), [&](const auto& p) { return p.first == all[k].name; });
        if (it == by_config.end()) it = by_config.insert(by_config.end(), {all[k].name, {}});
        try {
          run_latency(all[k], prompt, opt.latency, opt.only.empty() ? std::string() : opt.profile, it->second);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "bench_collectd: latency, %s: %s\n", all[k].name.c_str(), e.what());
        }
      }
    if (!by_config.empty()) print_latency(by_config);
  }
  return 0;
}
