#include "util/redact.h"

#include <jansson.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "config/config.h"
#include "util/resources.h"
#include "util/text.h"

namespace xmatters {
namespace {

std::string base64(const std::string& in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<unsigned char>(in[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 0x3f] : '=';
  }
  return out;
}

// s as the inside of a JSON string, as a reply's encoder may write it.
std::string json_escaped(const std::string& s, std::size_t flags) {
  const Json j(json_stringn(s.data(), s.size()));
  if (!j) return s;  // not UTF-8: no JSON encoder writes it
  const DumpedJson text(json_dumps(j.get(), JSON_ENCODE_ANY | flags));
  if (!text) throw std::bad_alloc();
  const std::string quoted = text.get();
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace

Scrubber::Scrubber(const IntegrationConfig& c) {
  if (c.password) add(*c.password);
  // What the Authorization header of basic auth carries.
  if (c.user && c.password) add(base64(*c.user + ":" + *c.password));
  // A proxy may be given without its scheme.
  std::vector<std::pair<const std::string*, const char*>> urls = {{&c.outage_url, ""}, {&c.clear_url, ""}};
  if (c.proxy && !c.proxy->empty()) urls.emplace_back(&*c.proxy, "http");
  for (const auto& [url, default_scheme] : urls) {
    UrlParts parts;
    try {
      parts = parse_url(*url, default_scheme);
    } catch (const std::invalid_argument&) {
      continue;  // parse_config refuses it; libcurl cannot send it either
    }
    add(parts.password);
    if (!parts.user.empty() && !parts.password.empty()) add(base64(parts.user + ":" + parts.password));
    for (const auto& v : parts.query_values) add(v);
  }
  for (const auto& h : c.headers) {
    const std::size_t colon = h.find(':');
    const std::size_t v = colon == std::string::npos ? colon : h.find_first_not_of(" \t", colon + 1);
    if (v == std::string::npos) continue;
    const std::string value = h.substr(v, h.find_last_not_of(" \t") + 1 - v);
    add(value);
    // "Bearer TOKEN": a reply that echoes the token alone must not show it.
    const std::size_t space = value.find_first_of(" \t");
    if (space != std::string::npos) add(value.substr(value.find_first_not_of(" \t", space)));
  }
  std::sort(secrets_.begin(), secrets_.end());
  secrets_.erase(std::unique(secrets_.begin(), secrets_.end()), secrets_.end());
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void Scrubber::add(const std::string& secret) {
  if (secret.size() < kMinSecret) return;
  secrets_.push_back(secret);
  secrets_.push_back(percent_encoded(secret));
  secrets_.push_back(json_escaped(secret, 0));
  secrets_.push_back(json_escaped(secret, JSON_ESCAPE_SLASH));
  secrets_.push_back(json_escaped(secret, JSON_ESCAPE_SLASH | JSON_ENSURE_ASCII));
}

std::string Scrubber::scrub(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_)
    for (std::size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 3))
      out.replace(at, secret.size(), "***");
  return out;
}

}  // namespace xmatters
