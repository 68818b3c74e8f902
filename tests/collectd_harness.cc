#include "collectd_harness.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace xmtest {

namespace {

// System plugins every harnessed collectd may load; collectd refuses
// symlinks in its PluginDir ("is not a regular file"), so they are linked
// hard or copied.
constexpr const char* kSystemPlugins[] = {"logfile", "unixsock", "threshold", "csv", "network"};

void copy_file(const std::string& from, const std::string& to, bool may_link) {
  if (may_link && ::link(from.c_str(), to.c_str()) == 0) return;
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  if (!in || !out) throw std::runtime_error("cannot copy " + from + " to " + to);
}

std::string file_tail(const std::string& path, std::size_t from) {
  const std::string all = read_file(path);
  return from < all.size() ? all.substr(from) : std::string();
}

std::string group_name() {
  const struct group* g = ::getgrgid(::getegid());
  return g != nullptr ? g->gr_name : "root";
}

}  // namespace

// --- unixsock ----------------------------------------------------------------

UnixsockClient::UnixsockClient(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) throw std::invalid_argument("socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(e, std::generic_category(), "connect " + socket_path);
  }
}

UnixsockClient::~UnixsockClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string UnixsockClient::read_line() {
  for (;;) {
    const std::size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    char chunk[4096];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("unixsock: connection closed by collectd");
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

UnixsockClient::Reply UnixsockClient::command(const std::string& line) {
  const std::string out = line + "\n";
  for (std::size_t done = 0; done < out.size();) {
    const ssize_t n = ::send(fd_, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "unixsock: send");
    done += static_cast<std::size_t>(n);
  }
  Reply reply;
  const std::string first = read_line();
  char* end = nullptr;
  reply.status = static_cast<int>(std::strtol(first.c_str(), &end, 10));
  if (end == first.c_str()) throw std::runtime_error("unixsock: unexpected reply: " + first);
  reply.message = *end == ' ' ? std::string(end + 1) : std::string(end);
  // Only GETVAL and LISTVAL announce following lines with a positive status;
  // PUTVAL and PUTNOTIF answer "0 Success...".
  for (int i = 0; i < reply.status; ++i) reply.lines.push_back(read_line());
  return reply;
}

namespace {

std::uint16_t free_port(int type) {
  const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::system_error(e, std::generic_category(), "bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

std::uint16_t free_udp_port() { return free_port(SOCK_DGRAM); }
std::uint16_t free_tcp_port() { return free_port(SOCK_STREAM); }

std::string quote_unixsock(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// --- the daemon ----------------------------------------------------------------

CollectdProcess::CollectdProcess(std::string config) : config_(std::move(config)) {
  const std::string plugins = dir_ / "plugins";
  if (::mkdir(plugins.c_str(), 0755) != 0) throw std::system_error(errno, std::generic_category(), plugins);
  for (const char* name : kSystemPlugins) {
    const std::string so = std::string(name) + ".so";
    copy_file(std::string(COLLECTD_SYSTEM_PLUGINDIR) + "/" + so, plugins + "/" + so, true);
  }
  // Copied, not linked: a rebuild while a test runs must not change the
  // plugin under a running collectd.
  copy_file(std::string(XMATTERS_PLUGIN_BUILDDIR) + "/xmatters.so", plugins + "/xmatters.so", false);
}

CollectdProcess::~CollectdProcess() {
  try {
    stop(std::chrono::seconds(15));
    if (std::getenv("XM_TEST_VERBOSE") != nullptr)
      std::fprintf(stderr, "\n--- collectd's log (%s):\n%s---\n", dir().c_str(), log().c_str());
  } catch (...) {
  }
}

void CollectdProcess::set_config(std::string config) { config_ = std::move(config); }

std::string CollectdProcess::write_config() {
  std::ostringstream c;
  c << "BaseDir \"" << base_dir() << "\"\n"
    << "PIDFile \"" << (dir_ / "collectd.pid") << "\"\n"
    << "PluginDir \"" << (dir_ / "plugins") << "\"\n"
    << "TypesDB \"" << COLLECTD_TYPESDB << "\"\n"
    << "Interval 1\n"
    << "Hostname \"" << kHost << "\"\n"
    << "FQDNLookup false\n"
    << "AutoLoadPlugin false\n"
    // Debian's collectd is built without debug logging: info is its lowest.
    << "LoadPlugin logfile\n"
    << "<Plugin logfile>\n"
    << "  LogLevel info\n"
    << "  File \"" << (dir_ / "collectd.log") << "\"\n"
    << "  Timestamp true\n"
    << "  PrintSeverity true\n"
    << "</Plugin>\n"
    << "LoadPlugin unixsock\n"
    << "<Plugin unixsock>\n"
    << "  SocketFile \"" << socket_path() << "\"\n"
    << "  SocketGroup \"" << group_name() << "\"\n"
    << "  SocketPerms \"0600\"\n"
    << "</Plugin>\n"
    << config_ << "\n";
  write_file(config_path(), c.str());
  return config_path();
}

int CollectdProcess::check_config() {
  const char* wrapper = std::getenv("XM_COLLECTD_WRAPPER");
  const std::string cmd =
      std::string(wrapper != nullptr ? wrapper : "") + " " + COLLECTD_BIN + " -T -C '" + write_config() + "' >>'" +
      (dir_ / "collectd.stderr") + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool CollectdProcess::start(std::chrono::milliseconds timeout) {
  if (running()) throw std::logic_error("collectd is already running");
  write_config();
  log_mark_ = read_file(dir_ / "collectd.log").size();
  stderr_mark_ = read_file(dir_ / "collectd.stderr").size();
  exit_status_.reset();
  unixsock_.reset();
  // Left by a collectd that was killed; the new one could not bind it.
  ::unlink(socket_path().c_str());

  const std::string bin = COLLECTD_BIN;
  const std::string conf = config_path();
  const std::string err = dir_ / "collectd.stderr";
  // XM_COLLECTD_WRAPPER, a command prefix (contrib/run-tests: an ASan
  // runtime preloaded, or valgrind); exec keeps collectd's pid. Made before
  // the fork: the child of a threaded process must not allocate.
  const char* wrapper = std::getenv("XM_COLLECTD_WRAPPER");
  const std::string wrapped =
      wrapper != nullptr && *wrapper != '\0' ? std::string("exec ") + wrapper + " \"$0\" \"$@\"" : "";
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    // Its own process group, so that a SIGKILL reaches every thread and
    // child, and the terminal's signals do not.
    ::setpgid(0, 0);
    // A test program that dies (abort, a CUnit fatal assertion's longjmp
    // past the destructor, kill) takes its collectd with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) ::_exit(127);
    const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (!wrapped.empty()) {
      ::execl("/bin/sh", "sh", "-c", wrapped.c_str(), bin.c_str(), "-f", "-C", conf.c_str(),
              static_cast<char*>(nullptr));
    } else {
      ::execl(bin.c_str(), bin.c_str(), "-f", "-C", conf.c_str(), static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from here: no race with the child's own call
  pid_ = pid;

  // The unixsock plugin makes its socket on a thread of its own, which may
  // be later than the read-loop line: ready is both, and a connection.
  const auto ready = [&] {
    if (log_since_start().find(kReadLoop) == std::string::npos) return false;
    try {
      unixsock();
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  wait_until([&] { return ready() || !running(); }, timeout);
  return running() && unixsock_.has_value();
}

void CollectdProcess::reap(bool block) {
  if (pid_ <= 0) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    exit_status_ = r == pid_ ? status : -1;
    pid_ = -1;
    unixsock_.reset();
  }
}

bool CollectdProcess::running() {
  reap(false);
  return pid_ > 0;
}

bool CollectdProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  return wait_until([&] { return !running(); }, timeout);
}

std::optional<int> CollectdProcess::stop(std::chrono::milliseconds timeout) {
  if (!running()) return std::nullopt;
  unixsock_.reset();
  ::kill(pid_, SIGTERM);
  if (!wait_for_exit(timeout)) {
    ::kill(-pid_, SIGKILL);
    reap(true);
  }
  return exit_status_;
}

void CollectdProcess::kill9() {
  if (!running()) return;
  unixsock_.reset();
  ::kill(-pid_, SIGKILL);
  reap(true);
}

int CollectdProcess::exit_code() const {
  if (!exit_status_ || *exit_status_ < 0 || !WIFEXITED(*exit_status_)) return -1;
  return WEXITSTATUS(*exit_status_);
}

std::string CollectdProcess::log() const {
  return read_file(dir_ / "collectd.log") + read_file(dir_ / "collectd.stderr");
}

std::string CollectdProcess::log_since_start() const {
  return file_tail(dir_ / "collectd.log", log_mark_) + file_tail(dir_ / "collectd.stderr", stderr_mark_);
}

bool CollectdProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout,
                                   std::size_t count) const {
  return wait_until(
      [&] {
        const std::string text = log_since_start();
        std::size_t n = 0;
        for (std::size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
          if (++n >= count) return true;
        return false;
      },
      timeout);
}

std::vector<std::string> CollectdProcess::log_lines(const std::vector<std::string>& needles) const {
  std::vector<std::string> out;
  std::istringstream in(log_since_start());
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

UnixsockClient& CollectdProcess::unixsock() {
  if (!unixsock_) unixsock_.emplace(socket_path());
  return *unixsock_;
}

bool CollectdProcess::putval(const std::string& id, double value) { return putval(kHost, id, value); }

bool CollectdProcess::putval(const std::string& host, const std::string& id, double value) {
  char number[64];
  std::snprintf(number, sizeof number, "%.17g", value);
  const auto reply = unixsock().command("PUTVAL " + quote_unixsock(host + "/" + id) + " interval=1 N:" + number);
  return reply.ok();
}

std::optional<double> CollectdProcess::getval(const std::string& identifier) {
  const auto reply = unixsock().command("GETVAL " + quote_unixsock(identifier));
  if (!reply.ok() || reply.lines.empty()) return std::nullopt;
  const std::string& line = reply.lines[0];  // "<ds>=<value>"
  const std::size_t eq = line.find('=');
  if (eq == std::string::npos) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(line.c_str() + eq + 1, &end);
  if (end == line.c_str() + eq + 1) return std::nullopt;
  return v;
}

bool CollectdProcess::putnotif(const std::string& severity, const std::string& options, const std::string& message) {
  const auto reply = unixsock().command("PUTNOTIF severity=" + severity + " time=" +
                                        std::to_string(std::time(nullptr)) + " " + options +
                                        " message=" + quote_unixsock(message));
  return reply.ok();
}

std::string csv_block(const std::string& dir) {
  return "LoadPlugin csv\n<Plugin csv>\n  DataDir \"" + dir + "\"\n  StoreRates false\n</Plugin>\n";
}

std::optional<double> last_csv_value(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  std::string newest;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = f.path().filename();
    if (name.rfind(prefix, 0) == 0 && name > newest) newest = name;
  }
  if (newest.empty()) return std::nullopt;
  const std::string text = read_file(dir + "/" + newest);
  const std::size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return std::nullopt;
  const std::size_t line = text.rfind('\n', end);
  const std::size_t comma = text.find(',', line == std::string::npos ? 0 : line);
  if (comma == std::string::npos || comma > end) return std::nullopt;
  char* stop = nullptr;
  const double v = std::strtod(text.c_str() + comma + 1, &stop);
  return stop == text.c_str() + comma + 1 ? std::nullopt : std::optional<double>(v);
}

Live::Live(const Config& config)
    : xm(config.standin),
      // Timeout 1000: a test sends values when it chooses, so a value list it
      // left alone must not turn into a missing-value FAILURE a few seconds
      // later (a page the test did not ask for, on a slow or loaded machine).
      // A config.global Timeout comes after, and wins.
      c("Timeout 1000\n" + config.global +
        "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"e2e\">\n    <Type \"gauge\">\n"
        "      DataSource \"value\"\n      WarningMax 80\n      FailureMax 90\n    </Type>\n  </Plugin>\n"
        "</Plugin>\nLoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"" +
        xm.url("outage-fn") + "\"\n    ClearURL \"" + xm.url("clear-fn") + "\"\n    Timeout " + config.timeout + "\n" +
        config.integration + "  </Integration>\n" + config.plugin + "</Plugin>\n") {}

bool Live::start() {
  const bool ok = c.start();
  if (!ok) std::fprintf(stderr, "\n--- collectd did not start; its log:\n%s---\n", c.log().c_str());
  return ok;
}

Run Live::command(std::vector<std::string> args, const std::vector<std::string>& env) {
  args.insert(args.begin(), {"--config", c.config_path()});
  CommandOptions options;
  options.env = env;
  Run r = run_command(args, options);
  if (r.status != 0) std::fprintf(stderr, "\n--- collectd-xmatters exited %d:\n%s---\n", r.status, r.out.c_str());
  return r;
}

std::string Live::silence(const std::vector<std::string>& matchers, const std::string& duration) {
  std::vector<std::string> args = {"silence", "add"};
  args.insert(args.end(), matchers.begin(), matchers.end());
  args.insert(args.end(), {"--duration", duration, "--comment", "patch night"});
  const Run r = command(args);
  if (r.status != 0 || r.out.size() != 37 || r.out.back() != '\n') {
    std::fprintf(stderr, "\n--- silence add printed:\n%s---\n", r.out.c_str());
    return "";
  }
  return r.out.substr(0, 36);
}

JsonPtr Live::document(const std::vector<std::string>& args) {
  std::vector<std::string> a = {"--json"};
  a.insert(a.end(), args.begin(), args.end());
  return parse_json(command(a).out);
}

JsonPtr Live::outage(const std::string& key) {
  const auto doc = document({"outages"});
  const json_t* list = json_object_get(doc.get(), "outages");
  for (std::size_t i = 0; i < json_array_size(list); ++i) {
    json_t* o = json_array_get(list, i);
    if (json_string_member(o, "key") == key) return JsonPtr(json_incref(o));
  }
  return nullptr;
}

std::vector<xmatters::DeadLetter> Live::letters() const { return xmatters::read_dead_letters(dead_letter_path()).letters; }

std::string Live::field(std::size_t i, const char* name) const {
  return json_string_member(parse_json(request(i).body).get(), name);
}

std::string Live::host(std::size_t i) const {
  const auto body = parse_json(request(i).body);
  return json_string_member(json_object_get(body.get(), "collectd"), "host");
}

std::vector<std::size_t> Live::requests_for(const std::string& services) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < xm.request_count(); ++i)
    if (field(i, "services") == services) out.push_back(i);
  return out;
}

}  // namespace xmtest
