// Where the read-only verbs get their documents (collectd-xmatters(1),
// WHERE IT READS): the running plugin over the channel, or with collectd
// stopped SpoolDir itself, read-only, through the same views.
#include <strings.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <system_error>

#include "command/command.h"
#include "config/conf_file.h"
#include "control/channel.h"
#include "control/offline.h"

namespace xmatters::command {

namespace {

using namespace std::chrono_literals;

// The plugin answers from memory; reading a large dead-letter file takes
// longest.
constexpr auto kCallTimeout = 60s;

bool is(const ConfigNode& n, const char* key) {
  return ::strcasecmp(n.key.c_str(), key) == 0 && n.values.size() == 1 &&
         n.values[0].type == ConfigValue::Type::String;
}

// The document made from SpoolDir as it is; a SpoolDir that does not exist
// (the plugin never ran) holds nothing.
std::string offline_document(const Place& place, const std::string& verb, const control::Filter& filter,
                             bool exists) {
  control::Source source;
  source.spool_dir = place.spool_dir;
  source.now = Clock::now();
  const DeadLetters letters = exists ? control::read_spool_dead_letters(place.spool_dir) : DeadLetters{};
  if (verb == "dead-letters") return control::dead_letters_document(source, letters, filter);
  control::SpoolView view;
  if (exists)
    view = control::read_spool_view(place.spool_dir, place.integrations);
  else
    for (const auto& name : place.integrations) {
      view.integrations.emplace_back();
      view.integrations.back().name = name;
    }
  if (verb == "queue") return control::queue_document(source, view.queue, filter);
  if (verb == "silences") return control::silences_document(source, view.silences, filter);
  if (verb == "outages") return control::outages_document(source, view.outages, filter);
  std::map<std::string, control::Counts> counts;
  for (const auto& o : view.outages) counts[o.integration].add(o.outage);
  for (const auto& l : letters.letters) ++counts[l.event.integration].dead_letters;
  return control::status_document(source, view.integrations, counts, filter, view.silences);
}

}  // namespace

Place locate(const Options& options, int unreadable) {
  Place place;
  const CollectdConf conf = read_collectd_conf(options.config);
  if (!conf.failed()) place.loads_plugin = conf.loads_plugin;
  std::string base_dir = conf.base_dir, spool_dir;
  if (!conf.blocks.empty()) {
    // SpoolDir and the integrations' names only: the rest of the block
    // (files it names, SpoolDir's checks) is check's business.
    base_dir = conf.blocks.front().base_dir;
    for (const auto& n : conf.blocks.front().node.children) {
      if (is(n, "SpoolDir")) spool_dir = n.values[0].string;
      if (is(n, "Integration")) place.integrations.push_back(n.values[0].string);
    }
  }
  if (!options.spool_dir.empty()) {
    place.spool_dir = options.spool_dir;
  } else if (!spool_dir.empty()) {
    place.spool_dir = spool_dir;
  } else if (!conf.failed() || !conf.blocks.empty()) {
    place.spool_dir = base_dir + "/xmatters";
  } else {
    std::string why;
    for (const auto& m : conf.messages)
      if (m.error && why.empty()) why = m.text;
    throw Failure(unreadable, "cannot read " + options.config + " (" + why +
                                  "): run this as root or as collectd's user, or give --spool-dir");
  }
  return place;
}

Json fetch(const Place& place, const std::string& verb, const control::Filter& filter,
           int unreadable) {
  const Json args = filter.to_args();
  control::CallResult r = control::call(place.spool_dir, verb, args.get(), kCallTimeout);
  using Status = control::CallResult::Status;
  if (r.status == Status::Ok) return std::move(r.result);
  if (r.status != Status::NotRunning) throw Failure(unreadable, r.message);

  struct stat st {};
  const bool exists = ::stat(place.spool_dir.c_str(), &st) == 0;
  if (!exists && errno == EACCES) throw Failure(unreadable, control::denied_message(place.spool_dir));
  std::string text;
  try {
    text = offline_document(place, verb, filter, exists);
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::permission_denied) throw Failure(unreadable, control::denied_message(place.spool_dir));
    throw Failure(unreadable, e.what());
  } catch (const std::exception& e) {
    throw Failure(unreadable, e.what());
  }
  if (exists)
    std::fprintf(stderr, "collectd-xmatters: the plugin is not running: read from SpoolDir %s (read-only)\n",
                 place.spool_dir.c_str());
  else
    std::fprintf(stderr, "collectd-xmatters: the plugin is not running, and there is no SpoolDir %s yet\n",
                 place.spool_dir.c_str());
  json_error_t error;
  Json doc(json_loads(text.c_str(), 0, &error));
  if (!doc) throw Failure(unreadable, std::string("internal error: ") + error.text);
  return doc;
}

}  // namespace xmatters::command
