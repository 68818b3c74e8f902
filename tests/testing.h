// Test support shared by every test program: the CUnit runner, temporary
// directories, a Logger that captures, JSON parsing and condition waits.
#pragma once

#include <CUnit/CUnit.h>
#include <jansson.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util/log.h"
#include "util/resources.h"

// CUnit's *_FATAL assertions longjmp out of a test, past every destructor
// (a collectd would be left running): this one fails and returns instead.
#define XM_REQUIRE(cond)                                                                        \
  do {                                                                                          \
    const bool xm_require_ok_ = static_cast<bool>(cond);                                        \
    CU_assertImplementation(xm_require_ok_ ? CU_TRUE : CU_FALSE, __LINE__, "REQUIRE(" #cond ")", \
                            __FILE__, "", CU_FALSE);                                            \
    if (!xm_require_ok_) return;                                                                \
  } while (0)

namespace xmtest {

struct Test {
  const char* name;
  void (*fn)();
};

struct Suite {
  const char* name;
  std::vector<Test> tests;
};

// Runs the suites with CUnit's basic interface (its summary ends the
// output). Returns the process exit status: 0 when every test passed.
// argv[1], when given, runs only the tests whose name contains it.
int run(int argc, char** argv, const std::vector<Suite>& suites);

// A fresh directory under $TMPDIR, removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Records every line; prints them to stderr as well when XM_TEST_VERBOSE is set.
class CapturingLogger : public xmatters::Logger {
 public:
  struct Entry {
    xmatters::LogLevel level;
    std::string message;
  };
  void log(xmatters::LogLevel level, const std::string& message) override;
  std::vector<Entry> entries() const;
  // Lines at that level whose text contains needle.
  std::size_t count(xmatters::LogLevel level, const std::string& needle = "") const;
  bool contains(xmatters::LogLevel level, const std::string& needle) const { return count(level, needle) > 0; }
  // Every line, for a failing assertion's context.
  std::string dump() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

std::string read_file(const std::string& path);

// A random UUID (libuuid): event ids of test events, the stand-in's requestId.
std::string random_uuid();
void write_file(const std::string& path, const std::string& content);
bool file_exists(const std::string& path);

// Polls cond every few milliseconds until it holds or timeout passes.
bool wait_until(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Polls cond until it holds, for as long as work goes on: gives up when
// progress() (any measure of the work, e.g. requests received plus bytes
// on disk) has not changed for `stall`, or after `most` in all. For long
// drains whose speed depends on the machine (sanitizers, a loaded CI).
bool wait_while_progressing(const std::function<bool()>& cond, const std::function<std::uint64_t()>& progress,
                            std::chrono::milliseconds stall, std::chrono::milliseconds most);

// A test whose exception (a harness error: collectd not answering, a
// stand-in that cannot start) fails that test instead of the program.
template <void (*F)()>
void guarded() {
  try {
    F();
  } catch (const std::exception& e) {
    const std::string what = std::string("exception: ") + e.what();
    CU_assertImplementation(CU_FALSE, 0, what.c_str(), __FILE__, "", CU_FALSE);
  }
}

// A program's run: its exit code (-1 when it did not exit normally) and
// what it wrote.
struct Run {
  int status = -1;
  std::string out;
};

// s as one argument of a /bin/sh command line.
std::string shell_quote(const std::string& s);
// Runs line with /bin/sh to its end; out is its stdout (2>&1 in line puts
// stderr there too).
Run run_shell(const std::string& line);

// The build's collectd-xmatters (collectd-xmatters(1)).
std::string command_bin();
struct CommandOptions {
  std::vector<std::string> env;  // "NAME=value" assignments for its environment
  bool stderr_too = true;        // out holds stderr too; else stderr is dropped
  std::string prefix;            // what it runs under ("setpriv ... "), with its trailing space
};
// collectd-xmatters with args, as an operator runs it.
Run run_command(const std::vector<std::string>& args, const CommandOptions& options = {});
// Its stdout only.
inline Run run_command_stdout(const std::vector<std::string>& args) {
  CommandOptions o;
  o.stderr_too = false;
  return run_command(args, o);
}

bool contains(const std::string& text, const std::string& part);
// One line, ending with its newline: the shape of the command's errors.
bool one_line(const std::string& out);

using JsonPtr = xmatters::Json;

// nullptr when text is not valid JSON.
JsonPtr parse_json(const std::string& text);
// The string member key of obj, or "<absent>" / "<not a string>".
std::string json_string_member(const json_t* obj, const char* key);

}  // namespace xmtest
