// The control channel (collectd-xmatters(1), THE CHANNEL): its transport
// alone (a server with a handler of the test's, real sockets), then through
// a real collectd with the stand-in.
#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "collectd_harness.h"
#include "control/channel.h"
#include "control/verbs.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;
using xmatters::Json;
using xmatters::control::Answer;
using xmatters::control::CallResult;
using xmatters::control::Server;
using xmatters::control::ServerOptions;
using xmatters::control::call;
using xmtest::guarded;
using Status = CallResult::Status;

// A handler of the test's: "echo" answers its arguments, "big" a document of
// args.size bytes, anything else an error.
xmatters::control::Verbs test_verbs(std::atomic<int>* handled = nullptr) {
  xmatters::control::Verbs v;
  v.add("echo", [handled](const json_t* args) {
    if (handled != nullptr) ++*handled;
    xmatters::DumpedJson text(json_dumps(args, JSON_COMPACT));
    return Answer::result(std::string("{\"args\":") + text.get() + "}");
  });
  v.add("big", [](const json_t* args) {
    const auto n = static_cast<std::size_t>(json_integer_value(json_object_get(args, "size")));
    return Answer::result("\"" + std::string(n, 'x') + "\"");
  });
  return v;
}

CallResult echo(const std::string& dir, std::chrono::milliseconds timeout = 10s) {
  Json args(json_pack("{s:s}", "hello", "world"));
  return call(dir, "echo", args.get(), timeout);
}

bool echoed(const CallResult& r) {
  if (r.status != Status::Ok) {
    std::fprintf(stderr, "\ncall: status %d, %s\n", static_cast<int>(r.status), r.message.c_str());
    return false;
  }
  return xmtest::json_string_member(json_object_get(r.result.get(), "args"), "hello") == "world";
}

std::string socket_path(const std::string& dir) { return dir + "/" + xmatters::control::kSocketName; }

// A raw connection to the socket, as a hostile or broken client makes one.
xmatters::UniqueFd raw_connect(const std::string& dir) {
  xmatters::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path(dir).c_str(), sizeof a.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return xmatters::UniqueFd();
  return fd;
}

std::string read_to_end(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

ServerOptions short_deadlines() {
  ServerOptions o;
  o.read_deadline = 300ms;
  o.write_deadline = 300ms;
  return o;
}

// --- the transport ------------------------------------------------------------

void test_round_trip_and_not_running() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  // Nothing there, then a socket file nobody listens on (a collectd killed
  // with -9): not running, both.
  CU_ASSERT_EQUAL(echo(dir / "missing").status, Status::NotRunning);
  CU_ASSERT_EQUAL(echo(dir.path()).status, Status::NotRunning);
  {
    xmatters::UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, socket_path(dir.path()).c_str(), sizeof a.sun_path - 1);
    XM_REQUIRE(::bind(stale.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  }
  const CallResult stale = echo(dir.path());
  CU_ASSERT_EQUAL(stale.status, Status::NotRunning);
  CU_ASSERT_TRUE(stale.message.find("not running") != std::string::npos);

  // The stale file is replaced; the socket is 0600.
  {
    Server server(dir.path(), test_verbs(), log);
    struct stat st {};
    XM_REQUIRE(::stat(socket_path(dir.path()).c_str(), &st) == 0);
    CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600u);
    CU_ASSERT_TRUE(echoed(echo(dir.path())));
    const CallResult unknown = call(dir.path(), "frobnicate", nullptr, 10s);
    CU_ASSERT_EQUAL(unknown.status, Status::Refused);
    CU_ASSERT_TRUE(unknown.message.find("\"frobnicate\"") != std::string::npos);
  }
  // stop() removes it.
  CU_ASSERT_FALSE(xmtest::file_exists(socket_path(dir.path())));
  CU_ASSERT_EQUAL(echo(dir.path()).status, Status::NotRunning);
}

// A SpoolDir whose path is longer than a socket address holds.
void test_long_spool_dir_path() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  std::string deep = dir.path();
  while (deep.size() < 200) {
    deep += "/" + std::string(40, 'd');
    XM_REQUIRE(::mkdir(deep.c_str(), 0700) == 0);
  }
  Server server(deep, test_verbs(), log);
  CU_ASSERT_TRUE(echoed(echo(deep)));
}

