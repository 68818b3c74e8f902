#include "control/actions.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "delivery/dead_letter.h"
#include "util/json_writer.h"
#include "outage/outage.h"
#include "payload/payload.h"
#include "util/utf8.h"
#include "util/uuid.h"

namespace xmatters::control {

namespace {

bool flag(const json_t* args, const char* name, bool absent) {
  const json_t* v = json_object_get(args, name);
  return v == nullptr ? absent : json_is_true(v);
}

std::string text_arg(const json_t* args, const char* name) {
  const char* s = json_string_value(json_object_get(args, name));
  return s != nullptr ? s : "";
}

bool configured(const Config& config, const std::string& name) {
  for (const auto& i : config.integrations)
    if (i.name == name) return true;
  return false;
}

// An integration the request names must be configured; "" names none.
std::string unknown_integration(const Config& config, const std::string& name) {
  if (name.empty() || configured(config, name)) return "";
  return "no integration \"" + sanitize_utf8(name) + "\" is configured";
}

void write_event(JsonWriter& w, const Event& e) {
  w.plain_key("event_id").string(sanitize_utf8(e.event_id));
  w.plain_key("outage_id").string(sanitize_utf8(e.outage_id));
  w.plain_key("integration").string(sanitize_utf8(e.integration));
  w.plain_key("event_type").string(event_type_name(e.type));
}

// collectd-xmatters(1) RESEND: the letters chosen, in the file's order
// (each outage's in order), handed to the delivery by plan_resend.
Answer resend(const json_t* args, const Config& config, Delivery& delivery, const std::string& path) {
  const std::string integration = text_arg(args, "integration");
  if (const std::string bad = unknown_integration(config, integration); !bad.empty()) return Answer::error(bad);
  const bool all = flag(args, "all", false);
  std::set<std::string> wanted;
  const json_t* ids = json_object_get(args, "event_ids");
  std::size_t i;
  const json_t* id;
  json_array_foreach(ids, i, id) {
    if (json_is_string(id)) wanted.insert(json_string_value(id));
  }
  if (all == !wanted.empty()) return Answer::error("resend needs event_ids or all, not both");

  DeadLetters read;
  try {
    read = read_dead_letters(path);
  } catch (const std::system_error& e) {
    return Answer::error(std::string("cannot read the dead letters: ") + e.what());
  }
  std::vector<DeadLetter> chosen;
  std::vector<DeadLetter> unconfigured;  // no URL to send them to
  std::set<std::string> found;
  for (DeadLetter& d : read.letters) {
    if (!integration.empty() && d.event.integration != integration) continue;
    if (!all && wanted.count(d.event.event_id) == 0) continue;
    found.insert(d.event.event_id);
    if (configured(config, d.event.integration))
      chosen.push_back(std::move(d));
    else
      unconfigured.push_back(std::move(d));
  }
  for (const std::string& want : wanted)
    if (found.count(want) == 0)
      return Answer::error("no dead letter has the event_id \"" + sanitize_utf8(want) + "\"" +
                           (integration.empty() ? "" : " in integration \"" + sanitize_utf8(integration) + "\"") +
                           "; nothing was resent");

  ResendPlan plan = plan_resend(chosen, flag(args, "include_cleared", false));
  Delivery::Resent resent;
  if (!plan.events.empty()) {
    try {
      resent = delivery.resend(plan.events, plan.letters);
    } catch (const std::exception& e) {
      return Answer::error(std::string("nothing was resent: ") + e.what());
    }
  }
  // Those whose outage cleared between the read and the queueing.
  std::set<std::string> cleared_meanwhile;
  for (const Event& e : resent.skipped) cleared_meanwhile.insert(e.event_id);

  JsonWriter w;
  w.begin_object().plain_key("resent").begin_array();
  for (const Event& e : plan.events) {
    if (cleared_meanwhile.count(e.event_id) > 0) continue;
    w.begin_object();
    write_event(w, e);
    w.end_object();
  }
  w.end_array().plain_key("skipped").begin_array();
  const auto skipped = [&w](const DeadLetter& d, const char* reason) {
    w.begin_object();
    write_event(w, d.event);
    w.plain_key("reason").string(reason);
    w.end_object();
  };
  for (const DeadLetter& d : plan.skipped) skipped(d, "its outage has cleared since (--include-cleared sends it and its clear)");
  for (const DeadLetter& d : chosen)
    if (cleared_meanwhile.erase(d.event.event_id) > 0)
      skipped(d, "its outage has cleared since (--include-cleared sends it and its clear)");
  for (const DeadLetter& d : unconfigured) skipped(d, "its integration is no longer configured");
  w.end_array().plain_key("dead_letter_file_rewritten").boolean(resent.rewritten).end_object();
  return Answer::result(w.take());
}


// --- test ---------------------------------------------------------------------

// How long past an integration's Timeout a test waits for the first answer
// of each event (collectd-xmatters(1), TEST): its lane may be busy with the
// request before it.
constexpr std::chrono::seconds kAnswerSlack{5};
// How often a test waiting for xMatters looks whether the plugin is stopping.
constexpr std::chrono::milliseconds kStopCheck{50};
// The reason of an answer not waited for (collectd-xmatters(1), TEST).
constexpr const char* kStopping =
    "the plugin is stopping (collectd is shutting down): no answer was waited for, and a test is never sent again";

// A test event of integration, built as the tracker's are (Target,
// Template, DetailsURL), for an outage no tracker knows: `services` is
// xmatters/test and the description names who sent it.
Event test_event(const IntegrationConfig& integration, EventType type, const Outage& outage, const std::string& user) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  Notification n;
  n.severity = type == EventType::Outage ? Severity::Failure : Severity::Okay;
  n.time = Clock::now();
  n.host = host;
  n.plugin = "xmatters";
  n.type = "test";
  n.message = type == EventType::Outage
                  ? "Test page sent by " + user + " with collectd-xmatters test: nothing is wrong"
                  : "Test page sent by " + user + " with collectd-xmatters test: cleared";
  const std::uint32_t sequence = type == EventType::Outage ? 1 : 2;
  Transition t{type, n, outage, sequence};
  Event e;
  e.event_id = event_id_of(outage.id, sequence);
  e.integration = integration.name;
  e.outage_id = outage.id;
  e.type = type;
  e.created = Clock::now();
  e.body = PayloadBuilder(integration).build(t, e.event_id);
  return e;
}

// One test event of one integration, sent, then its first answer.
struct Probe {
  std::string event_id;
  std::future<FirstAnswer> future;
  std::optional<FirstAnswer> answer;  // once had, or failed to send

