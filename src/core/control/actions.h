// The requests of collectd-xmatters(1) that act through the running plugin:
// resend (dead letters delivered again) and test (a test outage and its
// clear through the real path). collectd-xmatters(1), RESEND and TEST.
#pragma once

#include <atomic>

#include "config/config.h"
#include "control/verbs.h"
#include "delivery/delivery.h"

namespace xmatters::control {

// Adds to verbs, answered with config (its spool_dir resolved) and
// delivery, which must outlive the handlers:
//   resend {"event_ids": [..] | "all": true, "integration"?, "include_cleared"?}
//     -> {"resent": [event..], "skipped": [event + "reason"], "dead_letter_file_rewritten"}
//     answered once the events are durable in the spool and out of the
//     dead-letter file (or that file could not be rewritten: false).
//   test {"integration"?, "clear"? (default true), "user"}
//     -> {"integrations": [{"name", "outage_id", "outage": answer, "clear": answer | null}],
//         "stopping"}
//     answer: {"event_id", "delivered", "status", "request_id", "reason"}
//     Once stopping is raised (and it outlives the handlers too), a test
//     waits for no answer and sends no clear: it answers at once, stopping
//     true, so that it never holds up collectd's shutdown.
void add_action_verbs(Verbs& verbs, const Config& config, Delivery& delivery, const std::atomic<bool>& stopping);

}  // namespace xmatters::control