void test_garbage_requests_answered_with_an_error() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Server server(dir.path(), test_verbs(), log, short_deadlines());
  for (const std::string& garbage :
       {std::string("GET / HTTP/1.0\r\n\r\n"), std::string("\xff\xfe\x00{\"verb\"\n", 11), std::string("[1,2,3]\n"),
        std::string("{\"verb\": 7}\n"), std::string("{\"verb\":\"echo\",\"args\":[]}\n"),
        std::string(5000, '[') + "\n"}) {
    xmatters::UniqueFd fd = raw_connect(dir.path());
    XM_REQUIRE(fd.get() >= 0);
    XM_REQUIRE(::write(fd.get(), garbage.data(), garbage.size()) == static_cast<ssize_t>(garbage.size()));
    xmtest::JsonPtr reply = xmtest::parse_json(read_to_end(fd.get()));
    XM_REQUIRE(reply != nullptr);
    CU_ASSERT_TRUE(json_is_false(json_object_get(reply.get(), "ok")));
    CU_ASSERT_TRUE(xmtest::json_string_member(reply.get(), "error").rfind("not a request", 0) == 0);
  }
  CU_ASSERT_TRUE(echoed(echo(dir.path())));
}

// A client that connects and sends nothing, or half a line, holds the
// server only until its deadline: the next client is answered.
void test_stalled_client_dropped_at_its_deadline() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Server server(dir.path(), test_verbs(), log, short_deadlines());
  xmatters::UniqueFd silent = raw_connect(dir.path());
  xmatters::UniqueFd half = raw_connect(dir.path());
  XM_REQUIRE(silent.get() >= 0 && half.get() >= 0);
  XM_REQUIRE(::write(half.get(), "{\"verb\":", 8) == 8);
  CU_ASSERT_TRUE(echoed(echo(dir.path())));
  // Each was told, then closed.
  for (int fd : {silent.get(), half.get()}) {
    xmtest::JsonPtr reply = xmtest::parse_json(read_to_end(fd));
    XM_REQUIRE(reply != nullptr);
    CU_ASSERT_TRUE(xmtest::json_string_member(reply.get(), "error").find("deadline") != std::string::npos);
  }
}

// A client that sends far more than a request may be (here 300 MB, streamed)
// is cut off after 1 MiB; the server's memory does not grow with it, and
// the next client is answered.
void test_huge_request_cut_off() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Server server(dir.path(), test_verbs(), log);
  const long before = rss_kib(::getpid());
  xmatters::UniqueFd fd = raw_connect(dir.path());
  XM_REQUIRE(fd.get() >= 0);
  const std::string chunk(1 << 20, 'x');
  std::size_t sent = 0;
  while (sent < 300u * chunk.size()) {
    const ssize_t n = ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  CU_ASSERT_TRUE(sent < 300u * chunk.size());  // the server closed on it
  const long after = rss_kib(::getpid());
  if (after - before > 16 * 1024) std::fprintf(stderr, "\nRSS grew by %ld KiB\n", after - before);
  CU_ASSERT_TRUE(after - before < 16 * 1024);
  CU_ASSERT_TRUE(echoed(echo(dir.path())));
}

// A client that asks for a large reply, then goes away or stops reading:
// the server drops it (no SIGPIPE) and answers the next one.
void test_client_gone_mid_reply() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Server server(dir.path(), test_verbs(), log, short_deadlines());
  const std::string request = "{\"verb\":\"big\",\"args\":{\"size\":50000000}}\n";
  {
    xmatters::UniqueFd gone = raw_connect(dir.path());
    XM_REQUIRE(::write(gone.get(), request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    char some[100];
    XM_REQUIRE(::read(gone.get(), some, sizeof some) > 0);  // the reply has begun
  }
  xmatters::UniqueFd stuck = raw_connect(dir.path());
  XM_REQUIRE(::write(stuck.get(), request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  CU_ASSERT_TRUE(echoed(echo(dir.path())));
}

// stop() returns while a client holds a connection open, whatever its
// deadline, and while others wait in the backlog.
void test_stop_not_held_by_a_client() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  ServerOptions patient;
  patient.read_deadline = 1h;
  auto server = std::make_unique<Server>(dir.path(), test_verbs(), log, patient);
  std::vector<xmatters::UniqueFd> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(raw_connect(dir.path()));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server->stop();
    stopped = true;
  });
  const bool ok = xmtest::wait_until([&] { return stopped.load(); }, 10s);
  CU_ASSERT_TRUE(ok);
  stopper.join();
}

