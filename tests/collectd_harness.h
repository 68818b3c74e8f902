// A real collectd daemon for the end-to-end tests: Debian's collectd-core
// started in the foreground with a private directory (config, BaseDir,
// PluginDir, log file, unixsock socket), and a client for its unixsock.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "delivery/dead_letter.h"
#include "standin.h"
#include "testing.h"

namespace xmtest {

// One line-oriented connection to collectd's unixsock plugin.
class UnixsockClient {
 public:
  struct Reply {
    int status = -1;                  // collectd's leading number; < 0 is an error
    std::string message;              // the rest of the first line
    std::vector<std::string> lines;   // the lines that follow (GETVAL, LISTVAL)
    bool ok() const { return status >= 0; }
  };

  // Throws std::system_error when the socket does not accept the connection.
  explicit UnixsockClient(const std::string& socket_path);
  ~UnixsockClient();
  UnixsockClient(const UnixsockClient&) = delete;
  UnixsockClient& operator=(const UnixsockClient&) = delete;

  // Sends one command line (without the newline) and reads its reply.
  // Throws std::runtime_error when the connection breaks.
  Reply command(const std::string& line);

 private:
  std::string read_line();
  int fd_ = -1;
  std::string buffer_;
};

// A UDP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
// released), for a collectd network plugin's Listen.
std::uint16_t free_udp_port();
// The same for TCP (a proxy's Port).
std::uint16_t free_tcp_port();

// s as one double-quoted argument of a unixsock command (an identifier, a
// PUTNOTIF message), escaped as collectd's parser wants it.
std::string quote_unixsock(const std::string& s);

class CollectdProcess {
 public:
  static constexpr const char* kHost = "testhost";
  static constexpr const char* kReadLoop = "Initialization complete, entering read-loop.";

  // config: what follows the harness's own part of collectd.conf (BaseDir,
  // PIDFile, PluginDir, TypesDB, Interval 1, Hostname "testhost", logfile at
  // info, unixsock), typically global options such as `Timeout 2`,
  // `LoadPlugin xmatters` with its block and a threshold block. Nothing runs
  // until start().
  explicit CollectdProcess(std::string config);
  // Stops a running collectd (SIGTERM, then SIGKILL) and removes the directory.
  ~CollectdProcess();
  CollectdProcess(const CollectdProcess&) = delete;
  CollectdProcess& operator=(const CollectdProcess&) = delete;

  // The next start() uses this configuration; the directories stay.
  void set_config(std::string config);
  // Writes collectd.conf as start() does, for running collectd otherwise
  // (collectd -T); returns its path.
  std::string write_config();
  // Runs `collectd -T -C <config>` (the configuration check that works in
  // collectd 5.12, whose -t reads nothing) to its end, with its output in
  // log(). Returns its exit code (-1 when it did not exit normally).
  int check_config();

  // Starts collectd -f and waits until it logs kReadLoop (true) or exits
  // first (false; exit_status() tells how). Also false after timeout, with
  // collectd left running. Throws when collectd is already running.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGTERM to collectd and waits for it; SIGKILL to its process group after
  // timeout. Returns the exit status (as waitpid's), or nullopt when it was
  // not running.
  std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // SIGKILL, as a crash: nothing of collectd's shutdown runs.
  void kill9();
  // start() with the same directories (BaseDir and the plugin's spool stay).
  bool restart(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    stop();
    return start(timeout);
  }
  bool running();
  // Waits for collectd to exit on its own.
  bool wait_for_exit(std::chrono::milliseconds timeout);
  // waitpid's status of the last run that ended; nullopt while running or
  // before the first run.
  std::optional<int> exit_status() const { return exit_status_; }
  // The exit code when the last run exited normally, else -1.
  int exit_code() const;

  // collectd's log file and its stderr, everything since the first start.
  std::string log() const;
  // The part of log() written since the latest start().
  std::string log_since_start() const;
  // Waits until the log since the latest start() holds needle count times.
  bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                    std::size_t count = 1) const;
  // Lines of log_since_start() that contain every needle.
  std::vector<std::string> log_lines(const std::vector<std::string>& needles) const;

