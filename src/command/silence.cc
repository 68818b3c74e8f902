// collectd-xmatters silence add|list|expire (collectd-xmatters(1) SILENCES):
// add and expire through the running plugin, which answers once the change
// is durable; list from it, or with collectd stopped from SpoolDir,
// read-only.
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "command/command.h"
#include "command/plugin_call.h"
#include "silence/silence.h"

namespace xmatters::command {

namespace {

using namespace std::chrono_literals;

// The plugin answers add and expire after one fdatasync.
constexpr auto kCallTimeout = 60s;

// amtool's default author: the user behind sudo, else the one running it.
std::string invoking_user() {
  for (const char* name : {"SUDO_USER", "USER"})
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return v;
  if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr) return pw->pw_name;
  return "uid " + std::to_string(::getuid());
}

// Takes "--name VALUE" or "--name=VALUE" out of args (once at most).
std::optional<std::string> take_option(Args& args, const std::string& name) {
  std::optional<std::string> value;
  for (std::size_t i = 0; i < args.size();) {
    std::string v;
    if (args[i] == name) {
      if (i + 1 >= args.size()) throw UsageError(name + " needs a value");
      v = args[i + 1];
      args.erase(args.begin() + i, args.begin() + i + 2);
    } else if (args[i].rfind(name + "=", 0) == 0) {
      v = args[i].substr(name.size() + 1);
      args.erase(args.begin() + i);
    } else {
      ++i;
      continue;
    }
    if (value) throw UsageError(name + " is given more than once");
    value = v;
  }
  return value;
}

int add(const Options& options, Args args) {
  SilenceRequest r;
  Json request(json_object());
  r.integration = take_integration(args);
  const auto start = take_option(args, "--start"), end = take_option(args, "--end");
  const auto duration = take_option(args, "--duration");
  const auto comment = take_option(args, "--comment"), author = take_option(args, "--author");
  for (const auto& a : args) {
    if (a.size() > 1 && a[0] == '-') throw UsageError("silence add: unknown option '" + a + "'");
    r.matchers.push_back(a);
  }
  r.comment = comment.value_or("");
  r.author = author && !author->empty() ? *author : invoking_user();
  // Checked here as the plugin checks it: a mistake is a usage error.
  try {
    if (start) r.start = parse_rfc3339(*start);
    if (end) r.end = parse_rfc3339(*end);
    if (duration) r.duration = parse_duration(*duration);
    make_silence(r, Clock::now());
  } catch (const std::invalid_argument& e) {
    throw UsageError("silence add: " + std::string(e.what()));
  }
  json_t* matchers = json_array();
  for (const auto& m : r.matchers) json_array_append_new(matchers, json_string(m.c_str()));
  json_object_set_new(request.get(), "matchers", matchers);
  // Times as given: the plugin's clock makes the defaults.
  if (start) json_object_set_new(request.get(), "start", json_string(start->c_str()));
  if (end) json_object_set_new(request.get(), "end", json_string(end->c_str()));
  if (duration) json_object_set_new(request.get(), "duration", json_string(duration->c_str()));
  json_object_set_new(request.get(), "comment", json_string(r.comment.c_str()));
  json_object_set_new(request.get(), "author", json_string(r.author.c_str()));
  if (!r.integration.empty()) json_object_set_new(request.get(), "integration", json_string(r.integration.c_str()));

  const PluginPlace place = locate_plugin(options);
  if (!r.integration.empty() && place.config) {
    bool known = false;
    for (const auto& i : place.config->integrations) known = known || i.name == r.integration;
    if (!known) throw UsageError("silence add: no integration \"" + r.integration + "\" is configured");
  }
  const Json answer = call_plugin(place, "silence-add", request.get(), kCallTimeout);
  if (options.json)
    print_json(answer.get());
  else
    std::printf("%s\n", member(answer.get(), "id").c_str());  // alone, as amtool prints it
  return 0;
}

int expire(const Options& options, const Args& args) {
  if (args.empty()) throw UsageError("silence expire: give the id of each silence to end");
  Json request(json_object());
  json_t* ids = json_array();
  for (const auto& a : args) {
    if (a.size() > 1 && a[0] == '-') throw UsageError("silence expire: unknown option '" + a + "'");
    json_array_append_new(ids, json_string(a.c_str()));
  }
  json_object_set_new(request.get(), "ids", ids);
  const Json answer = call_plugin(locate_plugin(options), "silence-expire", request.get(), kCallTimeout);
  const json_t* unknown = json_object_get(answer.get(), "unknown");
  if (options.json) {
    print_json(answer.get());
  } else {
    const json_t* expired = json_object_get(answer.get(), "expired");
    for (std::size_t i = 0; i < json_array_size(expired); ++i)
      std::printf("expired %s\n", json_string_value(json_array_get(expired, i)));
    for (std::size_t i = 0; i < json_array_size(unknown); ++i)
      std::fprintf(stderr, "collectd-xmatters: no active or pending silence %s\n",
                   json_string_value(json_array_get(unknown, i)));
  }
  return json_array_size(unknown) == 0 ? 0 : 1;
}

int list(const Options& options, Args args) {
  control::Filter filter;
  for (auto it = args.begin(); it != args.end();)
    if (*it == "--expired") {
      filter.expired = true;
      it = args.erase(it);
    } else {
      ++it;
    }
  no_more_args(args);
  constexpr int kFailed = 1;
  const Json doc = fetch(locate(options, kFailed), "silences", filter, kFailed);
  if (options.json) {
    print_json(doc.get());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "STATE", "START", "END", "MATCHERS", "INTEGRATION", "AUTHOR", "COMMENT"}};
  const json_t* silences = json_object_get(doc.get(), "silences");
  for (std::size_t i = 0; i < json_array_size(silences); ++i) {
    const json_t* s = json_array_get(silences, i);
    std::string matchers;
    const json_t* list = json_object_get(s, "matchers");
    for (std::size_t m = 0; m < json_array_size(list); ++m)
      matchers += (m ? " " : "") + std::string(json_string_value(json_array_get(list, m)));
    const std::string integration = cell(s, "integration");
    rows.push_back({cell(s, "id"), cell(s, "state"), cell(s, "start"), cell(s, "end"), matchers,
                    integration == "-" ? "all" : integration, cell(s, "author"), cell(s, "comment")});
  }
  print_table(rows);
  return 0;
}

}  // namespace

int silence(const Options& options, const Args& given) {
  if (given.empty()) throw UsageError("silence: give add, list or expire");
  const std::string sub = given.front();
  const Args args(given.begin() + 1, given.end());
  if (sub == "add") return add(options, args);
  if (sub == "list") return list(options, args);
  if (sub == "expire") return expire(options, args);
  throw UsageError("silence: unknown subcommand '" + sub + "' (add, list or expire)");
}

}  // namespace xmatters::command