// A user who is neither root nor SpoolDir's owner gets one line saying so.
void test_other_user_denied() {
  xmtest::TempDir dir;
  xmtest::CapturingLogger log;
  Server server(dir.path(), test_verbs(), log);
  const passwd* nobody = ::getpwnam("nobody");
  XM_REQUIRE(nobody != nullptr);
  for (const mode_t mode : {0700, 0711}) {
    // 0711: the directory can be searched, and the socket's 0600 refuses.
    XM_REQUIRE(::chmod(dir.path().c_str(), mode) == 0);
    int fds[2];
    XM_REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(fds[0]);
      if (::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(3);
      const CallResult r = echo(dir.path());
      const std::string out = std::to_string(static_cast<int>(r.status)) + " " + r.message;
      if (::write(fds[1], out.data(), out.size()) < 0) ::_exit(4);
      ::_exit(0);
    }
    ::close(fds[1]);
    const std::string out = read_to_end(fds[0]);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(out.substr(0, 2), std::to_string(static_cast<int>(Status::Denied)) + " ");
    CU_ASSERT_TRUE(out.find("run this as root or as collectd's user") != std::string::npos);
    CU_ASSERT_TRUE(out.find('\n') == std::string::npos);
  }
  CU_ASSERT_TRUE(echoed(echo(dir.path())));
}

// --- through a real collectd ------------------------------------------------------

using xmtest::CollectdProcess;

std::string collectd_config(const xmtest::Standin& xm, const std::string& integration_extra = "") {
  return "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"e2e\">\n    <Type \"gauge\">\n"
         "      DataSource \"value\"\n      FailureMax 90\n    </Type>\n  </Plugin>\n</Plugin>\n"
         "LoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"" +
         xm.url("outage-fn") + "\"\n    ClearURL \"" + xm.url("clear-fn") + "\"\n    Timeout 5\n" +
         integration_extra + "  </Integration>\n</Plugin>\n";
}

bool started(CollectdProcess& c) {
  const bool ok = c.start();
  if (!ok) std::fprintf(stderr, "\n--- collectd did not start; its log:\n%s---\n", c.log().c_str());
  return ok;
}

std::string spool_dir(const CollectdProcess& c) { return c.base_dir() + "/xmatters"; }

CallResult ping(const CollectdProcess& c) { return call(spool_dir(c), "ping", nullptr, 10s); }

// The socket comes with the plugin and goes with it; a collectd killed with
// -9 leaves one that nobody listens on ("not running"), which the next
// start replaces.
void test_socket_follows_the_plugin() {
  xmtest::Standin xm;
  CollectdProcess c(collectd_config(xm));
  XM_REQUIRE(started(c));
  struct stat st {};
  XM_REQUIRE(::stat(socket_path(spool_dir(c)).c_str(), &st) == 0);
  CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
  CU_ASSERT_EQUAL(st.st_mode & 07777, 0600u);
  CallResult r = ping(c);
  XM_REQUIRE(r.status == Status::Ok);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(r.result.get(), "pid")), c.pid());

  c.kill9();
  CU_ASSERT_TRUE(xmtest::file_exists(socket_path(spool_dir(c))));
  r = ping(c);
  CU_ASSERT_EQUAL(r.status, Status::NotRunning);
  XM_REQUIRE(started(c));
  r = ping(c);
  XM_REQUIRE(r.status == Status::Ok);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(r.result.get(), "pid")), c.pid());

  const auto status = c.stop();
  XM_REQUIRE(status.has_value());
  CU_ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  CU_ASSERT_FALSE(xmtest::file_exists(socket_path(spool_dir(c))));
  CU_ASSERT_EQUAL(ping(c).status, Status::NotRunning);
}

