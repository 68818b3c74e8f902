// collectd-xmatters (collectd-xmatters(1)): what the verbs share. Each verb
// is a function of the global options and its own arguments that returns
// the exit status; main() parses the global options and dispatches.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/views.h"
#include "util/resources.h"

namespace xmatters::command {

// A usage error: main() prints "collectd-xmatters: " + what() and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failure to print as one line, with its exit status.
class Failure : public std::runtime_error {
 public:
  Failure(int status, const std::string& line) : std::runtime_error(line), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

inline constexpr const char* kDefaultConfig = "/etc/collectd/collectd.conf";

struct Options {
  std::string config = kDefaultConfig;  // --config
  std::string spool_dir;                // --spool-dir ("" = from the configuration)
  bool json = false;                    // --json
};

using Args = std::vector<std::string>;

// The verbs, in the order `collectd-xmatters --help` lists them.
struct Verb {
  const char* name;
  const char* usage;  // arguments after the verb's name
  const char* summary;
  int (*run)(const Options&, const Args&);
};
const std::vector<Verb>& verbs();

int check(const Options& options, const Args& args);
int status(const Options& options, const Args& args);
int outages(const Options& options, const Args& args);
int queue(const Options& options, const Args& args);
int dead_letters(const Options& options, const Args& args);
int resend(const Options& options, const Args& args);
int test(const Options& options, const Args& args);
int silence(const Options& options, const Args& args);

// Where the plugin is (collectd-xmatters(1), WHERE IT READS): SpoolDir as
// --spool-dir or the configuration names it, and whether collectd's
// configuration loads the plugin. A configuration that cannot be read
// without --spool-dir is a Failure of status unreadable.
struct Place {
  std::string spool_dir;
  bool loads_plugin = true;  // assumed when the configuration cannot be read
  std::vector<std::string> integrations;  // configured, in order
};
Place locate(const Options& options, int unreadable);

// One read-only verb's document (control/views.h): the running plugin's
// answer, or with no plugin running SpoolDir read read-only (a note on
// stderr says so). What cannot be read is a Failure of status unreadable.
Json fetch(const Place& place, const std::string& verb, const control::Filter& filter,
           int unreadable);

// Prints the document (--json), indented.
void print_json(const json_t* doc);
// A member of a document as a table cell: "-" for null or missing.
std::string cell(const json_t* object, const char* key);

// Takes "--integration N" out of args (once at most); "" when absent.
std::string take_integration(Args& args);
// Usage error for whatever arguments remain.
void no_more_args(const Args& args);

}  // namespace xmatters::command
