#include "control/live.h"

#include <unistd.h>

#include "control/actions.h"
#include "json_writer.h"
#include "payload.h"

namespace xmatters::control {

Verbs live_verbs(const Config& config, Delivery& delivery, Router& router) {
  (void)config;
  (void)delivery;
  (void)router;
  Verbs verbs;
  const TimePoint started = Clock::now();
  verbs.add("ping", [started](const json_t*) {
    JsonWriter w;
    w.begin_object()
        .plain_key("pid")
        .number(static_cast<std::int64_t>(::getpid()))
        .plain_key("since")
        .string(format_rfc3339(started))
        .plain_key("version")
        .string(XMATTERS_VERSION)
        .end_object();
    return Answer::result(w.take());
  });
  add_action_verbs(verbs, config, delivery);
  return verbs;
}

}  // namespace xmatters::control
