// Notification -> payload: whatever bytes collectd hands over, the built-in
// body is a JSON object whose outage_id and event_id are the plugin's own.
#include <jansson.h>

#include "fuzz_support.h"
#include "payload/payload.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  xmatters::IntegrationConfig ic;
  ic.name = "ops";
  const int targets = in.ConsumeIntegralInRange<int>(0, 3);
  for (int i = 0; i < targets; ++i) ic.targets.push_back(xmfuzz::bytes(in, 16));
  if (in.ConsumeBool()) ic.details_url = xmfuzz::bytes(in, 128);
  const auto type = in.ConsumeBool() ? xmatters::EventType::Outage : xmatters::EventType::Clear;
  const xmatters::Outage outage = xmfuzz::outage(in);
  const xmatters::Notification n = xmfuzz::notification(in);

  const std::string event_id = "c877b1d5-5666-462f-94ee-0a70b2620b8a";
  const std::string body = xmatters::PayloadBuilder(ic).build(xmatters::Transition{type, n, outage}, event_id);

  json_error_t error;
  json_t* j = json_loadb(body.data(), body.size(), JSON_ALLOW_NUL, &error);
  if (j == nullptr) xmfuzz::fail("the body is not JSON", std::string(error.text) + "\n" + body);
  const json_t* oid = json_object_get(j, "outage_id");
  const json_t* eid = json_object_get(j, "event_id");
  const bool ok = json_is_object(j) && json_is_string(oid) && json_string_value(oid) == outage.id &&
                  json_is_string(eid) && json_string_value(eid) == event_id;
  json_decref(j);
  if (!ok) xmfuzz::fail("the body is not an object with the outage's outage_id and event_id", body);
  return 0;
}
