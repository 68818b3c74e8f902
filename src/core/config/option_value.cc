// Values checked by type, and options and values as the ERROR lines show
// them (collectd-xmatters(5), OPTIONS): never a secret.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <memory>
#include <system_error>

#include "config/option_rule.h"
#include "util/text.h"
#include "util/url.h"

namespace xmatters {
namespace options {
namespace {

using T = OptionType;

std::string format_number(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  return buf;
}

std::string errno_text(int err) { return std::system_category().message(err); }

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

bool is_loopback_host(std::string host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  host = ascii_lower(host);
  if (!host.empty() && host.back() == '.') host.pop_back();
  if (host == "localhost" || (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0))
    return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
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

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

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

// "Option "value" ...", as the message names an option and its values.
std::string show_option(const char* name, const ConfigNode& node, Shown shown) {
  std::string out = name;
  for (const auto& v : node.values) out += " " + show_value(v, shown);
  return out;
}

std::string integration_prefix(const std::string& name) { return "Integration " + quote(name) + ": "; }
std::string maintenance_prefix(const std::string& name) { return "Maintenance " + quote(name) + ": "; }

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

// libcurl's own parser (the one the requests use) decides what a URL is, so
// that a URL accepted here is one libcurl can send. Its reasons name no part
// of the URL.
UrlParts checked_url(const std::string& url, const char* default_scheme) {
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
      const std::string s = ascii_lower(one_string(node));
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
      if (ascii_lower(parts.host) == "company.xmatters.com")
        throw Invalid("is the example's placeholder (COMPANY.xmatters.com): set the URL of your xMatters inbound integration");
      if (parts.scheme == "http" && !is_loopback_host(parts.host))
        d.warn("plain http:// to a host other than loopback: events and credentials travel unencrypted");
      return url;
    }
    case T::Block: break;
  }
  throw Invalid("is a block: <" + std::string(rule.spec.name) + " \"name\">");
}

}  // namespace options
}  // namespace xmatters