// Stalled, garbage and huge (hundreds of MB, streamed) clients hammer the
// channel while a storm of notifications goes out: every page is delivered,
// collectd's memory stays bounded, a well-behaved client is still answered,
// and collectd stops at once with the stalled clients still connected.
void test_hostile_clients_during_a_storm() {
  xmtest::Standin xm;
  CollectdProcess c(collectd_config(xm, "    FloodLimit 0\n"));  // every page of the storm on its own
  XM_REQUIRE(started(c));
  XM_REQUIRE(ping(c).status == Status::Ok);
  const long rss_before = rss_kib(c.pid());
  const std::string dir = spool_dir(c);

  std::atomic<bool> done{false};
  std::atomic<std::size_t> huge_bytes{0};
  std::vector<xmatters::UniqueFd> stalled;
  for (int i = 0; i < 3; ++i) stalled.push_back(raw_connect(dir));
  std::vector<std::thread> hostile;
  hostile.emplace_back([&] {  // garbage, over and over
    while (!done) {
      xmatters::UniqueFd fd = raw_connect(dir);
      if (fd.get() < 0) continue;
      const std::string junk = "\x01\x02{{{\"verb\":\n";
      if (::send(fd.get(), junk.data(), junk.size(), MSG_NOSIGNAL) < 0) continue;
      read_to_end(fd.get());
    }
  });
  hostile.emplace_back([&] {  // huge, streamed, over and over
    const std::string chunk(1 << 20, 'x');
    while (!done) {
      xmatters::UniqueFd fd = raw_connect(dir);
      if (fd.get() < 0) continue;
      for (int i = 0; i < 400 && !done; ++i) {
        const ssize_t n = ::send(fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        huge_bytes += static_cast<std::size_t>(n);
      }
    }
  });
  hostile.emplace_back([&] {  // a client that asks and never reads, then goes
    while (!done) {
      xmatters::UniqueFd fd = raw_connect(dir);
      if (fd.get() < 0) continue;
      const std::string request = "{\"verb\":\"ping\"}\n";
      if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) continue;
    }
  });

  constexpr int kOutages = 300;
  for (int i = 0; i < kOutages; ++i) CU_ASSERT_TRUE(c.putval("e2e-storm" + std::to_string(i) + "/gauge", 95));
  const bool delivered = xm.wait_for_accepted(kOutages, 120s);
  CU_ASSERT_TRUE(delivered);
  // Each huge client is cut off after 1 MiB; they go on until 300 MB were sent.
  CU_ASSERT_TRUE(xmtest::wait_until([&] { return huge_bytes.load() >= (std::size_t{300} << 20); }, 300s));
  // A well-behaved client gets through (after the stalled ones' deadlines).
  const CallResult r = call(dir, "ping", nullptr, 120s);
  CU_ASSERT_EQUAL(r.status, Status::Ok);
  const long rss_after = rss_kib(c.pid());
  std::fprintf(stderr, "\n[%zu MB of huge requests; collectd's VmRSS %ld -> %ld KiB] ", huge_bytes.load() >> 20,
               rss_before, rss_after);
  CU_ASSERT_TRUE(rss_after - rss_before < 64 * 1024);

  // Stopped with clients connected and the hostile ones still at it.
  for (int i = 0; i < 5; ++i) stalled.push_back(raw_connect(dir));
  const auto status = c.stop(20s);
  done = true;
  for (auto& t : hostile) t.join();
  XM_REQUIRE(status.has_value());
  CU_ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  CU_ASSERT_EQUAL(c.log_lines({"[error]"}).size(), 0u);
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {
                         {"channel_transport",
                          {
                              {"round_trip_and_not_running", guarded<test_round_trip_and_not_running>},
                              {"long_spool_dir_path", guarded<test_long_spool_dir_path>},
                              {"garbage_requests_answered_with_an_error",
                               guarded<test_garbage_requests_answered_with_an_error>},
                              {"stalled_client_dropped_at_its_deadline",
                               guarded<test_stalled_client_dropped_at_its_deadline>},
                              {"huge_request_cut_off", guarded<test_huge_request_cut_off>},
                              {"client_gone_mid_reply", guarded<test_client_gone_mid_reply>},
                              {"stop_not_held_by_a_client", guarded<test_stop_not_held_by_a_client>},
                              {"other_user_denied", guarded<test_other_user_denied>},
                          }},
                         {"channel_collectd",
                          {
                              {"socket_follows_the_plugin", guarded<test_socket_follows_the_plugin>},
                              {"hostile_clients_during_a_storm", guarded<test_hostile_clients_during_a_storm>},
                          }},
                     });
}
