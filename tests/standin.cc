#include "standin.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "util/resources.h"
#include "testing.h"

extern char** environ;

namespace xmtest {

namespace {

constexpr const char kPathPrefix[] = "/api/integration/1/functions/";
constexpr const char kPathSuffix[] = "/triggers";

struct DaemonStopper {
  void operator()(MHD_Daemon* d) const { MHD_stop_daemon(d); }
};
using DaemonPtr = std::unique_ptr<MHD_Daemon, DaemonStopper>;

struct ResponseDestroyer {
  void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
};
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseDestroyer>;

struct MhdFree {
  void operator()(char* p) const { MHD_free(p); }
};

// One request's state across the access handler's calls: the body arrives
// in pieces.
struct Exchange {
  std::string body;
};

// A reply body whose second half waits (Reply::stall_body), read by MHD on
// the connection's own thread.
struct StalledBody {
  std::string text;
  std::chrono::milliseconds stall;
  std::mutex& mutex;
  std::condition_variable& changed;
  const bool& stopping;
  std::size_t& pending;  // counts the stall as a held-back reply

  static ssize_t read(void* cls, std::uint64_t pos, char* buf, std::size_t max) {
    auto* self = static_cast<StalledBody*>(cls);
    const std::size_t half = self->text.size() / 2;
    if (pos >= half) {
      std::unique_lock<std::mutex> lock(self->mutex);
      ++self->pending;
      self->changed.notify_all();
      const bool stopped = self->changed.wait_for(lock, self->stall, [self] { return self->stopping; });
      --self->pending;
      if (stopped) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    const std::size_t end = pos < half ? half : self->text.size();
    if (pos >= end) return MHD_CONTENT_READER_END_OF_STREAM;
    const std::size_t n = std::min<std::size_t>(max, end - pos);
    std::memcpy(buf, self->text.data() + pos, n);
    return static_cast<ssize_t>(n);
  }
  static void free(void* cls) { delete static_cast<StalledBody*>(cls); }
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("stand-in: cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The <id> of /api/integration/1/functions/<id>/triggers, or "" for any
// other path.
std::string function_id_of(const std::string& path) {
  const std::size_t plen = sizeof kPathPrefix - 1, slen = sizeof kPathSuffix - 1;
  if (path.size() <= plen + slen || path.compare(0, plen, kPathPrefix) != 0 ||
      path.compare(path.size() - slen, slen, kPathSuffix) != 0)
    return "";
  std::string id = path.substr(plen, path.size() - plen - slen);
  return id.find('/') == std::string::npos ? id : "";
}

std::string percent_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

// Whether the connection's client sent a certificate that chains to the
// daemon's trust list. MHD only requests one (GNUTLS_CERT_REQUEST), so a
// client without any, or with a stranger's, gets this far.
bool client_certificate_verified(MHD_Connection* c) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr || info->tls_session == nullptr) return false;
  const auto session = static_cast<gnutls_session_t>(info->tls_session);
  unsigned int count = 0;
  if (gnutls_certificate_get_peers(session, &count) == nullptr || count == 0) return false;
  unsigned int status = 0;
  return gnutls_certificate_verify_peers2(session, &status) == GNUTLS_E_SUCCESS && status == 0;
}

constexpr const char kNoClientCertificate[] = "client certificate required";

}  // namespace

struct Standin::State {
  StandinOptions options;
  bool tls = false;
  std::string cert_pem;  // MHD keeps pointers to these while it runs
  std::string key_pem;
  std::string trust_pem;  // CA for client certificates; empty: none asked for
  std::uint16_t port = 0;

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::deque<Reply> scripted;
  Reply default_reply;
  std::vector<RecordedRequest> requests;
  std::size_t accepted = 0;
  std::size_t pending = 0;
  std::size_t connections = 0;
  bool stopping = false;  // cuts delayed replies short so MHD can stop
  std::function<void(const RecordedRequest&)> observer;

  DaemonPtr daemon;  // last member: stopped first, while the rest still exists

  void start();
  void stop();
  Reply next_reply();
  int natural_status(MHD_Connection* c, const RecordedRequest& r) const;
  MHD_Result answer(MHD_Connection* c, RecordedRequest r);

