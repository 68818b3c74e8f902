// The on-disk queue of undelivered events under SpoolDir: an append-only
// log of CRC-framed records (see spool_format.h) that survives a torn tail.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "event.h"
#include "log.h"
#include "spool_io.h"

namespace xmatters {

class Spool {
 public:
  // Opens dir (created with mode 0700 if missing; files are 0600) and
  // replays it: events appended and not acknowledged are kept for
  // take_recovered(). A damaged or torn record is skipped with a WARNING.
  // Throws std::system_error when dir cannot be used.
  Spool(const std::string& dir, Logger& log, std::shared_ptr<SpoolIo> io = nullptr);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // The undelivered events found at open, oldest first; once.
  std::vector<Event> take_recovered();

  // Thread-safe. When it returns, the event survives a crash of the process
  // (it is in the kernel's page cache; sync() makes it survive power loss).
  // Throws std::system_error on an I/O error.
  void append(const Event& event);

  // Thread-safe: the event is delivered or dead-lettered; it will not be
  // recovered again. Compacts the log when enough of it is acknowledged.
  void acknowledge(const std::string& event_id);

  // Flushes the log to stable storage.
  void sync();

  // Events appended (or recovered) and not acknowledged.
  std::size_t pending() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xmatters
