// The collectd glue: converts collectd's types to the plugin's own and back,
// and is the only place that talks to collectd. No exception crosses into
// collectd: every callback catches everything and logs it.

extern "C" {
#include "collectd.h"
#include "plugin.h"
}

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "config/config.h"
#include "config/configure.h"
#include "control/channel.h"
#include "control/live.h"
#include "control/silences.h"
#include "silence/cover_watch.h"
#include "silence/coverage.h"
#include "delivery/delivery.h"
#include "util/log.h"
#include "util/mutex.h"
#include "outage/notification.h"
#include "outage/router.h"
#include "silence/silence_book.h"
#include "store/spool_dir.h"
#include "store/store.h"

namespace {

using namespace xmatters;

constexpr const char* kName = "xmatters";

class CollectdLogger final : public Logger {
 public:
  void log(LogLevel level, const std::string& message) override {
    plugin_log(priority(level), "xmatters plugin: %s", message.c_str());
  }

 private:
  static int priority(LogLevel level) {
    switch (level) {
      case LogLevel::Error: return LOG_ERR;
      case LogLevel::Warning: return LOG_WARNING;
      case LogLevel::Notice: return LOG_NOTICE;
      case LogLevel::Info: return LOG_INFO;
      case LogLevel::Debug: break;
    }
    return LOG_DEBUG;
  }
};

ConfigNode to_node(const oconfig_item_t& ci) {
  ConfigNode node;
  node.key = ci.key != nullptr ? ci.key : "";
  for (int i = 0; i < ci.values_num; ++i) {
    const oconfig_value_t& v = ci.values[i];
    switch (v.type) {
      case OCONFIG_TYPE_NUMBER: node.values.push_back(ConfigValue::of(v.value.number)); break;
      case OCONFIG_TYPE_BOOLEAN: node.values.push_back(ConfigValue::of(v.value.boolean != 0)); break;
      default: node.values.push_back(ConfigValue::of(v.value.string != nullptr ? v.value.string : "")); break;
    }
  }
  for (int i = 0; i < ci.children_num; ++i) node.children.push_back(to_node(ci.children[i]));
  return node;
}

Severity to_severity(int s) {
  switch (s) {
    case NOTIF_FAILURE: return Severity::Failure;
    case NOTIF_WARNING: return Severity::Warning;
    default: return Severity::Okay;
  }
}

// collectd's fixed-size fields are NUL-terminated when collectd fills them,
// but a plugin's notification is not obliged to be: never read past the array.
template <std::size_t N>
std::string field(const char (&a)[N]) {
  return std::string(a, strnlen(a, N));
}

// A plugin may leave the time unset (0); collectd's own are always stamped.
// cdtime_t is unsigned: a time before 1970 wraps to a huge one. Times past
// what a TimePoint holds (2262-04-11) would overflow into the 17th century,
// so a time of 0, before 1970 or after that is the time the plugin received
// the notification (collectd-xmatters(5) PAYLOAD).
TimePoint notification_time(cdtime_t t) {
  constexpr std::uint64_t kLastSecond = std::numeric_limits<std::int64_t>::max() / 1000000000 - 1;
  if (t == 0 || (t >> 30) > kLastSecond) return Clock::now();
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(CDTIME_T_TO_NS(t))));
}

Notification to_notification(const notification_t& n) {
  Notification out;
  out.severity = to_severity(n.severity);
  out.time = notification_time(n.time);
  out.message = field(n.message);
  out.host = field(n.host);
  out.plugin = field(n.plugin);
  out.plugin_instance = field(n.plugin_instance);
  out.type = field(n.type);
  out.type_instance = field(n.type_instance);
  std::size_t meta_count = 0;
  for (const notification_meta_t* m = n.meta; m != nullptr; m = m->next) ++meta_count;
  out.meta.reserve(meta_count);
  for (const notification_meta_t* m = n.meta; m != nullptr; m = m->next) {
    MetaItem item{field(m->name), std::string()};
    switch (m->type) {
      case NM_TYPE_STRING: item.value = std::string(m->nm_value.nm_string != nullptr ? m->nm_value.nm_string : ""); break;
      case NM_TYPE_SIGNED_INT: item.value = m->nm_value.nm_signed_int; break;
      case NM_TYPE_UNSIGNED_INT: item.value = m->nm_value.nm_unsigned_int; break;
      case NM_TYPE_DOUBLE: item.value = m->nm_value.nm_double; break;
      case NM_TYPE_BOOLEAN: item.value = m->nm_value.nm_boolean; break;
    }
    out.meta.push_back(std::move(item));
  }
  return out;
}