  static MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                               const char* version, const char* upload_data,
                               std::size_t* upload_data_size, void** con_cls);
  static void on_completed(void* cls, MHD_Connection* c, void** con_cls,
                           MHD_RequestTerminationCode toe);
  static void on_connection(void* cls, MHD_Connection* c, void** socket_context,
                            MHD_ConnectionNotificationCode code);
};

void Standin::State::start() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A thread per connection: a delayed reply holds only its own connection.
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;
  // In the array form an integer goes in value, a pointer in ptr_value, and
  // a callback in value with its closure in ptr_value.
  std::vector<MHD_OptionItem> opts = {
      {MHD_OPTION_SOCK_ADDR, 0, &addr},
      {MHD_OPTION_CONNECTION_TIMEOUT, 60, nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&State::on_completed), this},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&State::on_connection), this},
  };
  if (tls) {
    flags |= MHD_USE_TLS;
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(key_pem.c_str())});
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(cert_pem.c_str())});
    // With a trust list MHD asks every client for a certificate; whether
    // one came and chains to the CA is checked per request.
    if (!trust_pem.empty()) opts.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(trust_pem.c_str())});
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});
  MHD_Daemon* d = MHD_start_daemon(flags, port, nullptr, nullptr, &State::on_request, this, MHD_OPTION_ARRAY,
                                   opts.data(), MHD_OPTION_END);
  if (d == nullptr)
    throw std::runtime_error("stand-in: cannot listen on 127.0.0.1:" + std::to_string(port));
  daemon.reset(d);
  const MHD_DaemonInfo* info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  if (info == nullptr || info->port == 0) throw std::runtime_error("stand-in: no bound port");
  port = info->port;
}

void Standin::State::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  changed.notify_all();
  daemon.reset();  // joins the connection threads; they need the mutex
  std::lock_guard<std::mutex> lock(mutex);
  stopping = false;
}

Standin::Reply Standin::State::next_reply() {
  std::lock_guard<std::mutex> lock(mutex);
  if (scripted.empty()) return default_reply;
  Reply r = scripted.front();
  scripted.pop_front();
  return r;
}

int Standin::State::natural_status(MHD_Connection* c, const RecordedRequest& r) const {
  // A gateway doing client authentication refuses before looking at the request.
  if (!trust_pem.empty() && !r.client_certificate) return MHD_HTTP_FORBIDDEN;
  if (r.function_id.empty()) return MHD_HTTP_NOT_FOUND;
  if (r.method != "POST") return MHD_HTTP_METHOD_NOT_ALLOWED;
  bool authorized = false;
  auto key = r.query.find("apiKey");
  if (key != r.query.end() && key->second == options.api_key) authorized = true;
  if (!authorized && options.user && options.password) {
    char* pass_raw = nullptr;
    std::unique_ptr<char, MhdFree> user(MHD_basic_auth_get_username_password(c, &pass_raw));
    std::unique_ptr<char, MhdFree> pass(pass_raw);
    authorized = user && pass && *options.user == user.get() && *options.password == pass.get();
  }
  if (!authorized) return MHD_HTTP_UNAUTHORIZED;
  json_error_t err;
  xmatters::Json body(json_loadb(r.body.data(), r.body.size(), 0, &err));
  if (!body || !json_is_object(body.get())) return MHD_HTTP_BAD_REQUEST;
  return MHD_HTTP_ACCEPTED;
}

