#include "control/channel.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>

#include "util/json_writer.h"
#include "util/mutex.h"
#include "util/utf8.h"

namespace xmatters::control {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kNewName = "control.sock.new";
// The command's own bound on a reply: the largest queue the plugin keeps
// (QueueLimit) as a document is far smaller.
constexpr std::size_t kMaxReply = std::size_t{1} << 30;

std::system_error os_error(const std::string& what, int err = errno) {
  return std::system_error(err, std::generic_category(), what);
}

// The address of name in the directory dirfd (whose path is dir). A path
// longer than sun_path goes through the descriptor's /proc/self/fd link.
sockaddr_un address(const std::string& dir, int dirfd, const char* name) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string path = dir + "/" + name;
  if (path.size() >= sizeof a.sun_path) path = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits until fd is ready for events, or stop_fd (when >= 0) is readable,
// or the deadline passes. True when fd is ready (or has hung up).
bool wait_for(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, stop_fd >= 0 ? 2 : 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (stop_fd >= 0 && fds[1].revents != 0) return false;
    return true;
  }
}

// Writes all of data before the deadline; false when the peer is gone or
// too slow.
bool write_all(int fd, std::string_view data, int stop_fd, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(fd, POLLOUT, stop_fd, deadline)) continue;
    return false;
  }
  return true;
}

std::string error_envelope(const std::string& message, bool denied = false) {
  JsonWriter w;
  w.begin_object().plain_key("ok").boolean(false);
  if (denied) w.plain_key("denied").boolean(true);
  w.plain_key("error").string(valid_utf8(message) ? message : sanitize_utf8(message));
  w.end_object();
  return w.take() + "\n";
}

std::string envelope(const Answer& answer) {
  if (!answer.ok) return error_envelope(answer.text);
  std::string out;
  out.reserve(answer.text.size() + 24);
  out += "{\"ok\":true,\"result\":";
  out += answer.text;
  out += "}\n";
  return out;
}

}  // namespace

std::string denied_message(const std::string& spool_dir) {
  return "only collectd's user and root may talk to the running plugin (SpoolDir \"" + spool_dir +
         "\"): run this as root or as collectd's user";
}

struct Server::Listener {
  std::string dir;
  RequestHandler handler;
  Logger& log;
  ServerOptions options;
  UniqueFd dir_fd;
  UniqueFd listen_fd;
  UniqueFd stop_fd;  // an eventfd, readable once stop() was called
  std::thread thread;
  Mutex stop_mutex;  // stop() may be called from two threads
  bool stopped GUARDED_BY(stop_mutex) = false;

  Listener(std::string d, RequestHandler h, Logger& l, ServerOptions o)
      : dir(std::move(d)), handler(std::move(h)), log(l), options(o) {}

  void run();
  void serve(int fd);
  void refuse(int fd, const std::string& message) {
    write_all(fd, error_envelope(message), stop_fd.get(), Clock::now() + options.write_deadline);
  }
};

