#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <system_error>
#include <utility>
#include <variant>

#include "outage.h"
#include "payload.h"
#include "redact.h"
#include "text.h"

namespace xmatters {

// --- ConfigValue ---------------------------------------------------------------

ConfigValue ConfigValue::of(std::string s) {
  ConfigValue v;
  v.type = Type::String;
  v.string = std::move(s);
  return v;
}

ConfigValue ConfigValue::of(double d) {
  ConfigValue v;
  v.type = Type::Number;
  v.number = d;
  return v;
}

ConfigValue ConfigValue::of(bool b) {
  ConfigValue v;
  v.type = Type::Boolean;
  v.boolean = b;
  return v;
}

// --- Regex -----------------------------------------------------------------------

// Owns the compiled pattern; regfree runs exactly once, when the last Regex
// sharing it goes. glibc's regexec locks internally, so one compiled pattern
// may be used from every collectd thread at once.
// glibc compiles a repetition by copying what it repeats ("a+" as "aa*",
// "a{3}" as "aaa"), so repetitions of repetitions ("a++++...", "((a+)+)+")
// take memory exponential in their number: 200 bytes of pattern took 2 GB
// (fuzz_config). The copies are counted before regcomp and a pattern that
// would need more than kMaxCopies is refused.
constexpr double kMaxCopies = 2000;

void refuse_explosive_repetitions(const std::string& p) {
  struct Group {
    double total = 0;  // copies of atoms in the group so far
    double last = 0;   // those of its last atom, which a repetition repeats
  };
  std::vector<Group> groups(1);
  bool after_repetition = false;  // POSIX leaves "a++", "a*{2}" undefined; glibc's matcher slows down on them
  const auto atom = [&](double copies) {
    groups.back().total += copies;
    groups.back().last = copies;
  };
  const auto repeat = [&](double times) {
    Group& g = groups.back();
    g.total += g.last * (times - 1);
    g.last *= times;
  };
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\') {
      ++i;
      atom(1);
    } else if (c == '[') {  // a bracket expression is one atom; "]" first is literal
      std::size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') ++j;
      i = j;
      atom(1);
    } else if (c == '(') {
      groups.emplace_back();
    } else if (c == ')' && groups.size() > 1) {
      const double copies = groups.back().total;
      groups.pop_back();
      atom(copies);
    } else if (c == '|') {
      groups.back().last = 0;
    } else if (c == '+') {
      repeat(2);
    } else if (c == '{') {
      const std::size_t end = p.find('}', i);
      if (end == std::string::npos) {
        atom(1);
        continue;
      }
      const std::string bounds = p.substr(i + 1, end - i - 1);
      const std::size_t comma = bounds.find(',');
      const double low = std::atof(bounds.substr(0, comma).c_str());
      const double high = comma == std::string::npos ? low : comma + 1 < bounds.size() ? std::atof(bounds.c_str() + comma + 1) : low + 1;
      repeat(std::max(1.0, std::max(low, high)));
      i = end;
    } else if (c != '*' && c != '?') {
      atom(1);
    }
    const bool repetition = c == '*' || c == '?' || c == '+' || (c == '{' && p[i] == '}');
    if (repetition && after_repetition)
      throw std::invalid_argument("a repetition directly after a repetition (undefined in POSIX extended regexes)");
    after_repetition = repetition;
    if (groups.back().total > kMaxCopies)
      throw std::invalid_argument("its repetitions of repetitions would compile to more than " +
                                  std::to_string(static_cast<long>(kMaxCopies)) + " copies");
  }
}

struct Regex::Compiled {
  regex_t re;

  explicit Compiled(const std::string& pattern) {
    refuse_explosive_repetitions(pattern);
    const int rc = regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      std::string message(regerror(rc, &re, nullptr, 0), '\0');
      regerror(rc, &re, message.data(), message.size());
      message.resize(message.size() - 1);  // regerror counts the terminating NUL
      throw std::invalid_argument(message);
    }
  }
  ~Compiled() { regfree(&re); }
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;
};

Regex::Regex(const std::string& pattern) : pattern_(pattern), compiled_(std::make_shared<const Compiled>(pattern)) {}

bool Regex::matches(const std::string& text) const {
  return regexec(&compiled_->re, text.c_str(), 0, nullptr, 0) == 0;
}

bool IntegrationConfig::matches(const Notification& n) const {
  return (!host_filter || host_filter->matches(n.host)) && (!plugin_filter || plugin_filter->matches(n.plugin)) &&
         (!type_filter || type_filter->matches(n.type));
}

WindowSchedule MaintenanceConfig::schedule() const {
  return WindowSchedule(weekdays, times, time_zone.value_or(TimeZone::fixed(0, "UTC")));
}

bool MaintenanceConfig::matches(const std::string& integration, const OutageKey& key) const {
  if (!integrations.empty() && std::find(integrations.begin(), integrations.end(), integration) == integrations.end())
    return false;
  return (!host_filter || host_filter->matches(key.host)) && (!plugin_filter || plugin_filter->matches(key.plugin)) &&
         (!type_filter || type_filter->matches(key.type));
}

