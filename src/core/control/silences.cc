#include "control/silences.h"

#include <unistd.h>

#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

#include "control/views.h"
#include "util/json_writer.h"
#include "util/utf8.h"

namespace xmatters::control {

namespace {

std::string text_arg(const json_t* args, const char* name) {
  const char* s = json_string_value(json_object_get(args, name));
  return s != nullptr ? s : "";
}

// What the command sends, checked as the command checks it: the plugin's
// clock makes the start and the end of a --duration.
SilenceRequest request_of(const json_t* args) {
  SilenceRequest r;
  const json_t* matchers = json_object_get(args, "matchers");
  for (std::size_t i = 0; i < json_array_size(matchers); ++i) {
    const char* m = json_string_value(json_array_get(matchers, i));
    if (m == nullptr) throw std::invalid_argument("a matcher must be a string");
    r.matchers.emplace_back(m);
  }
  if (const std::string start = text_arg(args, "start"); !start.empty()) r.start = parse_rfc3339(start);
  if (const std::string end = text_arg(args, "end"); !end.empty()) r.end = parse_rfc3339(end);
  if (const std::string d = text_arg(args, "duration"); !d.empty()) r.duration = parse_duration(d);
  r.comment = text_arg(args, "comment");
  r.author = text_arg(args, "author");
  r.integration = text_arg(args, "integration");
  return r;
}

Answer add(const json_t* args, const Config& config, SilenceBook& book) {
  Silence s;
  try {
    s = make_silence(request_of(args), Clock::now());
  } catch (const std::invalid_argument& e) {
    return Answer::error(e.what());
  }
  if (!s.integration.empty()) {
    bool known = false;
    for (const auto& i : config.integrations) known = known || i.name == s.integration;
    if (!known) return Answer::error("no integration \"" + sanitize_utf8(s.integration) + "\" is configured");
  }
  try {
    book.add(s);
  } catch (const std::exception& e) {
    return Answer::error(std::string("the silence could not be kept in the spool: ") + e.what());
  }
  JsonWriter w;
  w.begin_object().plain_key("id").string(s.id);
  w.plain_key("start").string(format_utc_seconds(s.start)).plain_key("end").string(format_utc_seconds(s.end));
  w.end_object();
  return Answer::result(w.take());
}

Answer expire(const json_t* args, SilenceBook& book) {
  JsonWriter w;
  w.begin_object().plain_key("expired").begin_array();
  std::vector<std::string> unknown;
  const json_t* ids = json_object_get(args, "ids");
  try {
    for (std::size_t i = 0; i < json_array_size(ids); ++i) {
      const char* id = json_string_value(json_array_get(ids, i));
      if (id == nullptr) continue;
      if (book.expire(id, Clock::now()))
        w.string(sanitize_utf8(id));
      else
        unknown.emplace_back(id);
    }
  } catch (const std::exception& e) {
    return Answer::error(std::string("the silence could not be ended in the spool: ") + e.what());
  }
  w.end_array().plain_key("unknown").begin_array();
  for (const auto& id : unknown) w.string(sanitize_utf8(id));
  w.end_array().end_object();
  return Answer::result(w.take());
}

}  // namespace

void add_silence_verbs(Verbs& verbs, const Config& config, SilenceBook& book, const Coverage& coverage) {
  verbs.add("silence-add", [&config, &book](const json_t* args) { return add(args, config, book); });
  verbs.add("silence-expire", [&book](const json_t* args) { return expire(args, book); });
  const TimePoint started = Clock::now();
  const std::string spool_dir = config.spool_dir.value_or("");
  verbs.add("silences", [&coverage, started, spool_dir](const json_t* args) {
    try {
      const Filter filter = Filter::from_args(args);
      const TimePoint now = Clock::now();
      const Source source{true, started, static_cast<long>(::getpid()), spool_dir, now};
      return Answer::result(silences_document(source, coverage.silences(now, filter.expired), filter));
    } catch (const std::exception& e) {
      return Answer::error(e.what());
    }
  });
}

}  // namespace xmatters::control