Server::Server(const std::string& spool_dir, RequestHandler handler, Logger& log, ServerOptions options)
    : listener_(std::make_unique<Listener>(spool_dir, std::move(handler), log, options)) {
  Listener& s = *listener_;
  s.dir_fd = UniqueFd(::open(spool_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (s.dir_fd.get() < 0) throw os_error("cannot open " + spool_dir);
  s.listen_fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.listen_fd.get() < 0) throw os_error("cannot make a socket");
  // Bound under another name, made 0600, then renamed over the socket a
  // collectd that was killed may have left (we hold SpoolDir's lock, so no
  // live collectd serves it): a client never finds a socket looser than
  // 0600, and the peer check below covers the instant before the chmod.
  if (::unlinkat(s.dir_fd.get(), kNewName, 0) != 0 && errno != ENOENT)
    throw os_error("cannot remove " + spool_dir + "/" + kNewName);
  const sockaddr_un a = address(spool_dir, s.dir_fd.get(), kNewName);
  if (::bind(s.listen_fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    throw os_error("cannot bind " + spool_dir + "/" + kNewName);
  if (::fchmodat(s.dir_fd.get(), kNewName, 0600, 0) != 0 ||
      ::renameat(s.dir_fd.get(), kNewName, s.dir_fd.get(), kSocketName) != 0) {
    const int err = errno;
    ::unlinkat(s.dir_fd.get(), kNewName, 0);
    throw os_error("cannot make " + spool_dir + "/" + kSocketName, err);
  }
  if (::listen(s.listen_fd.get(), 16) != 0) throw os_error("cannot listen on " + spool_dir + "/" + kSocketName);
  s.stop_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (s.stop_fd.get() < 0) throw os_error("cannot make an eventfd");
  s.thread = std::thread([&s] { s.run(); });
}

Server::~Server() { stop(); }

void Server::stop() {
  Listener& s = *listener_;
  MutexLock lock(s.stop_mutex);
  if (s.stopped) return;
  s.stopped = true;
  const std::uint64_t one = 1;
  if (::write(s.stop_fd.get(), &one, sizeof one) < 0) {
    // An eventfd's counter cannot overflow from one write; nothing to do.
  }
  if (s.thread.joinable()) s.thread.join();
  ::unlinkat(s.dir_fd.get(), kSocketName, 0);
}

void Server::Listener::run() {
  pthread_setname_np(pthread_self(), "xm-control");
  for (;;) {
    pollfd fds[2] = {{listen_fd.get(), POLLIN, 0}, {stop_fd.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log.error("control channel: poll: " + std::string(std::strerror(errno)) + "; the channel is closed");
      return;
    }
    if (fds[1].revents != 0) return;
    UniqueFd conn(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (conn.get() < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The connection stays in the backlog: try again in a second
        // rather than spin.
        log.warning("control channel: cannot accept a connection: " + std::string(std::strerror(errno)));
        pollfd stop{stop_fd.get(), POLLIN, 0};
        if (::poll(&stop, 1, 1000) > 0) return;
      }
      continue;
    }
    serve(conn.get());
  }
}

void Server::Listener::serve(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return;
  if (peer.uid != 0 && peer.uid != ::geteuid()) {
    log.warning("control channel: refused a connection from uid " + std::to_string(peer.uid) + " (pid " +
                std::to_string(peer.pid) + ")");
    write_all(fd, error_envelope(denied_message(dir), true), stop_fd.get(), Clock::now() + options.write_deadline);
    return;
  }

  // The request line: bounded in size and time.
  const auto read_deadline = Clock::now() + options.read_deadline;
  std::string request;
  bool complete = false;
  char buf[16384];
  while (!complete) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(fd, POLLIN, stop_fd.get(), read_deadline)) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) refuse(fd, "no whole request within the deadline");
      return;
    }
    if (n == 0) {  // the client's end of its writing: the request if there was one
      if (request.empty()) return;
      break;
    }
    const char* newline = static_cast<const char*>(std::memchr(buf, '\n', static_cast<std::size_t>(n)));
    const std::size_t take = newline != nullptr ? static_cast<std::size_t>(newline - buf) : static_cast<std::size_t>(n);
    if (request.size() + take > options.max_request) {
      refuse(fd, "request longer than " + std::to_string(options.max_request) + " bytes; refused");
      return;
    }
    request.append(buf, take);
    complete = newline != nullptr;
  }

  json_error_t error;
  Json parsed(json_loadb(request.data(), request.size(), JSON_REJECT_DUPLICATES, &error));
  request = std::string();  // its memory back before the answer is made
  const json_t* verb = parsed ? json_object_get(parsed.get(), "verb") : nullptr;
  const json_t* args = parsed ? json_object_get(parsed.get(), "args") : nullptr;
  if (!json_is_string(verb) || (args != nullptr && !json_is_object(args))) {
    refuse(fd, parsed ? "not a request: it needs a string \"verb\" and an object \"args\""
                      : std::string("not a request: ") + error.text);
    return;
  }
  Json no_args;
  if (args == nullptr) {
    no_args.reset(json_object());
    args = no_args.get();
  }
  Answer answer;
  try {
    answer = handler(json_string_value(verb), args);
  } catch (const std::exception& e) {
    answer = Answer::error(std::string("internal error: ") + e.what());
  }
  parsed.reset();
  write_all(fd, envelope(answer), stop_fd.get(), Clock::now() + options.write_deadline);
}

