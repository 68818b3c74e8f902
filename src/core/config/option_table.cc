// The option table (collectd-xmatters(5), OPTIONS): each option with its
// scope, type, default, description, bounds, how its value is shown and
// where it goes, as fluent-bit's out_http declares its config_map. Parsing,
// doc/options.md's table and the man page's check all read it.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "config/option_rule.h"
#include "payload/payload.h"  // check_template
#include "util/text.h"

namespace xmatters {
namespace options {
namespace {

// Assignment of a checked value to a field, by the field's type; the option
// table pairs each option with its field through these.
void assign(std::string& f, Value& v) { f = std::move(std::get<std::string>(v)); }
void assign(std::optional<std::string>& f, Value& v) { f = std::move(std::get<std::string>(v)); }
void assign(std::vector<std::string>& f, Value& v) {
  auto& list = std::get<std::vector<std::string>>(v);
  f.insert(f.end(), std::make_move_iterator(list.begin()), std::make_move_iterator(list.end()));
}
void assign(bool& f, Value& v) { f = std::get<bool>(v); }
void assign(std::size_t& f, Value& v) { f = static_cast<std::size_t>(std::get<std::uint64_t>(v)); }
void assign(int& f, Value& v) { f = static_cast<int>(std::get<std::uint64_t>(v)); }
void assign(unsigned& f, Value& v) { f = static_cast<unsigned>(std::get<std::uint64_t>(v)); }
// Fractions of a second round up, so that a small positive value never
// becomes 0 (which, for RenotifyInterval, means "never").
void assign(std::chrono::seconds& f, Value& v) {
  f = std::chrono::ceil<std::chrono::seconds>(std::chrono::duration<double>(std::get<double>(v)));
}
void assign(std::chrono::milliseconds& f, Value& v) {
  f = std::chrono::ceil<std::chrono::milliseconds>(std::chrono::duration<double>(std::get<double>(v)));
}
void assign(Severity& f, Value& v) { f = std::get<Severity>(v); }
void assign(std::optional<Regex>& f, Value& v) { f = std::move(std::get<Regex>(v)); }

template <typename T>
Apply plugin_field(T Config::*field) {
  return [field](Draft& d, Value& v) { assign(d.config.*field, v); };
}

template <typename T>
Apply integration_field(T IntegrationConfig::*field) {
  return [field](Draft& d, Value& v) { assign(d.ic().*field, v); };
}

template <typename T>
Apply maintenance_field(T MaintenanceConfig::*field) {
  return [field](Draft& d, Value& v) { assign(d.mc().*field, v); };
}

// A template file's text, checked as the payload builder will expand it.
Apply template_field(std::optional<std::string> IntegrationConfig::*field) {
  return [field](Draft& d, Value& v) {
    std::string text = read_small_file(std::get<std::string>(v));
    const std::string problem = check_template(text);
    if (!problem.empty()) throw Invalid("is not a valid template: " + problem);
    d.ic().*field = std::move(text);
  };
}

Apply tls_check(bool IntegrationConfig::*field, const char* warning) {
  return [field, warning](Draft& d, Value& v) {
    assign(d.ic().*field, v);
    if (!(d.ic().*field)) d.warn(warning);
  };
}

bool is_token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void check_header(const std::string& header) {
  const std::size_t colon = header.find(':');
  if (colon == std::string::npos || colon == 0) throw Invalid("must be \"Name: value\"");
  for (std::size_t i = 0; i < colon; ++i)
    if (!is_token_char(header[i])) throw Invalid("must be \"Name: value\" with a header name of letters, digits and -");
  for (std::size_t i = colon + 1; i < header.size(); ++i) {
    const auto u = static_cast<unsigned char>(header[i]);
    if ((u < 0x20 && header[i] != '\t') || u == 0x7f) throw Invalid("must not contain control characters");
  }
}

constexpr auto P = OptionScope::Plugin;
constexpr auto I = OptionScope::Integration;
constexpr auto M = OptionScope::Maintenance;
using T = OptionType;

const char* type_doc(OptionType t) {
  switch (t) {
    case T::String: return "string";
    case T::StringList: return "strings, repeatable";
    case T::Boolean: return "boolean";
    case T::Integer: return "integer";
    case T::Seconds: return "seconds";
    case T::Severity: return "`warning` | `failure`";
    case T::Regex: return "regex (ERE)";
    case T::Url: return "URL";
    case T::Path: return "file";
    case T::Block: return "block";
  }
  return "";
}

}  // namespace

const std::vector<Rule>& rules() {
  static const std::vector<Rule> table = {
      {{"SpoolDir", P, T::String, "<BaseDir>/xmatters",
        "Directory of the spool and of the open outages; created with mode 0700 if missing, never chmodded; "
        "refused if another user owns it or can write it."},
       [](Draft& d, Value& v) {
         if (std::get<std::string>(v).empty()) throw Invalid("must not be empty");
         assign(d.config.spool_dir, v);
       }},
      {{"QueueLimit", P, T::Integer, "100000",
        "Undelivered events kept at most (at least 1), all integrations together; beyond it new outage events are "
        "refused."},
       plugin_field(&Config::queue_limit),
       Shown::Plain,
       {1}},
      {{"ReportStats", P, T::Boolean, "true", "Dispatch the plugin's own metrics (plugin `xmatters`)."},
       plugin_field(&Config::report_stats)},
      {{"DeadLetterLimit", P, T::Integer, "67108864",
        "Bytes `dead-letter.jsonl` in SpoolDir holds at most (64 MiB; at least 4096); beyond it its oldest letters "
        "are dropped, with a WARNING."},
       plugin_field(&Config::dead_letter_limit),
       Shown::Plain,
       {4096, 1e12}},
      {{"Integration", P, T::Block, nullptr,
        "`<Integration \"name\">` block, one or more; the name is `[A-Za-z0-9_-]+` and unique."},
       {}},
      {{"Maintenance", P, T::Block, nullptr,
        "`<Maintenance \"name\">` block, any number: a recurring window during which the outages it matches page "
        "nobody, and those still open at its end page then; the name is `[A-Za-z0-9_-]+` and unique."},
       {}},
      {{"OutageURL", I, T::Url, nullptr,
        "Required. URL of the \"Panopta Outage Event\" inbound integration (with its `apiKey`)."},
       integration_field(&IntegrationConfig::outage_url),
       Shown::Url},
      {{"ClearURL", I, T::Url, "OutageURL",
        "URL of the \"Panopta Clear Event\" inbound integration; unset: the same as `OutageURL`."},
       integration_field(&IntegrationConfig::clear_url),
       Shown::Url},
      {{"User", I, T::String, nullptr, "User name for HTTP basic authentication."},
       integration_field(&IntegrationConfig::user)},
      {{"Password", I, T::String, nullptr, "Password for HTTP basic authentication; excludes `PasswordFile`."},
       integration_field(&IntegrationConfig::password),
       Shown::Secret},
      {{"PasswordFile", I, T::Path, nullptr,
        "File whose first line is the password (trailing newline removed); excludes `Password`."},
       [](Draft& d, Value& v) {
         const std::string& path = std::get<std::string>(v);
         struct stat st;
         if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
           d.warn("the file is readable by group or others (mode " + mode_octal(st.st_mode) +
                  "): other users of this host can read the password; chmod it to 0600");
         }
         std::string text = read_small_file(path);
         text.erase(std::min(text.find('\n'), text.size()));
         if (!text.empty() && text.back() == '\r') text.pop_back();
         if (text.empty()) d.warn("the password (first line of the file) is empty");
         d.ic().password = std::move(text);
       }},
      {{"Target", I, T::StringList, nullptr,
        "Recipients (user or group names) for the payload's `target`: one gives a string, several an array; "
        "repeatable. Unset: the form's own recipients."},
       [](Draft& d, Value& v) {
         for (const auto& t : std::get<std::vector<std::string>>(v))
           if (t.empty()) throw Invalid("a target must not be empty");
         assign(d.ic().targets, v);
       }},
      {{"MinSeverity", I, T::Severity, "warning", "Lowest severity that opens an outage: `warning` or `failure`."},
       integration_field(&IntegrationConfig::min_severity)},
      {{"Host", I, T::Regex, nullptr, "Only notifications whose host matches this POSIX extended regex; all filters given must match."},
       integration_field(&IntegrationConfig::host_filter)},
      {{"Plugin", I, T::Regex, nullptr, "Only notifications whose plugin matches this POSIX extended regex."},
       integration_field(&IntegrationConfig::plugin_filter)},
      {{"Type", I, T::Regex, nullptr, "Only notifications whose type matches this POSIX extended regex."},
       integration_field(&IntegrationConfig::type_filter)},
      {{"SendClear", I, T::Boolean, "true", "Send a clear event when an open outage recovers."},
       integration_field(&IntegrationConfig::send_clear)},
      {{"RenotifyInterval", I, T::Seconds, "0",
        "Page an open outage again after this long; 0 = never. Fractions round up to whole seconds."},
       integration_field(&IntegrationConfig::renotify_interval)},
      {{"DetailsURL", I, T::String, nullptr,
        "Link put in the payload's `details_url`; `$host` and the other payload macros are replaced, "
        "percent-encoded."},
       integration_field(&IntegrationConfig::details_url),
       Shown::Url},
      {{"Template", I, T::Path, nullptr,
        "File with a raw JSON payload with `$macros`, used instead of the built-in one; checked at start-up."},
       template_field(&IntegrationConfig::outage_template)},
      {{"ClearTemplate", I, T::Path, "Template",
        "File with the raw JSON payload of clear events; unset: the same as `Template`."},
       template_field(&IntegrationConfig::clear_template)},
      {{"Header", I, T::StringList, nullptr, "Extra request header `\"Name: value\"`; repeatable. Values are never logged."},
       [](Draft& d, Value& v) {
         for (const auto& h : std::get<std::vector<std::string>>(v)) check_header(h);
         assign(d.ic().headers, v);
       },
       Shown::Header},
      {{"Timeout", I, T::Seconds, "10",
        "Limit of one request, and of the wait for requests in flight at shutdown; more than 0, fractions "
        "allowed."},
       integration_field(&IntegrationConfig::timeout),
       Shown::Plain,
       {0, 1e6, true}},
      {{"VerifyPeer", I, T::Boolean, "true", "Verify the server's TLS certificate; `false` logs a warning."},
       tls_check(&IntegrationConfig::verify_peer,
                 "TLS certificate verification is off: anyone on the path can pose as xMatters")},
      {{"VerifyHost", I, T::Boolean, "true",
        "Check that the certificate names the URL's host; `false` logs a warning."},
       tls_check(&IntegrationConfig::verify_host,
                 "TLS host name verification is off: any valid certificate is accepted for any host")},
      {{"CACert", I, T::Path, nullptr, "CA bundle file to verify the server with. Unset: the system's bundle."},
       integration_field(&IntegrationConfig::ca_cert)},
      {{"ClientCert", I, T::Path, nullptr, "Client certificate file (PEM) for TLS; needs `ClientKey`."},
       integration_field(&IntegrationConfig::client_cert)},
      {{"ClientKey", I, T::Path, nullptr, "Private key file (PEM) of `ClientCert`."},
       integration_field(&IntegrationConfig::client_key)},
      {{"Proxy", I, T::String, nullptr,
        "Proxy URL (`http`, `https`, `socks4`, `socks4a`, `socks5` or `socks5h`; `http` when no scheme is given); "
        "`\"\"` = no proxy, not even from the environment. Unset: libcurl's environment variables apply."},
       [](Draft& d, Value& v) {
         const std::string& proxy = std::get<std::string>(v);
         if (!proxy.empty()) {
           const UrlParts parts = checked_url(proxy, "http");
           static const std::set<std::string> kSchemes = {"http", "https", "socks4", "socks4a", "socks5", "socks5h"};
           if (kSchemes.count(parts.scheme) == 0)
             throw Invalid("only http, https, socks4, socks4a, socks5 and socks5h proxies are accepted");
         }
         assign(d.ic().proxy, v);
       },
       Shown::Url},
      {{"Connections", I, T::Integer, "4", "Parallel kept-alive connections to this integration, 1 to 64."},
       integration_field(&IntegrationConfig::connections),
       Shown::Plain,
       {1, 64}},
      {{"RetryMaxAge", I, T::Seconds, "86400",
        "Seconds after which an undeliverable event is dead-lettered. Fractions round up."},
       integration_field(&IntegrationConfig::retry_max_age)},
      {{"GroupBy", I, T::String, "value_list",
        "What one outage is: `value_list` (one per value list) or `host` (one per host; more failing value lists "
        "join it without a page)."},
       [](Draft& d, Value& v) {
         const std::string s = ascii_lower(std::get<std::string>(v));
         if (s == "value_list")
           d.ic().group_by = GroupBy::ValueList;
         else if (s == "host")
           d.ic().group_by = GroupBy::Host;
         else
           throw Invalid("expects \"value_list\" or \"host\"");
       }},
      {{"FloodLimit", I, T::Integer, "4",
        "Outage events, and clear events, sent per minute at most; outages beyond it are folded into one flood "
        "outage, clears wait. 4 is xMatters' default Alert Rate Filter; 0 = no limit."},
       integration_field(&IntegrationConfig::flood_limit),
       Shown::Plain,
       {0, 100000}},
      {{"Host", M, T::Regex, nullptr,
        "Only outages whose host matches this POSIX extended regex; all filters given must match."},
       maintenance_field(&MaintenanceConfig::host_filter)},
      {{"Plugin", M, T::Regex, nullptr, "Only outages whose plugin matches this POSIX extended regex."},
       maintenance_field(&MaintenanceConfig::plugin_filter)},
      {{"Type", M, T::Regex, nullptr, "Only outages whose type matches this POSIX extended regex."},
       maintenance_field(&MaintenanceConfig::type_filter)},
      {{"Weekdays", M, T::String, "sun-sat",
        "Days the window starts on: names or ranges, comma-separated (`\"mon-fri\"`, `\"sat,sun\"`)."},
       [](Draft& d, Value& v) { d.mc().weekdays = parse_weekdays(std::get<std::string>(v)); }},
      {{"Times", M, T::StringList, "00:00-24:00",
        "Times of day `\"hh:mm-hh:mm\"` in `TimeZone`, repeatable; an end at or before the start is on the next "
        "day."},
       [](Draft& d, Value& v) {
         for (const auto& text : std::get<std::vector<std::string>>(v)) d.mc().times.push_back(parse_time_range(text));
       }},
      {{"TimeZone", M, T::String, nullptr,
        "IANA time zone of `Times` and `Weekdays` (`\"Europe/Berlin\"`), from the system's tzdata. Unset: the "
        "system's."},
       [](Draft& d, Value& v) { d.mc().time_zone = TimeZone::load(std::get<std::string>(v)); }},
      {{"Integration", M, T::StringList, nullptr,
        "Integrations whose outages the window holds back, repeatable. Unset: every integration."},
       maintenance_field(&MaintenanceConfig::integrations)},
  };
  return table;
}

const Rule* find_rule(std::string_view name, OptionScope scope) {
  const Rule* other = nullptr;
  for (const auto& r : options::rules()) {
    if (!iequals(r.spec.name, name)) continue;
    if (r.spec.scope == scope) return &r;
    if (!other) other = &r;
  }
  return other;
}

}  // namespace options

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> out;
    for (const auto& r : options::rules()) out.push_back(r.spec);
    return out;
  }();
  return specs;
}

