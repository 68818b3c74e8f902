// An integration's options checked together once all of them are known
// (collectd-xmatters(5), OPTIONS): required and exclusive options, the
// defaults one option takes from another, and the start-up check that no
// Template or DetailsURL can expand past what a request may carry (PAYLOAD).
#include <string>
#include <utility>

#include "config/option_rule.h"
#include "payload/payload.h"  // the worst cases and their limits

namespace xmatters {
namespace options {

void finish_integration(IntegrationDraft& draft, Config& config) {
  IntegrationConfig& ic = draft.config;
  const std::string prefix = integration_prefix(ic.name);
  const auto given = [&](const char* name) -> const ConfigNode* {
    const auto it = draft.given.find(name);
    return it == draft.given.end() ? nullptr : it->second;
  };
  const auto fail = [&](const char* name, const std::string& message) {
    const Rule* rule = find_rule(name);
    return ConfigError(prefix + show_option(rule->spec.name, *given(name), rule->shown) + ": " + message);
  };

  if (!given("OutageURL")) throw ConfigError(prefix + "OutageURL is required");
  if (given("Password") && given("PasswordFile"))
    throw fail("PasswordFile", "cannot be combined with Password; give one of them");
  if (given("ClientKey") && !given("ClientCert")) throw fail("ClientKey", "needs ClientCert as well");
  if (given("ClientCert") && !given("ClientKey")) throw fail("ClientCert", "needs ClientKey as well");

  if (ic.password && !ic.user) {
    const char* name = given("Password") ? "Password" : "PasswordFile";
    const Rule* rule = find_rule(name);
    config.warnings.push_back(prefix + show_option(rule->spec.name, *given(name), rule->shown) +
                              ": HTTP basic authentication needs a User as well");
  }
  if (!given("ClearURL")) ic.clear_url = ic.outage_url;
  if (!given("ClearTemplate")) ic.clear_template = ic.outage_template;
  // Checked once every option is known: Target and DetailsURL count too.
  for (const auto& [name, text] : {std::pair{"Template", &ic.outage_template}, {"ClearTemplate", &ic.clear_template}}) {
    if (!given(name) || !*text) continue;
    const std::size_t worst = template_worst_case(**text, ic);
    if (worst > kMaxBody)
      throw fail(name, "could expand to " + std::to_string(worst) + " bytes with the longest values collectd allows, "
                       "more than the " + std::to_string(kMaxBody) + " bytes of a request the plugin sends");
  }
  // The built-in payload carries DetailsURL's expansion whole (only its
  // meta items are cut to fit 64 KiB), and so may a template.
  if (const std::size_t worst = details_url_worst_case(ic); worst > kDetailsUrlMax)
    throw fail("DetailsURL", "could expand to " + std::to_string(worst) +
                                 " bytes with the longest values collectd allows, more than the " +
                                 std::to_string(kDetailsUrlMax) + " bytes allowed (a request has at most " +
                                 std::to_string(kMaxBody) + ")");
}

}  // namespace options
}  // namespace xmatters
