// The documents of the command's read-only verbs (collectd-xmatters(1)
// status, outages, queue, dead-letters): one JSON document per verb, made
// from the running plugin's state (live.cc) or from SpoolDir read with
// collectd stopped (offline.cc). Both build the same inputs and call the
// same function, so a document has the same fields either way; the command
// renders its text from the document.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "delivery/dead_letter.h"
#include "delivery/delivery.h"
#include "outage/outage.h"
#include "util/resources.h"
#include "silence/silence.h"  // Matcher

namespace xmatters::control {

// The dead-letter file's name in SpoolDir (collectd-xmatters(5) DELIVERY).
inline constexpr const char* kDeadLetterFile = "dead-letter.jsonl";

// Where a document's data came from, and when.
struct Source {
  bool running = false;            // the running plugin answered
  std::optional<TimePoint> since;  // running: when the plugin started
  std::optional<long> pid;         // collectd's, when running
  std::string spool_dir;
  TimePoint now;
};

// What the operator asked for: --integration and MATCHER... (outages).
struct Filter {
  std::string integration;        // "": every integration
  std::vector<Matcher> matchers;  // all must match
  bool expired = false;           // silence list --expired

  bool wants(const std::string& name) const { return integration.empty() || integration == name; }
  // An outage matches when all matchers match its key, or one of its
  // members' (a host or flood outage).
  bool wants(const std::string& name, const OutageKey& key, const Outage& outage) const;

  // As a request's arguments {"integration": "...", "matchers": ["..."],
  // "expired": true},
  // and back; from_args throws std::invalid_argument for a bad matcher.
  Json to_args() const;
  static Filter from_args(const json_t* args);
};

struct OpenOutage {
  std::string integration;
  OutageKey key;
  Outage outage;
  // What holds its page back now: "silence <id>" or "maintenance <name>"
  // (Coverage::covering); "" when nothing does, or it is not known.
  std::string covered_by = {};
  // Its page is due but waits for FloodLimit's pacing (the running plugin's
  // delivery knows it; false when read from SpoolDir).
  bool paced = false;
};

// An integration's open outages and letters, counted for status.
struct Counts {
  std::size_t open_outages = 0, held = 0, folded = 0, dead_letters = 0;
  void add(const Outage& o) {
    ++open_outages;
    held += o.held;
    folded += o.folded;
  }
};

// status: one member per integration of `integrations` (configuration
// order), with the counts of counts (by name; missing ones are zero).
// active_silences: the silences in force at source.now (the others are
// left out).
std::string status_document(const Source& source, const std::vector<IntegrationStatus>& integrations,
                            const std::map<std::string, Counts>& counts, const Filter& filter,
                            const std::vector<Silence>& active_silences = {});

// silence list: each silence, pending and active ones, and with
// filter.expired also those ended (kept 5 days); by start.
std::string silences_document(const Source& source, const std::vector<Silence>& silences, const Filter& filter);

// outages: each open outage that the filter wants.
std::string outages_document(const Source& source, const std::vector<OpenOutage>& outages, const Filter& filter);

// queue: each undelivered event, each outage's in order.
std::string queue_document(const Source& source, const std::vector<QueuedEvent>& queue, const Filter& filter);

// dead-letters: each letter of the file, in the file's order.
std::string dead_letters_document(const Source& source, const DeadLetters& letters, const Filter& filter);

// The letters in SpoolDir's dead-letter file (read_dead_letters).
DeadLetters read_spool_dead_letters(const std::string& spool_dir);

}  // namespace xmatters::control
