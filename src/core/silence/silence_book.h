// The operator's silences as the running plugin keeps them
// (collectd-xmatters(1) SILENCES): in force through Coverage, kept through
// the spool, where each add and expire is one SILENCE record (doc/storage.md,
// record 10) made durable before it is answered, and every compaction's
// table holds the silences not yet forgotten.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "silence/coverage.h"
#include "util/function_ref.h"
#include "util/mutex.h"
#include "silence/silence.h"

namespace xmatters {

class SilenceBook {
 public:
  // write_durably(record): the record is durable when it returns; throws
  // std::system_error when not (Delivery::record_durably). changed(): a
  // silence was added or ended early (CoverWatch::poke). Both outlive the
  // book, as coverage does.
  SilenceBook(Coverage& coverage, std::function<void(const std::string&)> write_durably,
              std::function<void()> changed);

  // Puts the silences of the spool's table (Spool::take_recovered_changes:
  // the SILENCE records among the outage changes, the last of an id wins)
  // in force, except those forgotten by now. Returns how many.
  std::size_t recover(const std::vector<std::string>& table, TimePoint now);

  // Durable, then in force. Throws std::system_error (then not in force).
  void add(const Silence& s);
  // Ends the silence now (a pending one never begins), durably. nullopt
  // when there is none of that id still to end. Throws std::system_error.
  std::optional<Silence> expire(const std::string& id, TimePoint now);

  // Writes every silence not forgotten at now as a SILENCE record: the
  // spool's snapshot (SnapshotSource), composed with the router's.
  void snapshot(FunctionRef<void(std::string_view)> write, TimePoint now) const;

 private:
  Coverage& coverage_;
  const std::function<void(const std::string&)> write_durably_;
  const std::function<void()> changed_;
  // Held across a record's write and the change it makes in coverage, and
  // by snapshot: a compaction's table has every silence whose record is in
  // the segments it replaces. Taken before the spool's and Coverage's.
  mutable Mutex mutex_;
};

// The silences that SILENCE records among table (framed records, as
// SpoolContents::changes) leave, the last record of an id winning, none
// forgotten at now; by start. For the command's read-only view too.
std::vector<Silence> silences_of(const std::vector<std::string>& table, TimePoint now);

}  // namespace xmatters
