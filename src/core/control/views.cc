#include "control/views.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <system_error>

#include "util/json_writer.h"
#include "util/utf8.h"

namespace xmatters::control {

namespace {

// Whole seconds from t to now, never negative (a clock stepped back).
std::int64_t age(TimePoint t, TimePoint now) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(now - t).count());
}

// Texts that come from outside (keys, reasons) may hold bytes that are not
// UTF-8; the writer wants UTF-8.
JsonWriter& text(JsonWriter& w, const std::string& s) { return w.string(sanitize_utf8(s)); }

JsonWriter& time_or_null(JsonWriter& w, const std::optional<TimePoint>& t) {
  return t ? w.string(format_utc_seconds(*t)) : w.null();
}

void begin(JsonWriter& w, const Source& s) {
  w.begin_object().plain_key("running").boolean(s.running).plain_key("since");
  time_or_null(w, s.since).plain_key("pid");
  if (s.pid)
    w.number(static_cast<std::int64_t>(*s.pid));
  else
    w.null();
  w.plain_key("spool_dir").string(sanitize_utf8(s.spool_dir)).plain_key("time").string(format_utc_seconds(s.now));
}

const char* kind_name(OutageKind k) {
  switch (k) {
    case OutageKind::Host: return "host";
    case OutageKind::Flood: return "flood";
    case OutageKind::ValueList: break;
  }
  return "value_list";
}

const char* state_name(const Outage& o, bool paced) {
  if (o.folded) return "folded";
  if (o.held) return "silenced";
  if (paced) return "waiting_for_flood_limit";
  return o.paged ? "paged" : "not_paged";
}

}  // namespace

bool Filter::wants(const std::string& name, const OutageKey& key, const Outage& outage) const {
  if (!wants(name)) return false;
  const auto all = [&](const OutageKey& k) {
    return std::all_of(matchers.begin(), matchers.end(), [&](const Matcher& m) { return m.matches(k); });
  };
  if (all(key)) return true;
  return std::any_of(outage.members.begin(), outage.members.end(), [&](const Member& m) { return all(m.key); });
}

Json Filter::to_args() const {
  Json args(json_object());
  if (expired) json_object_set_new(args.get(), "expired", json_true());
  if (!integration.empty()) json_object_set_new(args.get(), "integration", json_string(integration.c_str()));
  if (!matchers.empty()) {
    json_t* list = json_array();
    for (const auto& m : matchers) json_array_append_new(list, json_string(m.text().c_str()));
    json_object_set_new(args.get(), "matchers", list);
  }
  return args;
}

Filter Filter::from_args(const json_t* args) {
  Filter f;
  const json_t* integration = json_object_get(args, "integration");
  if (integration != nullptr) {
    if (!json_is_string(integration)) throw std::invalid_argument("\"integration\" must be a string");
    f.integration = json_string_value(integration);
  }
  f.expired = json_is_true(json_object_get(args, "expired"));
  const json_t* matchers = json_object_get(args, "matchers");
  if (matchers != nullptr && !json_is_array(matchers)) throw std::invalid_argument("\"matchers\" must be an array");
  for (std::size_t i = 0; i < json_array_size(matchers); ++i) {
    const json_t* m = json_array_get(matchers, i);
    if (!json_is_string(m)) throw std::invalid_argument("a matcher must be a string");
    f.matchers.push_back(Matcher::parse(json_string_value(m)));
  }
  return f;
}

static void write_silence(JsonWriter& w, const Silence& s, TimePoint now) {
  w.begin_object().plain_key("id");
  text(w, s.id).plain_key("state").string(silence_state_name(s.state(now))).plain_key("matchers").begin_array();
  for (const Matcher& m : s.matchers) text(w, m.text());
  w.end_array().plain_key("integration");
  if (s.integration.empty())
    w.null();
  else
    text(w, s.integration);
  w.plain_key("start").string(format_utc_seconds(s.start)).plain_key("end").string(format_utc_seconds(s.end));
  w.plain_key("author");
  text(w, s.author).plain_key("comment");
  text(w, s.comment).end_object();
}