MHD_Result Standin::State::answer(MHD_Connection* c, RecordedRequest r) {
  Reply reply = next_reply();
  r.status = reply.status != 0 ? reply.status : natural_status(c, r);

  bool stopped = false;
  if (reply.delay.count() > 0) {
    std::unique_lock<std::mutex> lock(mutex);
    ++pending;
    changed.notify_all();
    stopped = changed.wait_for(lock, reply.delay, [this] { return stopping; });
    --pending;
  }
  if (reply.drop || stopped) r.status = 0;

  std::function<void(const RecordedRequest&)> observe;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (r.status >= 200 && r.status < 300) {
      ++accepted;
      r.request_id = xmtest::random_uuid();
    }
    r.time = std::chrono::steady_clock::now();
    requests.push_back(r);
    observe = observer;
  }
  changed.notify_all();
  if (observe) observe(r);
  if (r.status == 0) return MHD_NO;  // MHD closes the connection without a reply

  xmatters::Json j(json_object());
  if (!reply.echo_headers.empty()) {
    json_t* echo = json_object();
    json_object_set_new(j.get(), "echo", echo);
    for (const auto& name : reply.echo_headers) {
      const auto found = r.headers.find(lower(name));
      if (found != r.headers.end()) json_object_set_new(echo, name.c_str(), json_string(found->second.c_str()));
    }
  }
  if (r.status >= 200 && r.status < 300) {
    json_object_set_new(j.get(), "requestId", json_string(r.request_id.c_str()));
  } else {
    const bool cert_refused = r.status == MHD_HTTP_FORBIDDEN && !trust_pem.empty() && !r.client_certificate;
    json_object_set_new(j.get(), "code", json_integer(r.status));
    json_object_set_new(j.get(), "reason", json_string(reason_phrase(r.status)));
    json_object_set_new(j.get(), "message", json_string(cert_refused ? kNoClientCertificate : "xmatters stand-in"));
  }
  xmatters::DumpedJson dumped(json_dumps(j.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
  const std::string text = dumped.get();
  ResponsePtr resp;
  if (reply.stall_body.count() > 0) {
    auto body = std::make_unique<StalledBody>(StalledBody{text, reply.stall_body, mutex, changed, stopping, pending});
    resp.reset(MHD_create_response_from_callback(text.size(), 1024, &StalledBody::read, body.get(),
                                                 &StalledBody::free));
    if (resp) body.release();  // the response frees it
  } else {
    resp.reset(MHD_create_response_from_buffer(text.size(), const_cast<char*>(text.data()), MHD_RESPMEM_MUST_COPY));
  }
  if (!resp) return MHD_NO;
  if (reply.location) MHD_add_response_header(resp.get(), MHD_HTTP_HEADER_LOCATION, reply.location->c_str());
  MHD_add_response_header(resp.get(), MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (reply.retry_after) MHD_add_response_header(resp.get(), MHD_HTTP_HEADER_RETRY_AFTER, reply.retry_after->c_str());
  if (r.status == MHD_HTTP_UNAUTHORIZED && options.user)
    MHD_add_response_header(resp.get(), MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"xMatters\"");
  return MHD_queue_response(c, static_cast<unsigned>(r.status), resp.get());
}

MHD_Result Standin::State::on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                                      const char*, const char* upload_data,
                                      std::size_t* upload_data_size, void** con_cls) {
  auto* self = static_cast<State*>(cls);
  if (*con_cls == nullptr) {
    // Ownership passes to MHD until on_completed takes it back.
    *con_cls = std::make_unique<Exchange>().release();
    return MHD_YES;
  }
  auto* ex = static_cast<Exchange*>(*con_cls);
  if (*upload_data_size > 0) {
    ex->body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  try {
    RecordedRequest r;
    r.method = method;
    r.path = url;
    r.function_id = function_id_of(r.path);
    r.body = std::move(ex->body);
    if (!self->trust_pem.empty()) r.client_certificate = client_certificate_verified(c);
    MHD_get_connection_values(
        c, MHD_GET_ARGUMENT_KIND,
        [](void* m, MHD_ValueKind, const char* k, const char* v) {
          (*static_cast<std::map<std::string, std::string>*>(m))[k] = v != nullptr ? v : "";
          return MHD_YES;
        },
        &r.query);
    MHD_get_connection_values(
        c, MHD_HEADER_KIND,
        [](void* m, MHD_ValueKind, const char* k, const char* v) {
          (*static_cast<std::map<std::string, std::string>*>(m))[lower(k)] = v != nullptr ? v : "";
          return MHD_YES;
        },
        &r.headers);
    return self->answer(c, std::move(r));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stand-in: %s\n", e.what());
    return MHD_NO;
  }
}

void Standin::State::on_completed(void*, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  std::unique_ptr<Exchange> done(static_cast<Exchange*>(*con_cls));
  *con_cls = nullptr;
}

void Standin::State::on_connection(void* cls, MHD_Connection*, void**, MHD_ConnectionNotificationCode code) {
  if (code != MHD_CONNECTION_NOTIFY_STARTED) return;
  auto* self = static_cast<State*>(cls);
  std::lock_guard<std::mutex> lock(self->mutex);
  ++self->connections;
}

Standin::Standin(StandinOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  state_->port = state_->options.port;
  if (state_->options.tls_cert_file && state_->options.tls_key_file) {
    state_->tls = true;
    state_->cert_pem = read_whole(*state_->options.tls_cert_file);
    state_->key_pem = read_whole(*state_->options.tls_key_file);
    if (state_->options.tls_client_ca_file) state_->trust_pem = read_whole(*state_->options.tls_client_ca_file);
  } else if (state_->options.tls_client_ca_file) {
    throw std::invalid_argument("stand-in: tls_client_ca_file needs tls_cert_file and tls_key_file");
  }
  state_->start();
}

Standin::~Standin() { state_->stop(); }

std::uint16_t Standin::port() const { return state_->port; }

std::string Standin::url(const std::string& function_id, bool with_key) const {
  std::string u = std::string(state_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(state_->port) +
                  kPathPrefix + function_id + kPathSuffix;
  if (with_key) u += "?apiKey=" + percent_encode(state_->options.api_key);
  return u;
}

void Standin::script(std::vector<Reply> replies) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->scripted.assign(replies.begin(), replies.end());
}

void Standin::set_default_reply(Reply reply) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->default_reply = reply;
}

std::vector<RecordedRequest> Standin::requests() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->requests;
}