  const std::string& dir() const { return dir_.path(); }
  std::string base_dir() const { return dir_ / "base"; }
  std::string socket_path() const { return dir_ / "collectd.sock"; }
  std::string config_path() const { return dir_ / "collectd.conf"; }
  pid_t pid() const { return pid_; }

  // A connection to the unixsock of the running collectd (made on first use,
  // dropped at stop). Throws when collectd does not answer.
  UnixsockClient& unixsock();
  // PUTVAL "testhost/<id>" interval=1 N:<value>; id is
  // plugin[-instance]/type[-instance]. True on collectd's success reply.
  bool putval(const std::string& id, double value);
  // The same for another host's value list: PUTVAL "<host>/<id>", as an
  // aggregator receives its fleet's values.
  bool putval(const std::string& host, const std::string& id, double value);
  // GETVAL of one identifier ("host/plugin-instance/type-instance"): the
  // value of its first data source, or nullopt when collectd has none.
  std::optional<double> getval(const std::string& identifier);
  // PUTNOTIF with the given severity ("failure", "warning", "okay"), now as
  // its time, and extra `key=value` options (host=..., plugin=...); the
  // message goes last, quoted.
  bool putnotif(const std::string& severity, const std::string& options, const std::string& message);

 private:
  void reap(bool block);

  TempDir dir_;
  std::string config_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::size_t log_mark_ = 0;
  std::size_t stderr_mark_ = 0;
  std::optional<UnixsockClient> unixsock_;
};

// collectd's csv plugin writing into dir, counters as they are (not as
// rates, which is what unixsock's GETVAL answers for a DERIVE).
std::string csv_block(const std::string& dir);
// The value on the last line ("<time>,<value>") of the newest csv file in
// dir whose name starts with prefix (the csv plugin adds the date).
std::optional<double> last_csv_value(const std::string& dir, const std::string& prefix);

// The end-to-end tests' aggregator: one collectd whose threshold plugin
// watches plugin "e2e" (WARNING above 80, FAILURE above 90) for every host,
// as an aggregator does its fleet's, and the plugin's integration "ops"
// delivering to the stand-in (outage-fn, clear-fn); the operator's command
// run against it. Values are never missing (collectd's Timeout 1000).
class Live {
 public:
  struct Config {
    std::string integration;  // more of <Integration "ops">
    std::string plugin;       // more of <Plugin xmatters>, after the integration (<Maintenance>)
    std::string global;       // global options, before the plugins
    StandinOptions standin;   // the stand-in's (TLS)
    std::string timeout = "5";  // the integration's Timeout (seconds)
  };
  explicit Live(const Config& config);
  explicit Live(const std::string& integration = "", const std::string& plugin = "", const std::string& global = "")
      : Live(Config{integration, plugin, global, {}}) {}

  Standin xm;
  CollectdProcess c;

  // c.start(), printing collectd's log when it fails.
  bool start();
  // collectd-xmatters --config <c's> args; prints its output when it exits non-zero.
  Run command(std::vector<std::string> args, const std::vector<std::string>& env = {});
  // silence add matchers --duration duration; its id (the one line it
  // prints), "" when it failed.
  std::string silence(const std::vector<std::string>& matchers, const std::string& duration = "1h");
  // The document of a read-only verb (--json); nullptr when not JSON.
  JsonPtr document(const std::vector<std::string>& args);
  // The open outage of `outages` whose key is key ("host/e2e-inst/gauge"), or nullptr.
  JsonPtr outage(const std::string& key);

  std::string spool_dir() const { return c.base_dir() + "/xmatters"; }
  std::string dead_letter_path() const { return spool_dir() + "/dead-letter.jsonl"; }
  std::vector<xmatters::DeadLetter> letters() const;

  // The stand-in's request i; a string member of its body; its collectd.host.
  RecordedRequest request(std::size_t i) const { return xm.requests().at(i); }
  std::string field(std::size_t i, const char* name) const;
  std::string host(std::size_t i) const;
  // Indexes of the requests whose services are those of the value list.
  std::vector<std::size_t> requests_for(const std::string& services) const;
};

// The seconds of an RFC 3339 time ("2026-12-06T01:02:03"), for comparing
// a page's start_time with the outage's start.
inline std::string seconds_of(const std::string& rfc3339) { return rfc3339.substr(0, 19); }

}  // namespace xmtest
