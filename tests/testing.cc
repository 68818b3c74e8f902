#include "testing.h"

#include <uuid/uuid.h>

#include <CUnit/Basic.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace xmtest {

int run(int argc, char** argv, const std::vector<Suite>& suites) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  const char* only = argc > 1 ? argv[1] : nullptr;
  for (const auto& s : suites) {
    CU_pSuite suite = CU_add_suite(s.name, nullptr, nullptr);
    if (suite == nullptr) return 2;
    for (const auto& t : s.tests)
      if (only == nullptr || std::strstr(t.name, only) != nullptr) CU_add_test(suite, t.name, t.fn);
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  const unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
  const unsigned ran = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  std::printf("\n");
  return failed == 0 && ran > 0 ? 0 : 1;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/xmatters-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  nftw(
      path_.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

void CapturingLogger::log(xmatters::LogLevel level, const std::string& message) {
  static const char* const names[] = {"ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"};
  if (std::getenv("XM_TEST_VERBOSE") != nullptr)
    std::fprintf(stderr, "[%s] %s\n", names[static_cast<int>(level)], message.c_str());
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.push_back({level, message});
}

std::vector<CapturingLogger::Entry> CapturingLogger::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_;
}

std::size_t CapturingLogger::count(xmatters::LogLevel level, const std::string& needle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& e : entries_)
    if (e.level == level && e.message.find(needle) != std::string::npos) ++n;
  return n;
}

std::string CapturingLogger::dump() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& e : entries_) out += std::to_string(static_cast<int>(e.level)) + " " + e.message + "\n";
  return out;
}

void CapturingLogger::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool wait_while_progressing(const std::function<bool()>& cond, const std::function<std::uint64_t()>& progress,
                            std::chrono::milliseconds stall, std::chrono::milliseconds most) {
  const auto start = std::chrono::steady_clock::now();
  auto last_change = start;
  std::uint64_t last = progress();
  for (;;) {
    if (cond()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (const std::uint64_t p = progress(); p != last) {
      last = p;
      last_change = now;
    }
    if (now - last_change >= stall || now - start >= most) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

JsonPtr parse_json(const std::string& text) {
  json_error_t error;
  return JsonPtr(json_loadb(text.data(), text.size(), JSON_DECODE_ANY, &error));
}

std::string json_string_member(const json_t* obj, const char* key) {
  const json_t* v = json_object_get(obj, key);
  if (v == nullptr) return "<absent>";
  if (!json_is_string(v)) return "<not a string>";
  return json_string_value(v);
}

std::string random_uuid() {
  uuid_t id;
  uuid_generate_random(id);
  char text[37];
  uuid_unparse_lower(id, text);
  return text;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Run run_shell(const std::string& line) {
  Run r;
  FILE* p = ::popen(line.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string command_bin() { return COMMAND_BIN; }

Run run_command(const std::vector<std::string>& args, const CommandOptions& options) {
  std::string line;
  for (const auto& e : options.env) line += "export " + shell_quote(e) + "; ";
  line += options.prefix + shell_quote(command_bin());
  for (const auto& a : args) line += " " + shell_quote(a);
  line += options.stderr_too ? " 2>&1" : " 2>/dev/null";
  return run_shell(line);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool one_line(const std::string& out) { return !out.empty() && out.find('\n') == out.size() - 1; }

}  // namespace xmtest