namespace {

// --- small helpers -------------------------------------------------------------------

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

// A string as collectd's config syntax writes it, kept on one line: the
// message it goes into is a single log line.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string format_number(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  return buf;
}

std::string errno_text(int err) { return std::system_category().message(err); }

// A problem with one option's value; parse_config turns it into a
// ConfigError that names the option, the integration and the value.
struct Invalid : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Opens a regular file for reading. Named pipes and devices are refused:
// reading them could block or never end.
FilePtr open_regular_file(const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) throw Invalid("cannot be read: " + errno_text(errno));
  struct stat st;
  if (::fstat(fileno(file.get()), &st) != 0) throw Invalid("cannot be read: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw Invalid("is not a regular file");
  return file;
}

// Templates and password files are small; a limit keeps a wrong path (a
// log file, say) from being slurped into memory.
constexpr std::size_t kMaxFileSize = 1 << 20;

std::string read_small_file(const std::string& path) {
  const FilePtr file = open_regular_file(path);
  std::string content;
  char buf[8192];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, file.get())) > 0) {
    content.append(buf, n);
    if (content.size() > kMaxFileSize) throw Invalid("is larger than 1 MiB");
  }
  if (std::ferror(file.get())) throw Invalid("cannot be read: " + errno_text(errno));
  return content;
}

// --- URLs ------------------------------------------------------------------------------

bool is_loopback_host(std::string host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  host = lower(host);
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host == "localhost" || (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0))
    return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

// libcurl's own parser (the one the requests use) decides what a URL is, so
// that a URL accepted here is one libcurl can send. Its reasons name no part
// of the URL.
UrlParts checked_url(const std::string& url, const char* default_scheme = "") {
  UrlParts parts;
  try {
    parts = parse_url(url, default_scheme);
  } catch (const std::invalid_argument& e) {
    std::string why = std::string("is not a URL libcurl can use (") + e.what() + ")";
    if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; }))
      why += "; spaces and control characters must be percent-encoded";
    else if (url.find('@') != std::string::npos)
      why += "; a '/', '#', '?' or '@' in a user name or password must be percent-encoded";
    throw Invalid(why);
  }
  // libcurl reads "https:///x" as the host x.
  const std::size_t sep = url.find("://");
  if (parts.host.empty() || (sep != std::string::npos && url.compare(sep, 4, ":///") == 0)) throw Invalid("has no host");
  return parts;
}

// --- headers -----------------------------------------------------------------------------