// What init builds from the configuration; torn down at shutdown. The
// order is the durability rule's (doc/design.md): the store is opened (the
// spool replayed), delivery queues the events it recovered, the router is
// built from the outage changes it recovered, the silences it kept are put
// back in force, the store takes the router's open outages and the
// silences for its compactions, and only then do threads start.
struct Pipeline {
  Pipeline(const Config& config, const std::string& spool_dir, Logger& log)
      : store(spool_dir, config.queue_limit, log),
        delivery(config, store, spool_dir, log),
        coverage(config.maintenance, log),
        router(config, delivery, log, &coverage),
        watch(coverage, [this](TimePoint now) { router.release(now); }, log),
        silences(coverage, [this](const std::string& record) { store.record_durably(record); },
                 [this] { watch.poke(); }) {
    // The silences kept in the spool are in force before the first
    // notification (and the watch's first round pages what ended meanwhile).
    const std::size_t recovered = silences.recover(store.recovered_changes(), Clock::now());
    if (recovered > 0) log.info(std::to_string(recovered) + " silence(s) restored");
    // Compaction (on the store's xm-sync thread) writes the open outages
    // from the router and the silences; the delivery adds FloodLimit's
    // minute to them before it hands them to the store.
    delivery.set_snapshot_source([this](FunctionRef<void(std::string_view)> write) {
      router.snapshot(write);
      silences.snapshot(write, Clock::now());
    });
  }
  // The store's sync thread, then the delivery's.
  void start() {
    store.start();
    delivery.start();
  }
  // The channel's and the delivery's threads call into the router: they
  // stop before it goes.
  ~Pipeline() { stop(); }
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The channel to collectd-xmatters (collectd-xmatters(5), FILES), once
  // the delivery runs. Without it paging goes on: an ERROR says so.
  void open_channel(const Config& config, const std::string& spool_dir, Logger& log) {
    try {
      control::Verbs verbs = control::live_verbs(config, delivery, router, stopping, &coverage);
      control::add_silence_verbs(verbs, config, silences, coverage);
      control.emplace(spool_dir, std::move(verbs), log);
    } catch (const std::exception& e) {
      log.error(std::string("control channel: ") + e.what() +
                "; collectd-xmatters cannot reach the running plugin (paging goes on)");
    }
  }
  // The channel first: a request being answered finishes against a
  // delivery that still runs (a test waiting for xMatters gives up at
  // once: stopping); then the watch, which hands the delivery the pages
  // held back; the store last (delivery.stop() stops it too).
  void stop() {
    stopping = true;
    control.reset();
    watch.stop();
    delivery.stop();
    store.stop();
  }

  Store store;  // the spool, held clears, QueueLimit, the xm-sync thread
  Delivery delivery;
  Coverage coverage;  // silences and maintenance windows (collectd-xmatters(5) MAINTENANCE)
  Router router;
  CoverWatch watch;   // wakes when one begins or ends
  SilenceBook silences;  // collectd-xmatters(1) SILENCES
  std::atomic<bool> stopping{false};  // raised first by stop()
  std::optional<control::Server> control;
};

// The one plugin instance. collectd calls the notification and read
// callbacks from several threads; they share the lock, init and shutdown
// take it alone.
struct Plugin {
  CollectdLogger log;
  SharedMutex mutex;
  std::optional<Config> config GUARDED_BY(mutex);
  std::optional<SpoolDir> spool_dir GUARDED_BY(mutex);  // checked and locked with the configuration
  bool config_failed GUARDED_BY(mutex) = false;
  std::unique_ptr<Pipeline> pipeline GUARDED_BY(mutex);  // refers to *config
};

Plugin& plugin() {
  static Plugin instance;
  return instance;
}

// Runs a callback body; whatever it throws is logged, and collectd gets -1.
template <typename F>
int guarded(const char* what, F&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    try {
      plugin().log.error(std::string(what) + ": " + e.what());
    } catch (...) {
    }
  } catch (...) {
    plugin_log(LOG_ERR, "xmatters plugin: %s: unknown exception", what);
  }
  return -1;
}

int notification_cb(const notification_t* n, user_data_t*) {
  return guarded("notification", [&] {
    Plugin& p = plugin();
    ReaderLock lock(p.mutex);
    if (n == nullptr || !p.pipeline) return 0;
    p.pipeline->router.dispatch(to_notification(*n));
    return 0;
  });
}

template <std::size_t N>
void set_field(char (&a)[N], const std::string& s) {
  const std::size_t n = std::min(s.size(), N - 1);
  std::memcpy(a, s.data(), n);
  a[n] = '\0';
}

