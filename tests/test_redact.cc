// What the plugin shows of its secrets (collectd-xmatters(5) SECURITY): URLs redacted as
// libcurl parses them, and the Scrubber over replies that echo secrets.
#include <cstdio>
#include <string>
#include <utility>

#include "config/config.h"
#include "util/redact.h"
#include "testing.h"
#include "util/url.h"

using namespace xmatters;

namespace {

// --- redact_url ------------------------------------------------------------------------------

void test_redact_url() {
  const std::pair<const char*, const char*> cases[] = {
      {"https://h/p?apiKey=K&a=b", "https://h/p?apiKey=***&a=***"},
      {"https://acme.xmatters.com/api/integration/1/functions/UUID/triggers",
       "https://acme.xmatters.com/api/integration/1/functions/UUID/triggers"},
      // userinfo: the user stays, the password is masked, whatever it holds
      {"https://user:pw@h:8443/p?x=1", "https://user:***@h:8443/p?x=***"},
      {"https://user@h", "https://user@h/"},
      {"https://u%40corp:p%2Fw%23d@h/p", "https://u%40corp:***@h/p"},
      {"https://user:@h/p", "https://user:@h/p"},
      // query values and fragments
      {"https://h/p?a=1#frag", "https://h/p?a=***#***"},
      {"https://h/p#x=1", "https://h/p#x=***"},
      {"https://h/p?a=&b=2", "https://h/p?a=&b=***"},
      {"https://h/p?a=1;b=2", "https://h/p?a=***;b=***"},
      {"https://h/p?a=1&&b=2&", "https://h/p?a=***&&b=***&"},
      {"https://h/p?token", "https://h/p?***"},
      {"https://h/p?", "https://h/p"},
      {"https://h?apiKey=KEY123", "https://h/?apiKey=***"},
      {"https://h/p@x?a=1", "https://h/p@x?a=***"},
      {"https://h/p?next=https://u:p@x/?k=v", "https://h/p?next=***"},
      {"HTTPS://H/P?apiKey=x=y", "https://H/P?apiKey=***"},
      // IPv6 hosts
      {"https://[::1]:8443/p?apiKey=K", "https://[::1]:8443/p?apiKey=***"},
      {"http://u:pw@[fe80::1%25eth0]/x", "http://u:***@[fe80::1%25eth0]/x"},
      // proxies, with and without a scheme
      {"user:pw@proxy:3128", "user:***@proxy:3128/"},
      {"http://proxy:3128", "http://proxy:3128/"},
      {"socks5h://u:pw@proxy:1080", "socks5h://u:***@proxy:1080/"},
      // malformed: nothing can be told apart from a secret
      {"https://admin:PASSW0RD/X@host/p?apiKey=K", "***"},
      {"https://admin:PA#SS@host/", "***"},
      {"https://[::1/p?apiKey=K", "***"},
      {"https://h/a b?apiKey=K", "***"},
      {"https://h:99999/?apiKey=K", "***"},
      {"", ""},
  };
  for (const auto& [in, expected] : cases) {
    const std::string out = redact_url(in);
    CU_ASSERT_EQUAL(out, expected);
    if (out != expected) std::fprintf(stderr, "\n  redact_url(%s) = %s, expected %s\n", in, out.c_str(), expected);
  }
}

void test_parse_url() {
  const UrlParts p = parse_url("HTTPS://u%40corp:p%2Fw@[::1]:8443/p?apiKey=K%2By&recipients=a,b&flag#f=1");
  CU_ASSERT_EQUAL(p.scheme, "https");
  CU_ASSERT_EQUAL(p.host, "[::1]");
  CU_ASSERT_EQUAL(p.user, "u@corp");
  CU_ASSERT_EQUAL(p.password, "p/w");
  CU_ASSERT_EQUAL(p.query_values.size(), 3u);
  if (p.query_values.size() == 3) {
    CU_ASSERT_EQUAL(p.query_values[0], "K+y");
    CU_ASSERT_EQUAL(p.query_values[1], "a,b");
    CU_ASSERT_EQUAL(p.query_values[2], "flag");
  }
  CU_ASSERT_EQUAL(parse_url("proxy:3128", "http").scheme, "http");
  CU_ASSERT_EQUAL(parse_url("proxy:3128", "http").host, "proxy");
  for (const char* bad : {"https://admin:PASSW0RD/X@host/p", "https://h/a b", "acme.example.com/x", "https://[::1/"}) {
    bool threw = false;
    try {
      parse_url(bad);
    } catch (const std::invalid_argument& e) {
      threw = true;
      const std::string why = e.what();
      CU_ASSERT(!why.empty() && why.find("PASSW0RD") == std::string::npos && why.find("admin") == std::string::npos);
    }
    CU_ASSERT(threw);
  }
}

// --- Scrubber ---------------------------------------------------------------------------------

IntegrationConfig integration() {
  IntegrationConfig c;
  c.name = "ops";
  c.outage_url = "https://u:UrlPass@h.example/p?apiKey=K3y%2Fx&recipients=a,b";
  c.clear_url = "https://h.example/clear?apiKey=ClearKey9";
  c.password = "Pa55word";
  c.proxy = "http://pu:ProxyPw1@proxy:3128";
  c.headers = {"X-Api-Key: HdrKey1", "X-Sig:  sig/with\"quote  ", "Authorization: Bearer TOKEN-abc-123",
               "X-Flag: 1"};
  return c;
}

void test_scrubber_masks_every_secret() {
  const Scrubber s(integration());
  // URL query values raw and decoded, URL passwords, the password, every
  // Header value whatever its name, a bearer token alone.
  CU_ASSERT_EQUAL(s.scrub("K3y%2Fx K3y/x ClearKey9 UrlPass ProxyPw1 Pa55word HdrKey1 sig/with\"quote TOKEN-abc-123"),
                  "*** *** *** *** *** *** *** *** ***");
  CU_ASSERT_EQUAL(s.scrub("Bearer TOKEN-abc-123"), "***");
  CU_ASSERT_EQUAL(s.scrub("token TOKEN-abc-123 is invalid"), "token *** is invalid");
  // Values too short to be secrets stay: masking every "1" and "a,b" would
  // garble the reply and protect nothing.
  CU_ASSERT_EQUAL(s.scrub("error 1: a,b"), "error 1: a,b");
  CU_ASSERT_EQUAL(s.scrub(""), "");
}

void test_scrubber_masks_encoded_echoes() {
  const Scrubber s(integration());
  // A JSON reply escapes '"' and perhaps '/'; a URL echo percent-encodes.
  CU_ASSERT_EQUAL(s.scrub("{\"sig\":\"sig/with\\\"quote\"}"), "{\"sig\":\"***\"}");
  CU_ASSERT_EQUAL(s.scrub("{\"sig\":\"sig\\/with\\\"quote\"}"), "{\"sig\":\"***\"}");
  CU_ASSERT_EQUAL(s.scrub("{\"k\":\"K3y\\/x\"}"), "{\"k\":\"***\"}");
  CU_ASSERT_EQUAL(s.scrub("GET /?sig=sig%2Fwith%22quote"), "GET /?sig=***");
}

void test_scrubber_masks_basic_auth() {
  IntegrationConfig c = integration();
  c.user = "panopta";
  c.password = "s3cretpw";
  const Scrubber s(c);
  // base64("panopta:s3cretpw"), and of the URL's own u:UrlPass.
  CU_ASSERT_EQUAL(s.scrub("Basic cGFub3B0YTpzM2NyZXRwdw== / dTpVcmxQYXNz / s3cretpw"), "Basic *** / *** / ***");
}

void test_scrubber_without_secrets() {
  IntegrationConfig c;
  c.outage_url = c.clear_url = "https://h.example/p";
  const Scrubber s(c);
  const std::string text = "{\"error\":\"bad request\",\"requestId\":\"abc\"}";
  CU_ASSERT_EQUAL(s.scrub(text), text);
}

}  // namespace

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {
                         {"urls",
                          {
                              {"redact_url", test_redact_url},
                              {"parse_url", test_parse_url},
                          }},
                         {"scrubber",
                          {
                              {"masks_every_secret", test_scrubber_masks_every_secret},
                              {"masks_encoded_echoes", test_scrubber_masks_encoded_echoes},
                              {"masks_basic_auth", test_scrubber_masks_basic_auth},
                              {"without_secrets", test_scrubber_without_secrets},
                          }},
                     });
}
