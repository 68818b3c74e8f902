// The control channel between the running plugin and the collectd-xmatters
// command (collectd-xmatters(1), THE CHANNEL; collectd-xmatters(5), FILES): a
// Unix stream socket in SpoolDir, one request per connection, a JSON line in
// and a JSON document out. Only SpoolDir's owner (collectd's user) and root
// may use it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/log.h"
#include "util/resources.h"

namespace xmatters::control {

// The socket's name inside SpoolDir.
constexpr const char* kSocketName = "control.sock";

struct ServerOptions {
  // A request longer than this is refused and its connection closed: a
  // client costs at most this much memory.
  std::size_t max_request = 1 << 20;
  // From the connection's acceptance to its whole request line; then to its
  // whole reply written. A client that stalls is dropped at its deadline:
  // requests are served one at a time, and the next one waits at most that
  // long for it.
  std::chrono::milliseconds read_deadline{5000};
  std::chrono::milliseconds write_deadline{10000};
};

// What the plugin answers to a request: a JSON document, or an error.
struct Answer {
  bool ok = false;
  std::string text;  // ok: the document (JSON text); else the error, one line
  static Answer result(std::string document) { return {true, std::move(document)}; }
  static Answer error(std::string message) { return {false, std::move(message)}; }
};

// Answers one request: its verb and its arguments (a JSON object, never
// null). Runs on the server's thread, one request at a time; must not
// throw, and must return within a bounded time (stop() waits for it).
using RequestHandler = std::function<Answer(const std::string& verb, const json_t* args)>;

// Serves the socket SpoolDir/control.sock from a thread of its own, which
// sleeps in poll(2) while nobody connects. The caller holds SpoolDir's lock,
// so that a socket file left by a collectd that was killed is replaced.
class Server {
 public:
  // Binds and listens (the file mode 0600), then starts the thread. Throws
  // std::system_error when the socket cannot be made.
  Server(const std::string& spool_dir, RequestHandler handler, Logger& log, ServerOptions options = {});
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Drops the connection being read or written, waits for a request being
  // handled, removes the socket file. Idempotent.
  void stop();

 private:
  struct Listener;
  std::unique_ptr<Listener> listener_;
};

// What the command gets from call().
struct CallResult {
  enum class Status {
    Ok,          // the plugin answered: result holds its document
    NotRunning,  // no socket, or nobody listening on it (collectd not running)
    Denied,      // this user may not use the channel: message says so
    Refused,     // the plugin answered with an error: message holds it
    Failed,      // the connection failed or the reply was cut short: message says why
  };
  Status status = Status::Failed;
  Json result;          // Ok: the plugin's document
  std::string message;  // one line, for every other status
};

// Sends verb with args (a JSON object; null for none) to the plugin whose
// SpoolDir is spool_dir and waits up to timeout for its whole answer.
CallResult call(const std::string& spool_dir, const std::string& verb, const json_t* args,
                std::chrono::milliseconds timeout);

// The line a user who may not use the channel is shown (by the plugin, or by
// call() when the socket's permissions already refused the connection).
std::string denied_message(const std::string& spool_dir);

}  // namespace xmatters::control
