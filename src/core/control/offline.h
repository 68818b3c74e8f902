// What the command shows with collectd stopped (collectd-xmatters(1), WHERE
// IT READS): SpoolDir read through the recovery's own reader (read_spool),
// read-only, into the views' inputs. It writes, creates, locks and removes
// nothing.
#pragma once

#include <string>
#include <vector>

#include "control/views.h"

namespace xmatters::control {

struct SpoolView {
  // The configured integrations first, in order, then any other one the
  // spool holds events or outages of.
  std::vector<IntegrationStatus> integrations;  // name, queued, oldest_queued only
  std::vector<QueuedEvent> queue;               // in the order a start sends them; no attempts
  std::vector<OpenOutage> outages;              // as a start recovers them, covered_by a silence's
  std::vector<Silence> silences;                // those the spool keeps (silences_of)
};

// Throws std::system_error when a file of SpoolDir cannot be read
// (NewerSpoolFormat, a std::runtime_error, for a newer format).
SpoolView read_spool_view(const std::string& spool_dir, const std::vector<std::string>& configured);

}  // namespace xmatters::control
