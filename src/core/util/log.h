// Logging seam: units log through a Logger so they run without collectd;
// the glue forwards to plugin_log with the "xmatters plugin: " prefix.
#pragma once

#include <string>

namespace xmatters {

enum class LogLevel { Error, Warning, Notice, Info, Debug };

class Logger {
 public:
  virtual ~Logger() = default;
  // Must be callable from any thread at once.
  virtual void log(LogLevel level, const std::string& message) = 0;

  void error(const std::string& m) { log(LogLevel::Error, m); }
  void warning(const std::string& m) { log(LogLevel::Warning, m); }
  void notice(const std::string& m) { log(LogLevel::Notice, m); }
  void info(const std::string& m) { log(LogLevel::Info, m); }
  void debug(const std::string& m) { log(LogLevel::Debug, m); }
};

}  // namespace xmatters
