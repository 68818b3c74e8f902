#include "fake_collectd.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace fake_collectd {
namespace {

struct Host {
  std::mutex mutex;
  int (*config)(oconfig_item_t*) = nullptr;
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*read)() = nullptr;
  plugin_notification_cb notification = nullptr;
  user_data_t notification_data{};
  std::vector<LogLine> log;
  std::vector<DispatchedValue> values;
  std::map<std::string, std::string> options;
};

Host& host() {
  static Host h;
  return h;
}

template <std::size_t N>
void set(char (&a)[N], const std::string& s) {
  std::snprintf(a, N, "%s", s.c_str());
}

// Children are stored by value, as in liboconfig, so each is filled in place.
void fill(oconfig_item_t* ci, const xmatters::ConfigNode& node, oconfig_item_t* parent) {
  ci->key = strdup(node.key.c_str());
  ci->parent = parent;
  ci->values_num = static_cast<int>(node.values.size());
  ci->values = static_cast<oconfig_value_t*>(std::calloc(node.values.size() + 1, sizeof(oconfig_value_t)));
  for (std::size_t i = 0; i < node.values.size(); ++i) {
    const auto& v = node.values[i];
    switch (v.type) {
      case xmatters::ConfigValue::Type::String:
        ci->values[i].type = OCONFIG_TYPE_STRING;
        ci->values[i].value.string = strdup(v.string.c_str());
        break;
      case xmatters::ConfigValue::Type::Number:
        ci->values[i].type = OCONFIG_TYPE_NUMBER;
        ci->values[i].value.number = v.number;
        break;
      case xmatters::ConfigValue::Type::Boolean:
        ci->values[i].type = OCONFIG_TYPE_BOOLEAN;
        ci->values[i].value.boolean = v.boolean ? 1 : 0;
        break;
    }
  }
  ci->children_num = static_cast<int>(node.children.size());
  ci->children = static_cast<oconfig_item_t*>(std::calloc(node.children.size() + 1, sizeof(oconfig_item_t)));
  for (std::size_t i = 0; i < node.children.size(); ++i) fill(&ci->children[i], node.children[i], ci);
}

void free_contents(oconfig_item_t* ci) {
  std::free(ci->key);
  for (int i = 0; i < ci->values_num; ++i)
    if (ci->values[i].type == OCONFIG_TYPE_STRING) std::free(ci->values[i].value.string);
  std::free(ci->values);
  for (int i = 0; i < ci->children_num; ++i) free_contents(&ci->children[i]);
  std::free(ci->children);
}

// Appends a meta item, as collectd does: 0, or -1 when out of memory.
template <typename SetValue>
int append_meta(notification_t* n, const char* name, notification_meta_type_e type, SetValue set_value) {
  auto* m = static_cast<notification_meta_t*>(std::calloc(1, sizeof(notification_meta_t)));
  if (m == nullptr) return -1;
  set(m->name, name);
  m->type = type;
  set_value(m->nm_value);
  notification_meta_t** tail = &n->meta;
  while (*tail != nullptr) tail = &(*tail)->next;
  *tail = m;
  return 0;
}

}  // namespace

void reset() {
  Host& h = host();
  std::lock_guard<std::mutex> lock(h.mutex);
  h.config = nullptr;
  h.init = nullptr;
  h.shutdown = nullptr;
  h.read = nullptr;
  h.notification = nullptr;
  h.log.clear();
  h.values.clear();
  h.options.clear();
}

std::vector<LogLine> log_lines() {
  std::lock_guard<std::mutex> lock(host().mutex);
  return host().log;
}

std::size_t count_log(int level, const std::string& needle) {
  std::size_t n = 0;
  for (const auto& l : log_lines())
    if (l.level == level && l.text.find(needle) != std::string::npos) ++n;
  return n;
}

void clear_log() {
  Host& h = host();
  std::lock_guard<std::mutex> lock(h.mutex);
  h.log.clear();
  h.log.shrink_to_fit();
}

std::string dump_log() {
  std::string out;
  for (const auto& l : log_lines()) out += std::to_string(l.level) + " " + l.text + "\n";
  return out;
}

void set_global_option(const std::string& name, const std::string& value) {
  std::lock_guard<std::mutex> lock(host().mutex);
  host().options[name] = value;
}

int call_config(const oconfig_item_t& ci) {
  auto cb = host().config;
  return cb != nullptr ? cb(const_cast<oconfig_item_t*>(&ci)) : -1;
}
int call_init() {
  auto cb = host().init;
  return cb != nullptr ? cb() : -1;
}
int call_notification(const notification_t& n) {
  plugin_notification_cb cb;
  user_data_t* ud;
  {
    std::lock_guard<std::mutex> lock(host().mutex);
    cb = host().notification;
    ud = &host().notification_data;
  }
  return cb != nullptr ? cb(&n, ud) : -1;
}
int call_read() {
  auto cb = host().read;
  return cb != nullptr ? cb() : -1;
}
int call_shutdown() {
  auto cb = host().shutdown;
  return cb != nullptr ? cb() : -1;
}
bool has_notification_callback() {
  std::lock_guard<std::mutex> lock(host().mutex);
  return host().notification != nullptr;
}
bool has_read_callback() {
  std::lock_guard<std::mutex> lock(host().mutex);
  return host().read != nullptr;
}