std::string silences_document(const Source& source, const std::vector<Silence>& silences, const Filter& filter) {
  JsonWriter w;
  begin(w, source);
  w.plain_key("silences").begin_array();
  for (const Silence& s : silences)
    if (filter.expired || s.state(source.now) != Silence::State::Expired) write_silence(w, s, source.now);
  w.end_array().end_object();
  return w.take();
}

std::string status_document(const Source& source, const std::vector<IntegrationStatus>& integrations,
                            const std::map<std::string, Counts>& counts, const Filter& filter,
                            const std::vector<Silence>& active_silences) {
  JsonWriter w;
  begin(w, source);
  w.plain_key("active_silences").begin_array();
  for (const Silence& s : active_silences)
    if (s.active(source.now)) write_silence(w, s, source.now);
  w.end_array();
  w.plain_key("integrations").begin_array();
  for (const auto& st : integrations) {
    if (!filter.wants(st.name)) continue;
    const auto found = counts.find(st.name);
    const Counts c = found == counts.end() ? Counts{} : found->second;
    w.begin_object().plain_key("name");
    text(w, st.name).plain_key("running").boolean(source.running);
    w.plain_key("queued").number(static_cast<std::uint64_t>(st.queued)).plain_key("oldest_queued_age");
    if (st.oldest_queued)
      w.number(age(*st.oldest_queued, source.now));
    else
      w.null();
    w.plain_key("open_outages").number(static_cast<std::uint64_t>(c.open_outages));
    w.plain_key("silenced").number(static_cast<std::uint64_t>(c.held));
    w.plain_key("folded").number(static_cast<std::uint64_t>(c.folded));
    w.plain_key("dead_letters").number(static_cast<std::uint64_t>(c.dead_letters));
    w.plain_key("last_delivery");
    if (const auto& d = st.last_delivery) {
      w.begin_object().plain_key("time").string(format_utc_seconds(d->time));
      w.plain_key("status").number(static_cast<std::int64_t>(d->status)).plain_key("request_id");
      text(w, d->request_id).plain_key("event_type").string(event_type_name(d->type)).plain_key("outage_id");
      text(w, d->outage_id).end_object();
    } else {
      w.null();
    }
    w.plain_key("last_failure");
    if (const auto& f = st.last_failure) {
      w.begin_object().plain_key("time").string(format_utc_seconds(f->time)).plain_key("reason");
      text(w, f->reason).end_object();
    } else {
      w.null();
    }
    // Deliveries failing: only while something waits to be delivered.
    const auto failing = st.queued > 0 ? st.failing_since : std::nullopt;
    w.plain_key("failing_since");
    time_or_null(w, failing).plain_key("failing_for");
    if (failing)
      w.number(age(*failing, source.now));
    else
      w.null();
    w.plain_key("paused");
    if (st.paused)
      w.number(static_cast<std::int64_t>(*st.paused));
    else
      w.null();
    w.plain_key("flood_limit").number(static_cast<std::uint64_t>(st.flood_limit));
    w.plain_key("flood_used").begin_object();
    w.plain_key("outage").number(static_cast<std::uint64_t>(st.flood_used_outage));
    w.plain_key("clear").number(static_cast<std::uint64_t>(st.flood_used_clear)).end_object();
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

std::string outages_document(const Source& source, const std::vector<OpenOutage>& outages, const Filter& filter) {
  // A folded outage names the flood outage that holds it: its integration's.
  std::map<std::string, std::string> flood_of;
  for (const auto& o : outages)
    if (o.outage.kind == OutageKind::Flood) flood_of[o.integration] = o.outage.id;
  // Oldest first; the tracker's table has no order.
  std::vector<const OpenOutage*> sorted;
  for (const auto& o : outages) sorted.push_back(&o);
  std::sort(sorted.begin(), sorted.end(), [](const OpenOutage* a, const OpenOutage* b) {
    return a->outage.start != b->outage.start ? a->outage.start < b->outage.start : a->outage.id < b->outage.id;
  });
  JsonWriter w;
  begin(w, source);
  w.plain_key("outages").begin_array();
  for (const OpenOutage* each : sorted) {
    const auto& [integration, key, o, covered, paced] = *each;
    if (!filter.wants(integration, key, o)) continue;
    w.begin_object().plain_key("outage_id").string(o.id).plain_key("integration");
    text(w, integration).plain_key("kind").string(kind_name(o.kind)).plain_key("host");
    text(w, key.host).plain_key("key");
    text(w, o.kind == OutageKind::ValueList ? key.identifier() : "").plain_key("members").begin_array();
    for (const auto& m : o.members) {
      w.begin_object().plain_key("key");
      text(w, m.key.identifier()).plain_key("failing").boolean(m.failing).end_object();
    }
    w.end_array();
    w.plain_key("severity").string(severity_name(o.severity));
    w.plain_key("start").string(format_utc_seconds(o.start)).plain_key("age").number(age(o.start, source.now));
    // Never paged (held back by a silence or window since it opened):
    // nothing to show (the tracker's last_page is then its start).
    w.plain_key("last_page");
    if (o.paged)
      w.string(format_utc_seconds(o.last_page));
    else
      w.null();
    w.plain_key("sequence").number(static_cast<std::uint64_t>(o.sequence));
    w.plain_key("state").string(state_name(o, paced)).plain_key("covered_by");
    if (covered.empty())
      w.null();
    else
      text(w, covered);
    w.plain_key("folded_into");
    const auto flood = flood_of.find(integration);
    if (o.folded && flood != flood_of.end())
      w.string(flood->second);
    else
      w.null();
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

std::string queue_document(const Source& source, const std::vector<QueuedEvent>& queue, const Filter& filter) {
  JsonWriter w;
  begin(w, source);
  w.plain_key("events").begin_array();
  for (const auto& q : queue) {
    if (!filter.wants(q.integration)) continue;
    w.begin_object().plain_key("event_id");
    text(w, q.event_id).plain_key("outage_id");
    text(w, q.outage_id).plain_key("integration");
    text(w, q.integration).plain_key("type").string(event_type_name(q.type));
    w.plain_key("created").string(format_utc_seconds(q.created)).plain_key("age").number(age(q.created, source.now));
    // Attempts and errors live in the running plugin's memory only.
    if (source.running) {
      w.plain_key("attempts").number(static_cast<std::int64_t>(q.attempts));
      w.plain_key("in_flight").boolean(q.in_flight).plain_key("next_attempt");
      time_or_null(w, q.next_attempt).plain_key("last_error");
      text(w, q.last_error);
    } else {
      w.plain_key("attempts").null().plain_key("in_flight").null().plain_key("next_attempt").null();
      w.plain_key("last_error").null();
    }
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

std::string dead_letters_document(const Source& source, const DeadLetters& letters, const Filter& filter) {
  JsonWriter w;
  begin(w, source);
  w.plain_key("damaged_lines").number(static_cast<std::uint64_t>(letters.damaged));
  w.plain_key("dead_letters").begin_array();
  for (const auto& l : letters.letters) {
    if (!filter.wants(l.event.integration)) continue;
    w.begin_object().plain_key("event_id");
    text(w, l.event.event_id).plain_key("outage_id");
    text(w, l.event.outage_id).plain_key("integration");
    text(w, l.event.integration).plain_key("type").string(event_type_name(l.event.type));
    w.plain_key("created").string(format_utc_seconds(l.event.created));
    w.plain_key("time").string(format_utc_seconds(l.time)).plain_key("status");
    if (l.status != 0)
      w.number(static_cast<std::int64_t>(l.status));
    else
      w.null();
    w.plain_key("attempts").number(static_cast<std::int64_t>(l.attempts)).plain_key("reason");
    text(w, l.reason).plain_key("cleared_by");
    if (l.cleared_by)
      text(w, l.cleared_by->event_id);
    else
      w.null();
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

DeadLetters read_spool_dead_letters(const std::string& spool_dir) {
  return read_dead_letters(spool_dir + "/" + kDeadLetterFile);
}

}  // namespace xmatters::control
