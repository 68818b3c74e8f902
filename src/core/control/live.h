// What the running plugin answers over the control channel
// (collectd-xmatters(1), THE CHANNEL): the verbs served from live state.
#pragma once

#include <atomic>

#include "config/config.h"
#include "silence/coverage.h"
#include "control/verbs.h"
#include "delivery/delivery.h"
#include "outage/router.h"

namespace xmatters::control {

// The verbs the running plugin serves, answered from config, delivery and
// router, which must outlive the returned handlers:
//   ping: {"pid", "since" (RFC 3339 UTC, when the plugin started), "version"}
//   status, outages, queue, dead-letters: the views' documents (views.h),
//     args {"integration", "matchers"} as Filter::to_args makes them;
//     with coverage, status lists the active silences and outages what
//     covers each (coverage outlives the handlers too)
//   resend, test: actions.h, with stopping (raised as the plugin stops)
Verbs live_verbs(const Config& config, Delivery& delivery, Router& router, const std::atomic<bool>& stopping,
                 const Coverage* coverage = nullptr);

}  // namespace xmatters::control
