// A local xMatters inbound integration for the tests and the demo, on
// libmicrohttpd: POST /api/integration/1/functions/<id>/triggers, checked
// for the API key (query apiKey) or HTTP basic auth, answering 202 with
// {"requestId": "<uuid>"} for a JSON object body, 400 otherwise, 401 without
// credentials, with scriptable faults (statuses, Retry-After, delays,
// dropped connections, echoed request headers, a body stalled after the
// status line, redirects). Over HTTPS it can also demand a client
// certificate (mutual TLS), answering 403 without a verified one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace xmtest {

struct StandinOptions {
  std::string api_key = "test-key";   // accepted as ?apiKey=
  std::optional<std::string> user;    // accepted as basic auth with password
  std::optional<std::string> password;
  std::uint16_t port = 0;             // 0: an ephemeral port on 127.0.0.1
  // HTTPS when both are set (PEM files).
  std::optional<std::string> tls_cert_file;
  std::optional<std::string> tls_key_file;
  // With HTTPS: the CA (PEM) whose client certificates are accepted. Every
  // request must then come over a connection whose client certificate
  // chains to it; others are answered 403 "client certificate required"
  // (a TLS-terminating gateway would refuse them likewise).
  std::optional<std::string> tls_client_ca_file;
};

struct RecordedRequest {
  std::string method;
  std::string path;                           // without the query
  std::map<std::string, std::string> query;   // decoded query arguments
  std::map<std::string, std::string> headers; // names lower-cased
  std::string body;
  int status = 0;                              // what the stand-in answered (0: dropped)
  std::string request_id;                      // the requestId of a 2xx reply
  std::string function_id;                     // <id> of the path
  bool client_certificate = false;             // came with a client certificate verified by tls_client_ca_file
  std::chrono::steady_clock::time_point time;  // when recorded, just before the reply
};

class Standin {
 public:
  // What to answer to one request. The defaults are a normal success.
  struct Reply {
    int status = 0;  // 0: the normal answer (202, 400 or 401 as checked)
    std::optional<std::string> retry_after;
    std::chrono::milliseconds delay{0};
    bool drop = false;  // close the connection without an answer
    // Request headers (names in any case) whose values the reply's JSON body
    // starts with, as its member "echo": a server that echoes what it got.
    std::vector<std::string> echo_headers;
    // The status line, the headers and the body's first bytes go at once;
    // the rest of the body only after this long (stop() cuts it short and
    // breaks the connection instead).
    std::chrono::milliseconds stall_body{0};
    // A Location header: with a 3xx status, a redirect.
    std::optional<std::string> location;
  };

  explicit Standin(StandinOptions options = {});
  ~Standin();
  Standin(const Standin&) = delete;
  Standin& operator=(const Standin&) = delete;

  std::uint16_t port() const;
  // "http(s)://127.0.0.1:PORT/api/integration/1/functions/<function_id>/triggers?apiKey=KEY"
  // (without the query when with_key is false).
  std::string url(const std::string& function_id, bool with_key = true) const;

  // The next requests get these replies, in order; then the default reply.
  void script(std::vector<Reply> replies);
  void set_default_reply(Reply reply);

  std::vector<RecordedRequest> requests() const;
  std::size_t request_count() const;
  // Requests answered with a 2xx. A request counts (and wait_for_* return)
  // once its reply is decided, just before it is sent: the client may not
  // have read it yet.
  std::size_t accepted_count() const;
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_for_accepted(std::size_t n, std::chrono::milliseconds timeout) const;
  void clear();

  // Requests whose body has arrived and whose reply is still being held
  // back (Reply::delay), or whose reply's body is (Reply::stall_body).
  std::size_t pending_count() const;
  // Connections accepted since construction (kept-alive ones count once).
  std::size_t connection_count() const;
  // Called on a connection thread after each request is recorded, before
  // its reply is sent; for the xmatters-standin program's output.
  void set_observer(std::function<void(const RecordedRequest&)> observer);

  // Stops answering (the port is closed) / starts again on the same port.
  void stop();
  void restart();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Makes a self-signed CA and a server certificate for 127.0.0.1/localhost
// under dir with the openssl command: dir/ca.pem, dir/server.pem,
// dir/server.key. Returns false when openssl fails.
bool make_test_certificates(const std::string& dir);

// Makes a client certificate (TLS client authentication) signed by the CA
// that make_test_certificates(dir) made: dir/client.pem, dir/client.key.
// Returns false when openssl fails.
bool make_client_certificate(const std::string& dir);

}  // namespace xmtest
