// Template and ClearTemplate checked at start-up (collectd-xmatters(5),
// PAYLOAD): valid JSON once expanded with awkward and with empty values, and
// the most bytes a template or DetailsURL can expand to, from collectd's
// field limits.
#include <jansson.h>

#include <algorithm>
#include <cstddef>
#include <utility>

#include "payload/payload.h"
#include "payload/payload_macros.h"
#include "util/resources.h"

namespace xmatters {
using namespace payload_detail;
namespace {

// U+0000 is valid JSON ("\u0000"), though jansson refuses it by default.
constexpr std::size_t kDecodeFlags = JSON_ALLOW_NUL;

// Sample values for check_template: the awkward characters a real event can
// carry, and (second) the emptiest event, so that a template is valid for
// every event and not just for a typical one. Between them they span each
// macro's kinds of value: text (awkward, even $current_value, which may be
// "-1.5" or "nan"); $duration's digits, the longest (int64 nanoseconds) and
// "0"; $target as an array and as null.
void awkward_sample(MacroValues& v) {
  static constexpr std::string_view awkward =
      "a \"quoted\" back\\slash, tab\t, newline\n, \x01, caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 </";
  for (std::size_t m = 0; m < kMacroCount; ++m) v.set_literal(static_cast<Macro>(m), awkward);
  v.set_literal(kDuration, "9223372036");
  v.targets = {"ops \"oncall\"", "dba\\team"};
}

void empty_sample(MacroValues& v) { v.set_literal(kDuration, "0"); }

// jansson's line and column, counted in the template rather than in the
// expansion: error.position is the number of bytes jansson had read.
std::string position_in_template(std::string_view text, const std::vector<Replacement>& replacements,
                                 std::size_t position) {
  std::ptrdiff_t shift = 0;
  std::size_t at = std::string_view::npos;
  for (const auto& r : replacements) {
    if (position <= r.out_begin) break;
    if (position <= r.out_end) {  // inside a macro's value: blame the macro
      at = r.in_end;
      break;
    }
    shift = static_cast<std::ptrdiff_t>(r.in_end) - static_cast<std::ptrdiff_t>(r.out_end);
  }
  if (at == std::string_view::npos)
    at = static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, static_cast<std::ptrdiff_t>(position) + shift));
  at = std::min(at, text.size());
  int line = 1, column = 0;
  for (std::size_t i = 0; i < at; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 0;
    } else if ((c & 0xC0) != 0x80) {  // as jansson: characters, not bytes
      ++column;
    }
  }
  return "(line " + std::to_string(line) + ", column " + std::to_string(column) + ")";
}

// kMaxRaw, but a host outage lists up to kMembersListed members in
// services, items and reasons, joined with ", ", then " and N more".
std::size_t max_raw(Macro m, const IntegrationConfig& integration) {
  const bool host = integration.group_by == GroupBy::Host, flood = integration.flood_limit > 0;
  if (flood && (m == kName || m == kFqdn || m == kDescription))
    return std::max(kMaxRaw[m], sizeof("flood: 4294967295 outages on 4294967295 hosts") - 1);
  if ((!host && !flood) || (m != kServices && m != kItems && m != kReasons)) return kMaxRaw[m];
  // A flood outage lists value lists by identifier: host/plugin-instance/type-instance.
  const std::size_t one = m == kServices && flood ? kMaxRaw[kServices] + kNameMax + 1 : kMaxRaw[m];
  constexpr std::size_t kMore = sizeof(" and 18446744073709551615 more") - 1;
  return std::min(kMembersListed * one + (kMembersListed - 1) * 2, kJoinedMax) + kMore;
}

}  // namespace

bool payload_detail::is_json(const std::string& text) {
  json_error_t error;
  return Json(json_loadb(text.data(), text.size(), kDecodeFlags, &error)) != nullptr;
}

std::string check_template(const std::string& text) {
  const std::pair<void (*)(MacroValues&), const char*> samples[] = {
      {awkward_sample, "not valid JSON once expanded"},
      {empty_sample, "not valid JSON once expanded with empty values"},
  };
  for (const auto& [fill, what] : samples) {
    MacroValues values;
    fill(values);
    std::vector<Replacement> replacements;
    const std::string expanded = expand_template(text, values, &replacements);
    json_error_t error;
    if (Json(json_loadb(expanded.data(), expanded.size(), kDecodeFlags, &error))) continue;
    return std::string(what) + ": " + error.text + " " +
           position_in_template(text, replacements, static_cast<std::size_t>(error.position));
  }
  return "";
}

std::size_t details_url_worst_case(const IntegrationConfig& integration) {
  if (!integration.details_url) return 0;
  std::size_t joined = 0;  // $target: the targets joined with ","
  for (const auto& t : integration.targets) joined += (joined == 0 ? 0 : 1) + t.size();
  // Percent-encoded values need no JSON escape: 3 bytes a byte, 9 for a
  // byte of invalid UTF-8 (U+FFFD's three). The URL's own text may need one.
  std::size_t values = 0;
  const std::string rest = expand(*integration.details_url, [&](Macro m, std::string&) {
    if (m == kDetailsUrl) return false;
    values += 9 * (m == kTarget ? joined : max_raw(m, integration));
    return true;
  });
  return kEscapedMax * rest.size() + values;
}

std::size_t template_worst_case(const std::string& text, const IntegrationConfig& integration) {
  MacroValues targets;
  for (const auto& t : integration.targets) targets.targets.push_back(sanitize_utf8(t));
  const std::size_t details = details_url_worst_case(integration);
  // The template's own text, plus the most each of its macros can add.
  std::size_t values = 0;
  const std::string rest = expand(text, [&](Macro m, std::string&) {
    if (m == kTarget) {
      JsonWriter w;
      write_targets(w, targets.targets);
      values += w.text().size();
    } else {
      values += m == kDetailsUrl ? details : kEscapedMax * max_raw(m, integration);
    }
    return true;
  });
  return rest.size() + values;
}

}  // namespace xmatters