bool is_token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Header values often carry credentials: only the leading name is ever
// shown, and whatever follows it is masked, colon or not.
std::string shown_header(const std::string& header) {
  std::size_t cut = 0;
  while (cut < header.size() && (std::isalnum(static_cast<unsigned char>(header[cut])) || header[cut] == '-' ||
                                 header[cut] == '_'))
    ++cut;
  if (cut == header.size()) return header;
  return header.substr(0, cut) + (header[cut] == ':' ? ": ***" : " ***");
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

// --- the option table --------------------------------------------------------------------

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

constexpr auto P = OptionScope::Plugin;
constexpr auto I = OptionScope::Integration;
constexpr auto M = OptionScope::Maintenance;
using T = OptionType;

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
         const std::string s = lower(std::get<std::string>(v));
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

// The option of that name in scope; else one of that name in another scope
// (for the message that says where it belongs).
const Rule* find_rule(std::string_view name, OptionScope scope = OptionScope::Integration) {
  const Rule* other = nullptr;
  for (const auto& r : rules()) {
    if (!iequals(r.spec.name, name)) continue;
    if (r.spec.scope == scope) return &r;
    if (!other) other = &r;
  }
  return other;
}

// --- checking values by type ---------------------------------------------------------------

std::string show_value(const ConfigValue& v, Shown shown) {
  switch (v.type) {
    case ConfigValue::Type::Number: return shown == Shown::Secret ? "\"***\"" : format_number(v.number);
    case ConfigValue::Type::Boolean: return shown == Shown::Secret ? "\"***\"" : (v.boolean ? "true" : "false");
    case ConfigValue::Type::String: break;
  }
  switch (shown) {
    case Shown::Secret: return "\"***\"";
    case Shown::Url: return quote(redact_url(v.string));
    case Shown::Header: return quote(shown_header(v.string));
    case Shown::Plain: break;
  }
  return quote(v.string);
}

// "Option "value" ...", as the message names an option and its values.
std::string show_option(const char* name, const ConfigNode& node, Shown shown) {
  std::string out = name;
  for (const auto& v : node.values) out += " " + show_value(v, shown);
  return out;
}

std::string integration_prefix(const std::string& name) { return "Integration " + quote(name) + ": "; }
std::string maintenance_prefix(const std::string& name) { return "Maintenance " + quote(name) + ": "; }

bool all_strings(const ConfigNode& node) {
  for (const auto& v : node.values)
    if (v.type != ConfigValue::Type::String) return false;
  return true;
}

const std::string& one_string(const ConfigNode& node) {
  if (node.values.size() != 1 || node.values[0].type != ConfigValue::Type::String)
    throw Invalid("expects one string in quotes");
  return node.values[0].string;
}

double one_number(const ConfigNode& node, const Bounds& b, const char* what) {
  if (node.values.size() != 1 || node.values[0].type != ConfigValue::Type::Number)
    throw Invalid(std::string("expects ") + what);
  const double d = node.values[0].number;
  if (!std::isfinite(d)) throw Invalid(std::string("expects ") + what);
  if (b.min_exclusive ? !(d > b.min) : d < b.min)
    throw Invalid(std::string("must be ") + (b.min_exclusive ? "more than " : "at least ") + format_number(b.min));
  if (d > b.max) throw Invalid("must be at most " + format_number(b.max));
  return d;
}

// Checks the node's values against the option's type, generically.
Value convert(const Rule& rule, const ConfigNode& node, Draft& d) {
  switch (rule.spec.type) {
    case T::String:
    case T::Path: {
      const std::string& s = one_string(node);
      if (rule.spec.type == T::Path) {
        if (s.empty()) throw Invalid("expects a file name");
        open_regular_file(s);
      }
      return s;
    }
    case T::StringList:
      if (node.values.empty() || !all_strings(node)) throw Invalid("expects one or more strings in quotes");
      {
        std::vector<std::string> list;
        for (const auto& v : node.values) list.push_back(v.string);
        return list;
      }
    case T::Boolean:
      if (node.values.size() != 1 || node.values[0].type != ConfigValue::Type::Boolean)
        throw Invalid("expects true or false, without quotes");
      return node.values[0].boolean;
    case T::Integer: {
      const double n = one_number(node, rule.bounds, "a whole number");
      if (n != std::floor(n)) throw Invalid("expects a whole number");
      return static_cast<std::uint64_t>(n);
    }
    case T::Seconds: return one_number(node, rule.bounds, "a number of seconds");
    case T::Severity: {
      const std::string s = lower(one_string(node));
      if (s == "warning") return Severity::Warning;
      if (s == "failure") return Severity::Failure;
      throw Invalid("expects \"warning\" or \"failure\"");
    }
    case T::Regex: {
      const std::string& pattern = one_string(node);
      try {
        return Regex(pattern);
      } catch (const std::invalid_argument& e) {
        throw Invalid(std::string("is not a valid POSIX extended regular expression: ") + e.what());
      }
    }
    case T::Url: {
      const std::string& url = one_string(node);
      if (url.find("://") == std::string::npos) throw Invalid("only http:// and https:// URLs are accepted");
      const UrlParts parts = checked_url(url);
      if (parts.scheme != "http" && parts.scheme != "https") throw Invalid("only http:// and https:// URLs are accepted");
      // The shipped snippet's placeholder, uncommented but not filled in:
      // accepted, it would retry every page for a day against nobody.
      if (lower(parts.host) == "company.xmatters.com")
        throw Invalid("is the example's placeholder (COMPANY.xmatters.com): set the URL of your xMatters inbound integration");
      if (parts.scheme == "http" && !is_loopback_host(parts.host))
        d.warn("plain http:// to a host other than loopback: events and credentials travel unencrypted");
      return url;
    }
    case T::Block: break;
  }
  throw Invalid("is a block: <" + std::string(rule.spec.name) + " \"name\">");
}

// --- parsing ----------------------------------------------------------------------------------

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
    if (rule->spec.type == T::Block) return block(node, *rule, prefix + shown);
    if (!node.children.empty()) throw fail("is not a block");

    auto& given = integration ? integration->given : maintenance ? maintenance->given : plugin_given_;
    if (!given.emplace(rule->spec.name, &node).second && rule->spec.type != T::StringList)
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
    finish(draft);
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

  // The checks and defaults that involve several options of one integration.
  void finish(IntegrationDraft& draft) {
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
      config_.warnings.push_back(prefix + show_option(rule->spec.name, *given(name), rule->shown) +
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

  Config config_;
  std::map<std::string, const ConfigNode*> plugin_given_;
};

// --- documentation ---------------------------------------------------------------------------

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

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> out;
    for (const auto& r : rules()) out.push_back(r.spec);
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
      "<!-- Generated from option_table() in src/config.cc; tests/test_config checks it. -->\n"
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
    std::string default_cell = spec.type == T::Block ? "—" : "unset";
    if (spec.default_text) default_cell = "`" + std::string(spec.default_text) + "`";
    out += "| `" + cell(spec.name) + "` | ";
    out += spec.scope == OptionScope::Plugin ? "plugin" : spec.scope == OptionScope::Integration ? "integration" : "maintenance";
    out += " | " + cell(type_doc(spec.type)) + " | " + cell(default_cell) + " | " + cell(spec.description) + " |\n";
  }
  return out;
}

Config parse_config(const ConfigNode& plugin_block) { return Parser().parse(plugin_block); }

}  // namespace xmatters
