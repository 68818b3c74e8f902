// The <Plugin xmatters> block walked: each option found in the table, its
// scope checked, its value converted and applied by its rule; blocks
// opened; the first mistake one ConfigError (collectd-xmatters(5), OPTIONS).
#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

#include "config/option_rule.h"

namespace xmatters {
namespace options {
namespace {

class Parser {
 public:
  Config parse(const ConfigNode& plugin_block) {
    for (const auto& child : plugin_block.children) option(child, nullptr, nullptr);
    if (config_.integrations.empty())
      throw ConfigError("Integration: at least one <Integration \"name\"> block is required");
    // A window's integrations are checked once every integration is known.
    for (const auto& m : config_.maintenance)
      for (const auto& name : m.integrations)
        if (std::none_of(config_.integrations.begin(), config_.integrations.end(),
                         [&](const IntegrationConfig& i) { return i.name == name; }))
          throw ConfigError(maintenance_prefix(m.name) + "Integration " + quote(name) +
                            ": no integration of that name is configured");
    return std::move(config_);
  }

 private:
  // Applies one option of the plugin block (both drafts nullptr), of an
  // integration block or of a maintenance block.
  void option(const ConfigNode& node, IntegrationDraft* integration, MaintenanceDraft* maintenance) {
    const std::string prefix = integration   ? integration_prefix(integration->config.name)
                               : maintenance ? maintenance_prefix(maintenance->config.name)
                                             : "";
    const OptionScope scope =
        integration ? OptionScope::Integration : maintenance ? OptionScope::Maintenance : OptionScope::Plugin;
    const Rule* rule = find_rule(node.key, scope);
    if (rule == nullptr) throw ConfigError(prefix + "unknown option " + quote(node.key));
    const std::string shown = show_option(rule->spec.name, node, rule->shown);
    const auto fail = [&](const std::string& message) { return ConfigError(prefix + shown + ": " + message); };

    if (rule->spec.scope != scope) {
      switch (rule->spec.scope) {
        case OptionScope::Integration: throw fail("belongs inside an <Integration \"name\"> block");
        case OptionScope::Maintenance: throw fail("belongs inside a <Maintenance \"name\"> block");
        case OptionScope::Plugin:
          throw fail(std::string("belongs in <Plugin xmatters>, not inside <") +
                     (integration ? "Integration" : "Maintenance") + ">");
      }
    }
    if (rule->spec.type == OptionType::Block) return block(node, *rule, prefix + shown);
    if (!node.children.empty()) throw fail("is not a block");

    auto& given = integration ? integration->given : maintenance ? maintenance->given : plugin_given_;
    if (!given.emplace(rule->spec.name, &node).second && rule->spec.type != OptionType::StringList)
      throw fail("is given more than once");

    Draft draft{config_, integration, prefix + shown + ": ", maintenance};
    try {
      Value value = convert(*rule, node, draft);
      rule->apply(draft, value);
    } catch (const Invalid& e) {
      throw fail(e.what());
    } catch (const std::invalid_argument& e) {  // the parsers of weekdays, times and time zones
      // They echo the text they refused: its control characters escaped,
      // as quote() does, so the ERROR stays one line.
      std::string line;
      for (const char c : std::string_view(e.what())) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
          const std::string q = quote(std::string_view(&c, 1));  // "\n", "\x01"... in quotes
          line += q.substr(1, q.size() - 2);
        } else {
          line += c;
        }
      }
      throw fail(line);
    }
  }

  void block(const ConfigNode& node, const Rule& rule, const std::string& shown) {
    if (node.values.size() != 1 || node.values[0].type != ConfigValue::Type::String)
      throw ConfigError(shown + ": expects one name in quotes: <" + rule.spec.name + " \"name\">");
    const std::string& name = node.values[0].string;
    if (name.empty() || name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
                            std::string::npos)
      throw ConfigError(shown + ": the name may contain only letters, digits, '_' and '-'");
    if (iequals(rule.spec.name, "Maintenance")) return maintenance_block(node, name, shown);
    for (const auto& other : config_.integrations)
      if (other.name == name) throw ConfigError(shown + ": an integration of that name is already configured");

    IntegrationDraft draft;
    draft.config.name = name;
    for (const auto& child : node.children) option(child, &draft, nullptr);
    finish_integration(draft, config_);
    config_.integrations.push_back(std::move(draft.config));
  }

  void maintenance_block(const ConfigNode& node, const std::string& name, const std::string& shown) {
    for (const auto& other : config_.maintenance)
      if (other.name == name) throw ConfigError(shown + ": a maintenance window of that name is already configured");
    MaintenanceDraft draft;
    draft.config.name = name;
    for (const auto& child : node.children) option(child, nullptr, &draft);
    if (!draft.config.time_zone) {
      try {
        draft.config.time_zone = TimeZone::load("");
      } catch (const std::invalid_argument& e) {
        throw ConfigError(maintenance_prefix(name) + "TimeZone (unset: the system's): " + e.what());
      }
    }
    config_.maintenance.push_back(std::move(draft.config));
  }

  Config config_;
  std::map<std::string, const ConfigNode*> plugin_given_;
};

}  // namespace
}  // namespace options

Config parse_config(const ConfigNode& plugin_block) { return options::Parser().parse(plugin_block); }

}  // namespace xmatters
