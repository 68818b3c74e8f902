// What the running plugin answers over the control channel
// (collectd-xmatters(1), THE CHANNEL): the verbs served from live state.
#pragma once

#include "config.h"
#include "control/verbs.h"
#include "delivery.h"
#include "router.h"

namespace xmatters::control {

// The verbs the running plugin serves, answered from config, delivery and
// router, which must outlive the returned handlers:
//   ping: {"pid", "since" (RFC 3339 UTC, when the plugin started), "version"}
Verbs live_verbs(const Config& config, Delivery& delivery, Router& router);

}  // namespace xmatters::control