void dispatch_value(const std::string& integration, const char* type, const char* type_instance, value_t value) {
  value_list_t vl{};
  vl.values = &value;
  vl.values_len = 1;
  set_field(vl.plugin, kName);
  set_field(vl.plugin_instance, integration);
  set_field(vl.type, type);
  set_field(vl.type_instance, type_instance);
  plugin_dispatch_values(&vl);
}

value_t gauge(double v) {
  value_t value;
  value.gauge = v;
  return value;
}

value_t derive(std::uint64_t v) {
  value_t value;
  value.derive = static_cast<derive_t>(v);
  return value;
}

int read_cb() {
  return guarded("statistics", [] {
    Plugin& p = plugin();
    ReaderLock lock(p.mutex);
    if (!p.pipeline) return 0;
    for (std::size_t i = 0; i < p.config->integrations.size(); ++i) {
      const std::string& name = p.config->integrations[i].name;
      const DeliveryStats s = p.pipeline->delivery.stats(name);
      dispatch_value(name, "queue_length", "", gauge(static_cast<double>(s.queue_length)));
      dispatch_value(name, "count", "open_outages", gauge(static_cast<double>(p.pipeline->router.open_outages(i))));
      dispatch_value(name, "total_events", "delivered", derive(s.delivered));
      dispatch_value(name, "total_events", "retried", derive(s.retried));
      dispatch_value(name, "total_events", "dead_lettered", derive(s.dead_lettered));
      dispatch_value(name, "total_events", "dropped", derive(s.dropped));
      dispatch_value(name, "total_events", "folded", derive(p.pipeline->router.folded(i)));
      dispatch_value(name, "total_events", "silenced", derive(p.pipeline->router.silenced(i)));
      dispatch_value(name, "latency", "delivery", gauge(p.pipeline->delivery.take_mean_latency(name)));
    }
    return 0;
  });
}

int config_cb(oconfig_item_t* ci) {
  return guarded("configuration", [&] {
    Plugin& p = plugin();
    WriterLock lock(p.mutex);
    try {
      if (p.config || p.config_failed) throw ConfigError(kBlockGivenTwice);
      // collectd's global options come before the plugin blocks.
      const char* base = global_option_get("BaseDir");
      PluginSetup setup = configure_plugin(to_node(*ci), base != nullptr ? base : ".", SpoolDirUse::Take);
      for (const auto& w : setup.config.warnings) p.log.warning(w);
      p.spool_dir = std::move(setup.spool_dir);
      p.config = std::move(setup.config);
      return 0;
    } catch (const ConfigError& e) {
      p.config_failed = true;
      p.log.error(e.what());
      return -1;
    }
  });
}

int init_cb() {
  return guarded("init", [] {
    Plugin& p = plugin();
    WriterLock lock(p.mutex);
    if (p.config_failed) return -1;
    if (!p.config) {
      p.log.error(kNoBlock);
      return -1;
    }
    if (p.pipeline) return 0;
    const std::string& spool_dir = p.spool_dir->path();
    auto pipeline = std::make_unique<Pipeline>(*p.config, spool_dir, p.log);
    pipeline->start();
    // Its first round pages at once what a cover that ended while collectd
    // was down held back.
    pipeline->watch.start();
    // A pager that is not registered silently does nothing: that is an
    // error. (The callbacks wait on the lock held here until the pipeline is
    // in place.)
    if (plugin_register_notification(kName, notification_cb, nullptr) != 0)
      throw std::runtime_error("cannot register the notification callback");
    if (p.config->report_stats && plugin_register_read(kName, read_cb) != 0) {
      plugin_unregister_notification(kName);
      throw std::runtime_error("cannot register the statistics callback");
    }
    p.pipeline = std::move(pipeline);
    p.pipeline->open_channel(*p.config, spool_dir, p.log);
    p.log.info("delivering to " + std::to_string(p.config->integrations.size()) +
               " integration(s), spool in " + spool_dir);
    return 0;
  });
}

// collectd has stopped its read and write threads when it calls this; the
// lock covers a plugin that dispatches a notification from its own thread.
int shutdown_cb() {
  return guarded("shutdown", [] {
    Plugin& p = plugin();
    plugin_unregister_notification(kName);
    plugin_unregister_read(kName);
    WriterLock lock(p.mutex);
    if (p.pipeline) p.pipeline->stop();
    p.pipeline.reset();
    p.config.reset();
    p.spool_dir.reset();
    p.config_failed = false;
    return 0;
  });
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void module_register(void) {
  plugin_register_complex_config(kName, config_cb);
  plugin_register_init(kName, init_cb);
  plugin_register_shutdown(kName, shutdown_cb);
}