  void send(Delivery& delivery, Event event) {
    event_id = event.event_id;
    try {
      future = delivery.test(std::move(event));
    } catch (const std::exception& e) {
      answer = FirstAnswer{false, 0, "", std::string("not sent: ") + e.what()};
    }
  }
  // Waits until deadline for the answer, or until the plugin begins to
  // stop: collectd's shutdown waits for this request (Pipeline::stop), so
  // the wait goes in short slices, and only while a test runs.
  void wait(std::chrono::steady_clock::time_point deadline, std::chrono::seconds waited,
            const std::atomic<bool>& stopping) {
    if (answer) return;
    for (;;) {
      const bool stop = stopping.load();
      const auto until = stop ? std::chrono::steady_clock::now()
                              : std::min(deadline, std::chrono::steady_clock::now() + kStopCheck);
      if (future.wait_until(until) == std::future_status::ready) {
        answer = future.get();
        return;
      }
      if (stop) {
        answer = FirstAnswer{false, 0, "", kStopping};
        return;
      }
      if (until >= deadline) {
        answer = FirstAnswer{false, 0, "", "no answer within " + std::to_string(waited.count()) +
                                               " s (it is still queued; a test is never retried)"};
        return;
      }
    }
  }
};

void write_answer(JsonWriter& w, const Probe& p) {
  const FirstAnswer& a = *p.answer;
  w.begin_object()
      .plain_key("event_id")
      .string(p.event_id)
      .plain_key("delivered")
      .boolean(a.delivered)
      .plain_key("status")
      .number(static_cast<std::int64_t>(a.status))
      .plain_key("request_id")
      .string(sanitize_utf8(a.request_id))
      .plain_key("reason")
      .string(sanitize_utf8(a.reason))
      .end_object();
}

// collectd-xmatters(1) TEST: each integration's test outage, then (unless
// "clear" is false) its clear, the integrations side by side.
Answer test(const json_t* args, const Config& config, Delivery& delivery, const std::atomic<bool>& stopping) {
  const std::string only = text_arg(args, "integration");
  if (const std::string bad = unknown_integration(config, only); !bad.empty()) return Answer::error(bad);
  const bool clear = flag(args, "clear", true);
  std::string user = sanitize_utf8(text_arg(args, "user").substr(0, 64));
  if (user.empty()) user = "an unnamed user";

  struct Run {
    const IntegrationConfig& integration;
    Outage outage;
    Probe page, clear;
    std::chrono::seconds waited;
  };
  std::vector<Run> runs;
  for (const auto& integration : config.integrations) {
    if (!only.empty() && integration.name != only) continue;
    Outage o;
    o.id = random_uuid();  // of no key: no tracker has or ever will have it
    o.severity = Severity::Failure;
    o.start = o.last_page = Clock::now();
    o.sequence = 1;
    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(integration.timeout) + kAnswerSlack;
    runs.push_back({integration, std::move(o), {}, {}, waited});
  }
  for (Run& r : runs) r.page.send(delivery, test_event(r.integration, EventType::Outage, r.outage, user));
  auto start = std::chrono::steady_clock::now();
  for (Run& r : runs) r.page.wait(start + r.waited, r.waited, stopping);
  if (clear && !stopping) {
    // Not after an outage event refused: there is nothing to clear. After
    // one not answered yet, it still follows it in its outage's order.
    for (Run& r : runs) {
      const FirstAnswer& a = *r.page.answer;
      if (a.delivered || a.status == 0) {
        r.outage.sequence = 2;
        r.clear.send(delivery, test_event(r.integration, EventType::Clear, r.outage, user));
      }
    }
    start = std::chrono::steady_clock::now();
    for (Run& r : runs) {
      if (r.clear.event_id.empty()) continue;
      if (!r.page.answer->delivered && !r.clear.answer)
        r.clear.answer = FirstAnswer{false, 0, "", "not waited for: queued behind the test outage event"};
      r.clear.wait(start + r.waited, r.waited, stopping);
    }
  }

  JsonWriter w;
  w.begin_object().plain_key("integrations").begin_array();
  for (const Run& r : runs) {
    w.begin_object().plain_key("name").string(sanitize_utf8(r.integration.name));
    w.plain_key("outage_id").string(r.outage.id).plain_key("outage");
    write_answer(w, r.page);
    w.plain_key("clear");
    if (r.clear.answer)
      write_answer(w, r.clear);
    else
      w.null();
    w.end_object();
  }
  w.end_array().plain_key("stopping").boolean(stopping).end_object();
  return Answer::result(w.take());
}

}  // namespace

void add_action_verbs(Verbs& verbs, const Config& config, Delivery& delivery, const std::atomic<bool>& stopping) {
  const std::string dead_letter_path = config.spool_dir.value_or(".") + "/dead-letter.jsonl";
  verbs.add("resend", [&config, &delivery, dead_letter_path](const json_t* args) {
    return resend(args, config, delivery, dead_letter_path);
  });
  verbs.add("test", [&config, &delivery, &stopping](const json_t* args) {
    return test(args, config, delivery, stopping);
  });
}

}  // namespace xmatters::control
