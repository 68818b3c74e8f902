// URL redaction (redact_url, for log lines) and the delivery's scrubbing of
// secrets (HttpClient::scrub, for errors and replies). A URL is assembled
// from drawn parts with known secrets (password, query and fragment values):
// the redacted form contains none of them. A text with the integration's
// secrets spread through drawn bytes: the scrubbed form contains none. The
// raw input is redacted as well, for the crashes.
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"
#include "fuzz_support.h"
#include "delivery/http_client.h"
#include "util/redact.h"
#include "util/url.h"

namespace {

// The lengths the corpus's inputs were found with.
std::string secret(FuzzedDataProvider& in, std::vector<std::string>& secrets) {
  return xmfuzz::secret(in, secrets, 1, 20);
}

// Drawn bytes without the delimiters that would end the part early.
std::string part(FuzzedDataProvider& in, const char* not_in, std::vector<std::string>& plain) {
  std::string s = xmfuzz::bytes(in, 24);
  std::string out;
  for (char c : s)
    if (std::string_view(not_in).find(c) == std::string_view::npos && c != '\0') out += c;
  plain.push_back(out);
  return out;
}

std::string items(FuzzedDataProvider& in, std::vector<std::string>& secrets, std::vector<std::string>& plain) {
  std::string s;
  const int n = in.ConsumeIntegralInRange<int>(1, 4);
  for (int i = 0; i < n; ++i) {
    if (i > 0) s += in.ConsumeBool() ? "&" : ";";
    s += part(in, "&;#=", plain) + "=" + secret(in, secrets);
  }
  return s;
}

void check_redact_url(FuzzedDataProvider& in) {
  std::vector<std::string> secrets, plain;
  static const char* const kSchemes[] = {"https://", "http://", "", "HTTPS://", "socks5h://"};
  std::string url = kSchemes[in.ConsumeIntegralInRange<int>(0, 4)];
  if (in.ConsumeBool()) url += part(in, ":@/?#", plain) + ":" + secret(in, secrets) + "@";
  url += part(in, "@/?#", plain);
  if (in.ConsumeBool()) url += "/" + part(in, "?#", plain);
  if (in.ConsumeBool()) url += "?" + items(in, secrets, plain);
  if (in.ConsumeBool()) url += "#" + items(in, secrets, plain);
  const std::string shown = xmatters::redact_url(url);
  for (const auto& s : secrets) {
    bool elsewhere = false;
    for (const auto& p : plain) elsewhere = elsewhere || p.find(s) != std::string::npos;
    if (!elsewhere && shown.find(s) != std::string::npos)
      xmfuzz::fail("redact_url left a secret", url + "\n -> " + shown);
  }
}

void check_scrub(FuzzedDataProvider& in) {
  std::vector<std::string> secrets, plain;
  xmatters::IntegrationConfig ic;
  ic.name = "ops";
  ic.outage_url = "https://h.example/api/" + part(in, "?#", plain) + "?apiKey=" + secret(in, secrets);
  ic.clear_url = "https://u:" + secret(in, secrets) + "@h.example/c?a=" + secret(in, secrets) + "&b=" +
                 secret(in, secrets);
  if (in.ConsumeBool()) {
    ic.user = part(in, "", plain);
    ic.password = secret(in, secrets);
  }
  if (in.ConsumeBool()) ic.headers.push_back("Authorization: Bearer " + secret(in, secrets));
  // The configuration refuses a URL that libcurl cannot parse, so no
  // Scrubber is ever made of one.
  try {
    (void)xmatters::parse_url(ic.outage_url);
    (void)xmatters::parse_url(ic.clear_url);
  } catch (const std::invalid_argument&) {
    return;
  }
  std::string text;
  const int pieces = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < pieces; ++i)
    text += xmfuzz::bytes(in, 16) + secrets[in.ConsumeIntegralInRange<std::size_t>(0, secrets.size() - 1)];
  text += in.ConsumeRemainingBytesAsString();
  const xmatters::HttpClient client(ic);
  const std::string shown = client.scrub(text);
  // Shorter values are left alone by design (Scrubber::kMinSecret).
  for (const auto& s : secrets)
    if (s.size() >= xmatters::Scrubber::kMinSecret && shown.find(s) != std::string::npos)
      xmfuzz::fail("scrub left a secret", s + " in: " + shown);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)xmatters::redact_url(std::string(reinterpret_cast<const char*>(data), size));
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool())
    check_redact_url(in);
  else
    check_scrub(in);
  return 0;
}
