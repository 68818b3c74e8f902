// The dead-letter file (collectd-xmatters(5) DELIVERY): one JSON line per event that can never
// be delivered, in SpoolDir, for an operator to read or replay.
#pragma once

#include <mutex>
#include <string>

#include "event.h"

namespace xmatters {

struct DeadLetterEntry {
  const Event& event;
  const std::string& body;    // the payload as it would have been sent
  const std::string& url;     // "" when it was never sent
  int attempts = 0;
  long status = 0;            // the last reply's status; 0 for none
  const std::string& reason;
  const std::string& reply;   // the start of the last reply
};

class DeadLetterFile {
 public:
  explicit DeadLetterFile(std::string path) : path_(std::move(path)) {}
  DeadLetterFile(const DeadLetterFile&) = delete;
  DeadLetterFile& operator=(const DeadLetterFile&) = delete;

  const std::string& path() const { return path_; }
  // Appends the entry as one line; false when the file cannot be written.
  // Thread-safe.
  bool write(const DeadLetterEntry& entry);

 private:
  const std::string path_;
  std::mutex mutex_;
};

}  // namespace xmatters
