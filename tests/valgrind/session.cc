// One real collectd session with the plugin, for valgrind memcheck
// (contrib/run-tests valgrind runs it with XM_COLLECTD_WRAPPER set to
// valgrind): load, an outage, its escalation and clear, xMatters down and
// back with an outage and a clear queued meanwhile, shutdown. Waits are
// generous, since collectd runs many times slower under memcheck. Exit
// status 0 when every event arrived and collectd exited with 0 (memcheck's
// --error-exitcode turns any error into another status).
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "collectd_harness.h"
#include "standin.h"
#include "testing.h"

namespace {

using namespace std::chrono_literals;

bool step(bool ok, const char* what, const xmtest::CollectdProcess& c) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) std::printf("--- collectd's log:\n%s---\n", c.log().c_str());
  return ok;
}

}  // namespace

int main() {
  xmtest::Standin xm;
  xmtest::CollectdProcess c(
      "LoadPlugin threshold\n<Plugin threshold>\n  <Plugin \"vg\">\n    <Type \"gauge\">\n"
      "      DataSource \"value\"\n      WarningMax 80\n      FailureMax 90\n    </Type>\n  </Plugin>\n</Plugin>\n"
      "LoadPlugin xmatters\n<Plugin xmatters>\n  <Integration \"ops\">\n    OutageURL \"" +
      xm.url("outage-fn") + "\"\n    ClearURL \"" + xm.url("clear-fn") +
      "\"\n    Timeout 20\n  </Integration>\n</Plugin>\n");
  const auto accepted = [&](std::size_t n) { return xm.wait_for_accepted(n, 120s); };
  bool ok = step(c.start(180s), "collectd started with the plugin", c);
  ok = ok && step(c.putval("vg-disk/gauge", 85) && accepted(1), "an outage paged", c);
  ok = ok && step(c.putval("vg-disk/gauge", 95) && accepted(2), "its escalation paged", c);
  ok = ok && step(c.putval("vg-disk/gauge", 40) && accepted(3), "its clear sent", c);
  if (ok) xm.stop();
  ok = ok && step(c.putval("vg-net/gauge", 95) && c.wait_for_log("apiKey=***", 120s),
                  "xMatters down: an outage's delivery failed", c);
  ok = ok && step(c.putval("vg-net/gauge", 40) && c.wait_for_log("Notification: severity = OKAY", 120s, 2),
                  "xMatters down: its clear queued", c);
  if (ok) xm.restart();
  ok = ok && step(accepted(5), "xMatters back: the outage and its clear delivered", c);
  const auto status = c.stop(180s);
  const bool clean_exit = status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
  ok = step(clean_exit, "collectd shut down with status 0 (memcheck found nothing)", c) && ok;
  return ok ? 0 : 1;
}