std::vector<DispatchedValue> dispatched_values() {
  std::lock_guard<std::mutex> lock(host().mutex);
  return host().values;
}

OConfig::OConfig(const xmatters::ConfigNode& node)
    : root_(static_cast<oconfig_item_t*>(std::calloc(1, sizeof(oconfig_item_t)))) {
  fill(root_, node, nullptr);
}
OConfig::~OConfig() {
  free_contents(root_);
  std::free(root_);
}

Notif::Notif(int severity, const std::string& host_name, const std::string& plugin, const std::string& type,
             const std::string& message, cdtime_t time)
    : n_{} {
  n_.severity = severity;
  n_.time = time;
  set(n_.host, host_name);
  set(n_.plugin, plugin);
  set(n_.type, type);
  set(n_.message, message);
}
Notif::~Notif() { plugin_notification_meta_free(n_.meta); }
Notif& Notif::type_instance(const std::string& s) {
  set(n_.type_instance, s);
  return *this;
}
Notif& Notif::plugin_instance(const std::string& s) {
  set(n_.plugin_instance, s);
  return *this;
}
Notif& Notif::meta(const char* name, const char* value) {
  plugin_notification_meta_add_string(&n_, name, value);
  return *this;
}
Notif& Notif::meta(const char* name, double value) {
  plugin_notification_meta_add_double(&n_, name, value);
  return *this;
}

}  // namespace fake_collectd

// --- the collectd functions the plugin links against ---------------------------

using fake_collectd::host;

extern "C" {

void plugin_log(int level, const char* format, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  if (std::getenv("XM_TEST_VERBOSE") != nullptr) std::fprintf(stderr, "[%d] %s\n", level, buf);
  std::lock_guard<std::mutex> lock(host().mutex);
  host().log.push_back({level, buf});
}

int plugin_register_complex_config(const char*, int (*callback)(oconfig_item_t*)) {
  host().config = callback;
  return 0;
}
int plugin_register_init(const char*, plugin_init_cb callback) {
  host().init = callback;
  return 0;
}
int plugin_register_shutdown(const char*, plugin_shutdown_cb callback) {
  host().shutdown = callback;
  return 0;
}
int plugin_register_read(const char*, int (*callback)(void)) {
  std::lock_guard<std::mutex> lock(host().mutex);
  host().read = callback;
  return 0;
}
int plugin_unregister_read(const char*) {
  std::lock_guard<std::mutex> lock(host().mutex);
  host().read = nullptr;
  return 0;
}
int plugin_register_notification(const char*, plugin_notification_cb callback, user_data_t const* ud) {
  std::lock_guard<std::mutex> lock(host().mutex);
  host().notification = callback;
  host().notification_data = ud != nullptr ? *ud : user_data_t{};
  return 0;
}
int plugin_unregister_notification(const char*) {
  std::lock_guard<std::mutex> lock(host().mutex);
  host().notification = nullptr;
  return 0;
}

int plugin_dispatch_values(value_list_t const* vl) {
  // The plugin dispatches gauges and derives only; types.db says which.
  const std::string type = vl->type;
  const bool derive = type == "total_events";
  fake_collectd::DispatchedValue v{vl->plugin, vl->plugin_instance, vl->type, vl->type_instance,
                                   derive ? static_cast<double>(vl->values[0].derive) : vl->values[0].gauge};
  std::lock_guard<std::mutex> lock(host().mutex);
  host().values.push_back(v);
  return 0;
}

const char* global_option_get(const char* option) {
  std::lock_guard<std::mutex> lock(host().mutex);
  auto it = host().options.find(option);
  return it != host().options.end() ? it->second.c_str() : nullptr;
}

int plugin_notification_meta_add_string(notification_t* n, const char* name, const char* value) {
  return fake_collectd::append_meta(n, name, NM_TYPE_STRING, [&](auto& v) { v.nm_string = strdup(value); });
}
int plugin_notification_meta_add_signed_int(notification_t* n, const char* name, int64_t value) {
  return fake_collectd::append_meta(n, name, NM_TYPE_SIGNED_INT, [&](auto& v) { v.nm_signed_int = value; });
}
int plugin_notification_meta_add_unsigned_int(notification_t* n, const char* name, uint64_t value) {
  return fake_collectd::append_meta(n, name, NM_TYPE_UNSIGNED_INT, [&](auto& v) { v.nm_unsigned_int = value; });
}
int plugin_notification_meta_add_double(notification_t* n, const char* name, double value) {
  return fake_collectd::append_meta(n, name, NM_TYPE_DOUBLE, [&](auto& v) { v.nm_double = value; });
}
int plugin_notification_meta_add_boolean(notification_t* n, const char* name, bool value) {
  return fake_collectd::append_meta(n, name, NM_TYPE_BOOLEAN, [&](auto& v) { v.nm_boolean = value; });
}
int plugin_notification_meta_free(notification_meta_t* n) {
  while (n != nullptr) {
    notification_meta_t* next = n->next;
    if (n->type == NM_TYPE_STRING) std::free(const_cast<char*>(n->nm_value.nm_string));
    std::free(n);
    n = next;
  }
  return 0;
}

}  // extern "C"