std::size_t Standin::request_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->requests.size();
}

std::size_t Standin::accepted_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->accepted;
}

std::size_t Standin::pending_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->pending;
}

std::size_t Standin::connection_count() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->connections;
}

bool Standin::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return state_->requests.size() >= n; });
}

bool Standin::wait_for_accepted(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return state_->accepted >= n; });
}

void Standin::clear() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->requests.clear();
  state_->requests.shrink_to_fit();  // the bench counts the memory the plugin keeps, in this process
  state_->accepted = 0;
  state_->scripted.clear();
}

void Standin::set_observer(std::function<void(const RecordedRequest&)> observer) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->observer = std::move(observer);
}

void Standin::stop() {
  if (state_->daemon) state_->stop();
}

void Standin::restart() {
  if (!state_->daemon) state_->start();
}

namespace {

// Runs a command with its output appended to log_path; true when it exits 0.
bool run_command(const std::vector<std::string>& args, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// EC keys: generated in milliseconds, unlike RSA.
const std::vector<std::string> kNewEcKey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

// Makes dir/NAME.key and dir/NAME.pem, a certificate for subject with the
// given extensions, signed by dir/ca.pem.
bool make_signed_certificate(const std::string& dir, const std::string& name, const std::string& subject,
                             const std::string& extensions) {
  const std::string log = dir + "/openssl.log";
  const std::string ext = dir + "/" + name + ".ext";
  {
    std::ofstream out(ext);
    out << extensions;
    if (!out) return false;
  }
  std::vector<std::string> csr = {"openssl", "req"};
  csr.insert(csr.end(), kNewEcKey.begin(), kNewEcKey.end());
  csr.insert(csr.end(), {"-keyout", dir + "/" + name + ".key", "-out", dir + "/" + name + ".csr", "-subj", subject});
  const std::vector<std::string> sign = {"openssl", "x509", "-req", "-in", dir + "/" + name + ".csr", "-CA",
                                         dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                                         "-out", dir + "/" + name + ".pem", "-days", "2", "-extfile", ext};
  return run_command(csr, log) && run_command(sign, log);
}

}  // namespace

bool make_test_certificates(const std::string& dir) {
  std::vector<std::string> ca = {"openssl", "req", "-x509"};
  ca.insert(ca.end(), kNewEcKey.begin(), kNewEcKey.end());
  ca.insert(ca.end(), {"-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "2", "-subj",
                       "/CN=xmatters test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                       "keyUsage=critical,keyCertSign,cRLSign"});
  return run_command(ca, dir + "/openssl.log") &&
         make_signed_certificate(dir, "server", "/CN=localhost",
                                 "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "basicConstraints=critical,CA:FALSE\n"
                                 "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                 "extendedKeyUsage=serverAuth\n");
}

bool make_client_certificate(const std::string& dir) {
  return make_signed_certificate(dir, "client", "/CN=collectd-xmatters test client",
                                 "basicConstraints=critical,CA:FALSE\n"
                                 "keyUsage=critical,digitalSignature\n"
                                 "extendedKeyUsage=clientAuth\n");
}

}  // namespace xmtest