CallResult call(const std::string& spool_dir, const std::string& verb, const json_t* args,
                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  CallResult r;
  const auto failed = [&](CallResult::Status status, std::string message) {
    r.status = status;
    r.message = std::move(message);
    return std::move(r);
  };
  const std::string path = spool_dir + "/" + kSocketName;
  UniqueFd dir(::open(spool_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return failed(CallResult::Status::NotRunning, "no " + spool_dir);
    if (errno == EACCES) return failed(CallResult::Status::Denied, denied_message(spool_dir));
    return failed(CallResult::Status::Failed, spool_dir + ": " + std::strerror(errno));
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return failed(CallResult::Status::Failed, std::string("socket: ") + std::strerror(errno));
  const sockaddr_un a = address(spool_dir, dir.get(), kSocketName);
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) break;
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED)
      return failed(CallResult::Status::NotRunning, "the plugin is not running (nothing listens on " + path + ")");
    if (err == EACCES || err == EPERM) return failed(CallResult::Status::Denied, denied_message(spool_dir));
    if (err == EINTR) continue;
    if (err == EAGAIN && remaining_ms(deadline) > 0) {
      // The plugin's backlog is full: it serves one request at a time.
      ::usleep(20000);
      continue;
    }
    return failed(CallResult::Status::Failed, "cannot connect to " + path + ": " + std::strerror(err));
  }

  JsonWriter w;
  w.begin_object().plain_key("verb").string(verb).plain_key("args");
  std::string request = w.take();
  DumpedJson dumped(args != nullptr ? json_dumps(args, JSON_COMPACT) : nullptr);
  request += dumped ? dumped.get() : "{}";
  request += "}\n";
  if (!write_all(fd.get(), request, -1, deadline))
    return failed(CallResult::Status::Failed, "the plugin did not take the request (" + path + ")");
  ::shutdown(fd.get(), SHUT_WR);

  std::string reply;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (reply.size() + static_cast<std::size_t>(n) > kMaxReply)
        return failed(CallResult::Status::Failed, "the plugin's reply is too long");
      reply.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_for(fd.get(), POLLIN, -1, deadline)) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return failed(CallResult::Status::Failed,
                    "no answer from the plugin within " + std::to_string(timeout.count() / 1000) + " s");
    return failed(CallResult::Status::Failed, "the connection to the plugin broke: " + std::string(std::strerror(errno)));
  }
  json_error_t error;
  Json doc(json_loadb(reply.data(), reply.size(), 0, &error));
  if (!doc || !json_is_object(doc.get())) {
    if (reply.empty())
      return failed(CallResult::Status::Failed, "the plugin closed the connection without answering (is collectd stopping?)");
    return failed(CallResult::Status::Failed, std::string("the plugin's reply is not JSON: ") + error.text);
  }
  if (json_is_true(json_object_get(doc.get(), "ok"))) {
    r.status = CallResult::Status::Ok;
    r.result = Json(json_incref(json_object_get(doc.get(), "result")));
    if (!r.result) return failed(CallResult::Status::Failed, "the plugin's reply has no result");
    return r;
  }
  const json_t* message = json_object_get(doc.get(), "error");
  return failed(json_is_true(json_object_get(doc.get(), "denied")) ? CallResult::Status::Denied
                                                                    : CallResult::Status::Refused,
                json_is_string(message) ? json_string_value(message) : "the plugin refused the request");
}

}  // namespace xmatters::control
