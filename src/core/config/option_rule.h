// Inside the configuration units (not for the rest of the plugin): one
// option's rule as the table states it, the draft its value goes into, and
// how a value is checked by type and shown in an ERROR line.
//   option_table.cc  the rules, one per option, and the docs rendered from them
//   option_value.cc  values checked by type; options and values as messages show them
//   config_parser.cc the block walked, each option applied by its rule
//   integration_check.cc  an integration's options checked together
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"
#include "config/options.h"
#include "util/url.h"

namespace xmatters {
namespace options {

// A problem with one option's value; parse_config turns it into a
// ConfigError that names the option, the integration and the value.
struct Invalid : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A value once its type is checked.
using Value = std::variant<std::string, std::vector<std::string>, bool, std::uint64_t, double, Severity, Regex>;

struct IntegrationDraft {
  IntegrationConfig config;
  // The first node of each option given, by canonical name, for the
  // checks that look at several options together.
  std::map<std::string, const ConfigNode*> given;
};

struct MaintenanceDraft {
  MaintenanceConfig config;
  std::map<std::string, const ConfigNode*> given;
};

// Where an option's value goes, and where its warnings go.
struct Draft {
  Config& config;
  IntegrationDraft* integration;  // nullptr at plugin level
  std::string context;            // "Integration "ops": OutageURL "...": "
  MaintenanceDraft* maintenance = nullptr;

  IntegrationConfig& ic() { return integration->config; }
  MaintenanceConfig& mc() { return maintenance->config; }
  void warn(const std::string& message) { config.warnings.push_back(context + message); }
};

using Apply = std::function<void(Draft&, Value&)>;

// How an option's values are shown in messages.
enum class Shown { Plain, Url, Secret, Header };

struct Bounds {
  double min = 0;
  double max = 1e9;  // keeps every number well inside the fields' ranges
  bool min_exclusive = false;
};

struct Rule {
  OptionSpec spec;
  Apply apply;  // empty for Block
  Shown shown = Shown::Plain;
  Bounds bounds = {};
};

// --- option_table.cc ---

// Every option's rule, in documentation order.
const std::vector<Rule>& rules();

// The option of that name in scope; else one of that name in another scope
// (for the message that says where it belongs); nullptr if none.
const Rule* find_rule(std::string_view name, OptionScope scope = OptionScope::Integration);

// --- option_value.cc ---

bool iequals(std::string_view a, std::string_view b);

// A string as collectd's config syntax writes it, kept on one line: the
// message it goes into is a single log line.
std::string quote(std::string_view s);

// "Option "value" ...", as the message names an option and its values
// (secrets, header values and URL query values as "***").
std::string show_option(const char* name, const ConfigNode& node, Shown shown);

std::string integration_prefix(const std::string& name);  // "Integration "ops": "
std::string maintenance_prefix(const std::string& name);  // "Maintenance "name": "

// Checks the node's values against the option's type, generically; may add
// a warning to d. Throws Invalid.
Value convert(const Rule& rule, const ConfigNode& node, Draft& d);

// A regular file's text, 1 MiB at most (templates, password files). Throws Invalid.
std::string read_small_file(const std::string& path);

// url read by libcurl's parser, with a host. Throws Invalid, whose reason
// names no part of the URL.
UrlParts checked_url(const std::string& url, const char* default_scheme = "");

// --- integration_check.cc ---

// The checks and defaults that involve several options of one integration,
// once all of them are known. Throws ConfigError; warnings go to config.
void finish_integration(IntegrationDraft& draft, Config& config);

}  // namespace options
}  // namespace xmatters