std::string render_option_docs() {
  // A '|' inside a cell would end it, even inside a code span.
  const auto cell = [](std::string_view text) {
    std::string out;
    for (const char c : text) {
      if (c == '|') out += '\\';
      out += c;
    }
    return out;
  };
  std::string out =
      "\n"
      "<!-- Generated from option_table() in src/core/config/option_table.cc; tests/test_config checks it. -->\n"
      "\n"
      "Options of `<Plugin xmatters>` (scope *plugin*), of each `<Integration \"name\">` block in it\n"
      "(scope *integration*) and of each `<Maintenance \"name\">` block in it (scope *maintenance*). Option\n"
      "names are case-insensitive. Values are typed as collectd reads them: strings in quotes; numbers and\n"
      "`true`/`false` without. A value of the wrong type or count, an unknown option, or an option other\n"
      "than `Target`, `Header`, `Times` and `Integration` given twice in a block is an error.\n"
      "Any error stops the plugin from starting, with one `ERROR` line that names the option, the\n"
      "integration and the value (passwords, header values and URL query values shown as `***`). Files\n"
      "must be readable when the configuration is read; `PasswordFile` and templates are read then (1 MiB\n"
      "at most). URLs (`OutageURL`, `ClearURL`, `Proxy`) are checked with libcurl's own parser, the one the\n"
      "requests use: a URL it refuses is an error, shown as `\"***\"` (a `/`, `#`, `?` or `@` in a user name\n"
      "or password must be percent-encoded). A `WARNING` at start-up, not an error: plain `http://` to a host\n"
      "other than loopback, `VerifyPeer false`, `VerifyHost false`, a password without `User`, an empty\n"
      "password file, a password file readable by group or others.\n"
      "\n"
      "| Option | Scope | Type | Default | Description |\n"
      "| --- | --- | --- | --- | --- |\n";
  for (const auto& spec : option_table()) {
    std::string default_cell = spec.type == OptionType::Block ? "—" : "unset";
    if (spec.default_text) default_cell = "`" + std::string(spec.default_text) + "`";
    out += "| `" + cell(spec.name) + "` | ";
    out += spec.scope == OptionScope::Plugin ? "plugin" : spec.scope == OptionScope::Integration ? "integration" : "maintenance";
    out += " | " + cell(options::type_doc(spec.type)) + " | " + cell(default_cell) + " | " + cell(spec.description) + " |\n";
  }
  return out;
}

}  // namespace xmatters
