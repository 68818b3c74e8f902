#include "control/live.h"

#include <unistd.h>

#include <exception>
#include <map>

#include "control/actions.h"
#include "control/views.h"
#include "util/json_writer.h"
#include "util/time_format.h"

namespace xmatters::control {

namespace {

// A read-only verb: its filter from the request, its document from make,
// any failure (a bad matcher, a dead-letter file that cannot be read) as
// the error answer.
template <typename Make>
Verbs::Handler view(Make make) {
  return [make](const json_t* args) {
    try {
      return Answer::result(make(Filter::from_args(args)));
    } catch (const std::exception& e) {
      return Answer::error(e.what());
    }
  };
}

// What holds an outage's page back: for a host outage, what covers its
// first failing member (each is covered while it is held).
std::string covered_by(const Coverage& coverage, const std::string& integration, const OutageKey& key,
                       const Outage& o, TimePoint now) {
  if (o.kind == OutageKind::ValueList) return coverage.covering(integration, key, now).value_or("");
  for (const Member& m : o.members)
    if (m.failing) return coverage.covering(integration, m.key, now).value_or("");
  return "";
}

}  // namespace

Verbs live_verbs(const Config& config, Delivery& delivery, Router& router, const std::atomic<bool>& stopping,
                 const Coverage* coverage) {
  Verbs verbs;
  const TimePoint started = Clock::now();
  const std::string spool_dir = config.spool_dir.value_or("");
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
  add_action_verbs(verbs, config, delivery, stopping);
  const auto source = [started, spool_dir] {
    return Source{true, started, static_cast<long>(::getpid()), spool_dir, Clock::now()};
  };
  verbs.add("status", view([source, spool_dir, coverage, &delivery, &router](const Filter& filter) {
              std::map<std::string, Counts> counts;
              router.for_each_open([&](const std::string& name, const OutageKey&, const Outage& o) { counts[name].add(o); });
              for (const auto& l : read_spool_dead_letters(spool_dir).letters) ++counts[l.event.integration].dead_letters;
              const Source now = source();
              std::vector<Silence> silences;
              if (coverage != nullptr) silences = coverage->silences(now.now, false);
              return status_document(now, delivery.status(), counts, filter, silences);
            }));
  verbs.add("outages", view([source, coverage, &delivery, &router](const Filter& filter) {
              const Source now = source();
              const auto paced = delivery.paced_outages();
              std::vector<OpenOutage> outages;
              router.for_each_open([&](const std::string& name, const OutageKey& key, const Outage& o) {
                outages.push_back({name, key, o, o.held && coverage ? covered_by(*coverage, name, key, o, now.now) : "",
                                   paced.count({name, o.id}) > 0});
              });
              return outages_document(now, outages, filter);
            }));
  verbs.add("queue", view([source, &delivery](const Filter& filter) {
              return queue_document(source(), delivery.queue(), filter);
            }));
  verbs.add("dead-letters", view([source, spool_dir](const Filter& filter) {
              return dead_letters_document(source(), read_spool_dead_letters(spool_dir), filter);
            }));
  return verbs;
}

}  // namespace xmatters::control
