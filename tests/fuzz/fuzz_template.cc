// Template expansion and its start-up check: a template that check_template
// accepts expands to JSON for any notification (PayloadBuilder then uses it,
// not the built-in body); one it refuses gets a message, never a crash.
#include <jansson.h>

#include "fuzz_support.h"
#include "payload/payload.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string text = in.ConsumeRandomLengthString(2048);
  const std::string verdict = xmatters::check_template(text);
  if (!verdict.empty()) return 0;

  xmatters::IntegrationConfig ic;
  ic.name = "ops";
  const int targets = in.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < targets; ++i) ic.targets.push_back(xmfuzz::bytes(in, 16));
  ic.outage_template = text;
  ic.clear_template = text;
  const auto type = in.ConsumeBool() ? xmatters::EventType::Outage : xmatters::EventType::Clear;
  const xmatters::Outage outage = xmfuzz::outage(in);
  const xmatters::Notification n = xmfuzz::notification(in);
  const xmatters::Transition t{type, n, outage};
  const std::string event_id = "c877b1d5-5666-462f-94ee-0a70b2620b8a";
  const std::string body = xmatters::PayloadBuilder(ic).build(t, event_id);

  json_error_t error;
  json_t* j = json_loadb(body.data(), body.size(), JSON_ALLOW_NUL, &error);
  if (j == nullptr) xmfuzz::fail("an accepted template's body is not JSON", text + "\n---\n" + body);
  json_decref(j);
  // The builder falls back to the built-in body when an expansion is not
  // JSON; for an accepted template that would be check_template's miss. A
  // template text that is itself that exact body is not a fuzzer's find.
  xmatters::IntegrationConfig plain = ic;
  plain.outage_template.reset();
  plain.clear_template.reset();
  const std::string builtin = xmatters::PayloadBuilder(plain).build(t, event_id);
  if (body == builtin && text != builtin)
    xmfuzz::fail("an accepted template expanded to something that is not JSON", text);
  return 0;
}
