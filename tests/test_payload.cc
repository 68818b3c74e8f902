// Panopta-format payloads (collectd-xmatters(5) PAYLOAD): golden bodies for collectd's real
// notification shapes, property types, target and details_url, hostile
// bytes, UTF-8 repair, RFC 3339 times, and Template / ClearTemplate.
#include <array>
#include <charconv>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "util/json_writer.h"
#include "outage/outage_tracker.h"
#include "payload/payload.h"
#include "testing.h"
#include "util/time_format.h"

using namespace xmatters;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using xmtest::JsonPtr;
using xmtest::parse_json;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// 2026-11-28T11:47:45Z
const TimePoint T0 = TimePoint(seconds(1795866465));

const std::string kFffd = "\xEF\xBF\xBD";

Notification threshold_note(Severity sev, double value, double wmin, double wmax, double fmin, double fmax) {
  Notification n;
  n.severity = sev;
  n.time = T0 + milliseconds(250);
  n.host = "db1";
  n.plugin = "df";
  n.plugin_instance = "root";
  n.type = "percent_bytes";
  n.type_instance = "used";
  n.message = "Host db1, plugin df (instance root) type percent_bytes (instance used): Data source \"value\" is "
              "currently 95.000000. That is above the failure threshold of 90.000000.";
  n.meta = {{"DataSource", std::string("value")}, {"CurrentValue", value}, {"WarningMin", wmin},
            {"WarningMax", wmax},                 {"FailureMin", fmin},    {"FailureMax", fmax}};
  return n;
}

Outage outage_at(TimePoint start, Severity sev = Severity::Failure) {
  Outage o;
  o.id = "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c";
  o.severity = sev;
  o.start = start;
  o.last_page = start;
  return o;
}

IntegrationConfig integration() {
  IntegrationConfig ic;
  ic.name = "ops";
  ic.outage_url = "https://acme.xmatters.com/api/integration/1/functions/u/triggers";
  ic.clear_url = ic.outage_url;
  ic.flood_limit = 0;  // no flood outage's fields in the worst cases, unless a test sets it
  return ic;
}

std::string build(const IntegrationConfig& ic, EventType type, const Notification& n, const Outage& o,
                  const std::string& event_id = "ev-1") {
  const PayloadBuilder builder(ic);
  return builder.build(Transition{type, n, o}, event_id);
}

JsonPtr build_json(const IntegrationConfig& ic, EventType type, const Notification& n, const Outage& o) {
  const std::string body = build(ic, type, n, o);
  JsonPtr j = parse_json(body);
  CU_ASSERT_PTR_NOT_NULL(j.get());
  if (!j) std::fprintf(stderr, "not JSON: %s\n", body.c_str());
  return j;
}

std::string str(const json_t* obj, const char* key) { return xmtest::json_string_member(obj, key); }

// The body equals the expected JSON text, compared as parsed JSON.
void assert_golden(const std::string& body, const std::string& expected) {
  JsonPtr got = parse_json(body);
  JsonPtr want = parse_json(expected);
  CU_ASSERT_PTR_NOT_NULL_FATAL(want.get());
  CU_ASSERT_PTR_NOT_NULL_FATAL(got.get());
  const bool equal = json_equal(got.get(), want.get());
  CU_ASSERT(equal);
  if (!equal) std::fprintf(stderr, "\n got:  %s\n want: %s\n", body.c_str(), expected.c_str());
}

// --- golden bodies -------------------------------------------------------------

void test_golden_threshold_failure() {
  const Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  const std::string body = build(integration(), EventType::Outage, n, outage_at(n.time));
  assert_golden(body, R"({
    "outage_id": "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c", "event_id": "ev-1", "event_type": "outage",
    "severity": "critical", "name": "db1", "fqdn": "db1",
    "description": "Host db1, plugin df (instance root) type percent_bytes (instance used): Data source \"value\" is currently 95.000000. That is above the failure threshold of 90.000000.",
    "services": "df-root/percent_bytes-used", "items": "value",
    "reasons": "value 95 is above the failure threshold 90",
    "timestamp": "2026-11-28T11:47:45Z", "start_time": "2026-11-28T11:47:45Z", "duration": "0",
    "collectd": {"host": "db1", "plugin": "df", "plugin_instance": "root", "type": "percent_bytes",
                 "type_instance": "used", "severity": "FAILURE", "time": "2026-11-28T11:47:45.250000Z",
                 "meta": {"DataSource": "value", "CurrentValue": 95.0, "WarningMin": null,
                          "WarningMax": 80.0, "FailureMin": null, "FailureMax": 90.0}}})");
  // Compact, and in the man page's order (PAYLOAD).
  CU_ASSERT(body.find('\n') == std::string::npos);
  CU_ASSERT(body.find("\": ") == std::string::npos);
  const char* order[] = {"\"outage_id\"", "\"event_id\"",  "\"event_type\"", "\"severity\"", "\"name\"",
                         "\"fqdn\"",      "\"description\"", "\"services\"", "\"items\"",    "\"reasons\"",
                         "\"timestamp\"", "\"start_time\"", "\"duration\"", "\"collectd\""};
  std::size_t last = 0;
  for (const char* key : order) {
    const std::size_t at = body.find(key);
    CU_ASSERT(at != std::string::npos && at >= last);
    last = at;
  }
}

void test_golden_warning() {
  Notification n = threshold_note(Severity::Warning, 3, 5, kNaN, 1, kNaN);
  n.plugin = "memory";
  n.plugin_instance = "";
  n.type = "memory";
  n.type_instance = "free";
  n.message = "Host db1, plugin memory type memory (instance free): Data source \"value\" is currently 3.000000. "
              "That is below the warning threshold of 5.000000.";
  const std::string body = build(integration(), EventType::Outage, n, outage_at(n.time, Severity::Warning));
  assert_golden(body, R"({
    "outage_id": "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c", "event_id": "ev-1", "event_type": "outage",
    "severity": "warning", "name": "db1", "fqdn": "db1",
    "description": "Host db1, plugin memory type memory (instance free): Data source \"value\" is currently 3.000000. That is below the warning threshold of 5.000000.",
    "services": "memory/memory-free", "items": "value",
    "reasons": "value 3 is below the warning threshold 5",
    "timestamp": "2026-11-28T11:47:45Z", "start_time": "2026-11-28T11:47:45Z", "duration": "0",
    "collectd": {"host": "db1", "plugin": "memory", "plugin_instance": "", "type": "memory",
                 "type_instance": "free", "severity": "WARNING", "time": "2026-11-28T11:47:45.250000Z",
                 "meta": {"DataSource": "value", "CurrentValue": 3.0, "WarningMin": 5.0,
                          "WarningMax": null, "FailureMin": 1.0, "FailureMax": null}}})");
}

void test_golden_clear_with_duration() {
  Notification n = threshold_note(Severity::Okay, 50, kNaN, 80, kNaN, 90);
  n.time = T0 + seconds(3725) + milliseconds(900);
  n.message = "Host db1, plugin df (instance root) type percent_bytes (instance used): All data sources are "
              "within range again. Current value of \"value\" is 50.000000.";
  // The outage had escalated to FAILURE: the clear carries the highest severity.
  const std::string body =
      build(integration(), EventType::Clear, n, outage_at(T0 + milliseconds(500), Severity::Failure), "ev-2");
  assert_golden(body, R"({
    "outage_id": "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c", "event_id": "ev-2", "event_type": "clear",
    "severity": "critical", "name": "db1", "fqdn": "db1",
    "description": "Host db1, plugin df (instance root) type percent_bytes (instance used): All data sources are within range again. Current value of \"value\" is 50.000000.",
    "services": "df-root/percent_bytes-used", "items": "value",
    "reasons": "value 50 is back within thresholds",
    "timestamp": "2026-11-28T12:49:50Z", "start_time": "2026-11-28T11:47:45Z", "duration": "3725",
    "collectd": {"host": "db1", "plugin": "df", "plugin_instance": "root", "type": "percent_bytes",
                 "type_instance": "used", "severity": "OKAY", "time": "2026-11-28T12:49:50.900000Z",
                 "meta": {"DataSource": "value", "CurrentValue": 50.0, "WarningMin": null,
                          "WarningMax": 80.0, "FailureMin": null, "FailureMax": 90.0}}})");
}

void test_golden_missing_value() {
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.host = "web3";
  n.plugin = "cpu";
  n.plugin_instance = "0";
  n.type = "cpu";
  n.type_instance = "idle";
  n.message = "web3/cpu-0/cpu-idle has not been updated for 12.345 seconds.";
  const std::string body = build(integration(), EventType::Outage, n, outage_at(T0));
  assert_golden(body, R"({
    "outage_id": "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c", "event_id": "ev-1", "event_type": "outage",
    "severity": "critical", "name": "web3", "fqdn": "web3",
    "description": "web3/cpu-0/cpu-idle has not been updated for 12.345 seconds.",
    "services": "cpu-0/cpu-idle", "items": "", "reasons": "no data for 12 s",
    "timestamp": "2026-11-28T11:47:45Z", "start_time": "2026-11-28T11:47:45Z", "duration": "0",
    "collectd": {"host": "web3", "plugin": "cpu", "plugin_instance": "0", "type": "cpu",
                 "type_instance": "idle", "severity": "FAILURE", "time": "2026-11-28T11:47:45.000000Z",
                 "meta": {}}})");
}

void test_golden_putnotif_without_type() {
  Notification n;
  n.severity = Severity::Warning;
  n.time = T0 + seconds(61);
  n.host = "app7";
  n.plugin = "myapp";
  n.message = "queue backlog growing";
  const std::string body =
      build(integration(), EventType::Outage, n, outage_at(T0, Severity::Warning), "ev-9");
  assert_golden(body, R"({
    "outage_id": "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c", "event_id": "ev-9", "event_type": "outage",
    "severity": "warning", "name": "app7", "fqdn": "app7", "description": "queue backlog growing",
    "services": "myapp", "items": "", "reasons": "queue backlog growing",
    "timestamp": "2026-11-28T11:48:46Z", "start_time": "2026-11-28T11:47:45Z", "duration": "61",
    "collectd": {"host": "app7", "plugin": "myapp", "plugin_instance": "", "type": "",
                 "type_instance": "", "severity": "WARNING", "time": "2026-11-28T11:48:46.000000Z",
                 "meta": {}}})");
}

// --- properties ----------------------------------------------------------------

void test_property_types() {
  IntegrationConfig ic = integration();
  ic.targets = {"ops-oncall"};
  ic.details_url = "https://grafana.example.com/d/host?var-host=$host";
  const Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  JsonPtr j = build_json(ic, EventType::Outage, n, outage_at(T0 - seconds(10)));
  CU_ASSERT_FATAL(j && json_is_object(j.get()));
  const char* strings[] = {"outage_id", "event_id",  "event_type", "severity", "name",       "fqdn",
                           "description", "services", "items",     "reasons",  "timestamp", "start_time",
                           "duration",  "target",    "details_url"};
  for (const char* key : strings) CU_ASSERT(json_is_string(json_object_get(j.get(), key)));
  CU_ASSERT_EQUAL(json_object_size(j.get()), 16u);
  const json_t* c = json_object_get(j.get(), "collectd");
  CU_ASSERT_FATAL(json_is_object(c));
  CU_ASSERT_EQUAL(json_object_size(c), 8u);
  for (const char* key : {"host", "plugin", "plugin_instance", "type", "type_instance", "severity", "time"})
    CU_ASSERT(json_is_string(json_object_get(c, key)));
  const json_t* meta = json_object_get(c, "meta");
  CU_ASSERT_FATAL(json_is_object(meta));
  CU_ASSERT(json_is_string(json_object_get(meta, "DataSource")));
  CU_ASSERT(json_is_real(json_object_get(meta, "CurrentValue")));
  CU_ASSERT(json_is_null(json_object_get(meta, "WarningMin")));
  CU_ASSERT_EQUAL(str(j.get(), "duration"), "10");
}

void test_target_absent_string_array() {
  const Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  IntegrationConfig ic = integration();
  JsonPtr none = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_PTR_NULL(json_object_get(none.get(), "target"));
  CU_ASSERT_PTR_NULL(json_object_get(none.get(), "details_url"));

  ic.targets = {"ops-oncall"};
  JsonPtr one = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(one.get(), "target"), "ops-oncall");

  ic.targets = {"ops-oncall", "dba-team", "x\"y"};
  JsonPtr several = build_json(ic, EventType::Clear, n, outage_at(T0));
  JsonPtr want = parse_json(R"(["ops-oncall", "dba-team", "x\"y"])");
  CU_ASSERT(json_equal(json_object_get(several.get(), "target"), want.get()));
}

void test_details_url_percent_encoding() {
  IntegrationConfig ic = integration();
  ic.details_url = "https://g.example.com/d/x?var-host=$host&svc=$services&ti=$type_instance&id=$outage_id"
                   "&unknown=$unknown&lone=$&self=$details_url&tg=$target";
  ic.targets = {"a b", "c"};
  Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  n.host = "db 1/\xC3\xBC&x=y~._-";
  n.type_instance = "\xFF";
  JsonPtr j = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(j.get(), "details_url"),
                  "https://g.example.com/d/x?var-host=db%201%2F%C3%BC%26x%3Dy~._-"
                  "&svc=df-root%2Fpercent_bytes-%EF%BF%BD&ti=%EF%BF%BD"
                  "&id=6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c&unknown=$unknown&lone=$&self=$details_url"
                  "&tg=a%20b%2Cc");
}

void test_meta_numbers_nan_inf_null() {
  Notification n;
  n.severity = Severity::Warning;
  n.time = T0;
  n.host = "h";
  n.plugin = "p";
  n.message = "m";
  n.meta = {{"nan", kNaN},
            {"inf", kInf},
            {"minus_inf", -kInf},
            {"neg", std::int64_t{-5}},
            {"big", std::uint64_t{18446744073709551615ull}},
            {"small", std::uint64_t{7}},
            {"yes", true},
            {"no", false},
            {"text", std::string("t\"x")},
            {"tenth", 0.1},
            {"third", 1.0 / 3.0},
            {"nan", 1.0}};  // a duplicate name: the first wins, as find_meta
  JsonPtr j = build_json(integration(), EventType::Outage, n, outage_at(T0));
  const json_t* meta = json_object_get(json_object_get(j.get(), "collectd"), "meta");
  CU_ASSERT_FATAL(json_is_object(meta));
  CU_ASSERT_EQUAL(json_object_size(meta), 11u);
  CU_ASSERT(json_is_null(json_object_get(meta, "nan")));
  CU_ASSERT(json_is_null(json_object_get(meta, "inf")));
  CU_ASSERT(json_is_null(json_object_get(meta, "minus_inf")));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(meta, "neg")), -5);
  CU_ASSERT(json_is_number(json_object_get(meta, "big")));
  CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(meta, "big")), 18446744073709551615.0, 1e4);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(meta, "small")), 7);
  CU_ASSERT(json_is_true(json_object_get(meta, "yes")));
  CU_ASSERT(json_is_false(json_object_get(meta, "no")));
  CU_ASSERT_EQUAL(str(meta, "text"), "t\"x");
  // Reals come back exactly, and short where they can be.
  CU_ASSERT(json_real_value(json_object_get(meta, "tenth")) == 0.1);
  CU_ASSERT(json_real_value(json_object_get(meta, "third")) == 1.0 / 3.0);
}

// Bug 6: nothing bounds a plugin's meta items; 20,000 of them, each name
// twice, cost seconds when every item was compared with the earlier ones.
// The result is checked here (the first of a name wins), the cost in the
// bench.
void test_meta_many_items_deduplicated() {
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  constexpr int kNames = 100;
  for (int pass = 0; pass < 200; ++pass)
    for (int i = 0; i < kNames; ++i) n.meta.push_back({"m" + std::to_string(i), std::int64_t{i + pass * kNames}});
  // Two names that differ only in invalid bytes are one key once sanitized.
  n.meta.push_back({"bad\xFF", std::string("first")});
  n.meta.push_back({"bad\xFE", std::string("second")});
  const std::string body = build(integration(), EventType::Outage, n, outage_at(T0));
  JsonPtr j = parse_json(body);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j.get());
  const json_t* meta = json_object_get(json_object_get(j.get(), "collectd"), "meta");
  CU_ASSERT_EQUAL(json_object_size(meta), static_cast<std::size_t>(kNames + 1));
  bool firsts = true;
  for (int i = 0; i < kNames; ++i)
    firsts = firsts && json_integer_value(json_object_get(meta, ("m" + std::to_string(i)).c_str())) == i;
  CU_ASSERT(firsts);
  CU_ASSERT_EQUAL(str(meta, ("bad" + kFffd).c_str()), "first");
  CU_ASSERT_PTR_NULL(json_object_get(json_object_get(j.get(), "collectd"), "meta_omitted"));
}

// Bug 7: the body stays within kMaxBody whatever the meta holds; what does
// not fit is counted, and the page still goes.
void test_meta_bounded_by_body_size() {
  Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  for (int i = 0; i < 20000; ++i) n.meta.push_back({"item" + std::to_string(i), std::string(100, '\x01')});
  n.meta.push_back({"huge", std::string(1 << 20, 'x')});
  std::rotate(n.meta.begin(), n.meta.end() - 1, n.meta.end());  // the huge one first
  const std::string body = build(integration(), EventType::Outage, n, outage_at(T0));
  CU_ASSERT(body.size() <= kMaxBody);
  JsonPtr j = parse_json(body);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j.get());
  CU_ASSERT_EQUAL(str(j.get(), "reasons"), "value 95 is above the failure threshold 90");
  const json_t* c = json_object_get(j.get(), "collectd");
  const json_t* meta = json_object_get(c, "meta");
  CU_ASSERT_EQUAL(str(meta, "huge").size(), 1024u);
  const json_int_t omitted = json_integer_value(json_object_get(c, "meta_omitted"));
  CU_ASSERT(omitted > 0);
  CU_ASSERT_EQUAL(json_object_size(meta) + static_cast<std::size_t>(omitted), n.meta.size());
}

// Bug 7: the start-up bound is a bound: an event with the longest, most
// escaped values collectd allows expands to no more than it says.
void test_template_worst_case_holds() {
  IntegrationConfig ic = integration();
  ic.targets = {"ops \"oncall\"", "dba"};
  ic.details_url = "https://grafana.example.com/d?host=$host&t=$target&s=$services\"";
  std::string text = "{";
  for (const char* m : {"outage_id", "event_id", "event_type", "severity", "name", "fqdn", "description",
                        "services", "items", "reasons", "timestamp", "start_time", "duration", "details_url",
                        "host", "plugin", "plugin_instance", "type", "type_instance", "current_value"})
    text += std::string("\"") + m + "\": \"$" + m + "\", ";
  text += "\"target\": $target}";
  CU_ASSERT_FATAL(check_template(text).empty());
  ic.outage_template = text;
  const std::size_t worst = template_worst_case(text, ic);

  const std::string name(128, '\x01'), message(256, '\x01');
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.host = n.plugin = n.plugin_instance = n.type = n.type_instance = name;
  n.message = message;
  n.meta = {{"DataSource", std::string(5000, '\x01')}, {"CurrentValue", -1.2345678901234567e-300}};
  Outage o = outage_at(T0 - seconds(123456789));
  o.id = std::string(64, 'a');
  const std::string body = build(ic, EventType::Outage, n, o, std::string(64, 'b'));
  CU_ASSERT_PTR_NOT_NULL(parse_json(body).get());
  CU_ASSERT(body.size() <= worst);
  // Not wildly above either: the bound is the sum of the fields' limits.
  CU_ASSERT(worst < 3 * body.size());
  if (body.size() > worst) std::fprintf(stderr, "\n  body %zu > worst case %zu\n", body.size(), worst);
}

// Issue 21 bug 9: the built-in body stays within kMaxBody with a DetailsURL
// full of macros. The issue's DetailsURL (100 $description) made a
// 76,520-byte body; the configuration refuses it now (test_config), and the
// longest one accepted, with the longest values and meta items, fits.
void test_builtin_worst_case_covers_details_url() {
  IntegrationConfig ic = integration();
  std::string url = "https://grafana.example.com/d?";
  for (int i = 0; i < 100; ++i) url += "d=$description&";
  ic.details_url = url;
  CU_ASSERT(details_url_worst_case(ic) > kDetailsUrlMax);
  // The most $description a DetailsURL may have: as many as stay within.
  url = "https://grafana.example.com/d?";
  ic.details_url = url;
  while (details_url_worst_case(ic) <= kDetailsUrlMax) {
    url += "d=$description&";
    ic.details_url = url + "d=$description&";
  }
  ic.details_url = url;
  CU_ASSERT_FATAL(details_url_worst_case(ic) <= kDetailsUrlMax);
  Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  const std::string name(128, '\x01');
  n.host = n.plugin = n.plugin_instance = n.type = n.type_instance = name;
  n.message = std::string(256, '\xff');
  for (int i = 0; i < 200; ++i) n.meta.push_back({"item" + std::to_string(i), std::string(2000, '\x01')});
  Outage o = outage_at(T0 - seconds(123456789));
  o.id = std::string(64, 'a');
  const std::string body = build(ic, EventType::Outage, n, o, std::string(64, 'b'));
  CU_ASSERT(body.size() <= kMaxBody);
  CU_ASSERT(body.size() > kDetailsUrlMax / 2);  // the DetailsURL really is long
  CU_ASSERT_PTR_NOT_NULL(parse_json(body).get());
  if (body.size() > kMaxBody) std::fprintf(stderr, "\n  body %zu > %zu\n", body.size(), kMaxBody);
}

// GroupBy host: services, items and reasons list the members (the failing
// ones on an outage event, every one on the clear), ten at most, then
// " and N more"; name and collectd describe the host and the member whose
// notification made the event.
Outage host_outage(std::size_t members, std::size_t failing) {
  Outage o = outage_at(T0);
  o.kind = OutageKind::Host;
  for (std::size_t i = 0; i < members; ++i) {
    Member m;
    m.key = OutageKey{"db1", "df", "v" + std::to_string(i), "percent_bytes", "used"};
    m.failing = i < failing;
    m.items = "value";
    m.reasons = "reason " + std::to_string(i);
    o.members.push_back(m);
  }
  return o;
}

void test_host_outage_lists_members() {
  Notification n = threshold_note(Severity::Failure, 95, NAN, 80, NAN, 90);
  n.plugin_instance = "v2";
  const Outage o = host_outage(30, 3);
  JsonPtr page = build_json(integration(), EventType::Outage, n, o);
  CU_ASSERT_FATAL(page != nullptr);
  CU_ASSERT(str(page.get(), "services") == "df-v0/percent_bytes-used, df-v1/percent_bytes-used, df-v2/percent_bytes-used");
  CU_ASSERT(str(page.get(), "items") == "value, value, value");
  CU_ASSERT(str(page.get(), "reasons") == "reason 0, reason 1, reason 2");
  CU_ASSERT(str(page.get(), "name") == "db1");
  CU_ASSERT(str(json_object_get(page.get(), "collectd"), "plugin_instance") == "v2");

  Notification okay = threshold_note(Severity::Okay, 40, NAN, 80, NAN, 90);
  JsonPtr clear = build_json(integration(), EventType::Clear, okay, host_outage(30, 0));
  CU_ASSERT_FATAL(clear != nullptr);
  std::string services, reasons;
  for (int i = 0; i < 10; ++i) {
    services += (i ? ", df-v" : "df-v") + std::to_string(i) + "/percent_bytes-used";
    reasons += (i ? ", reason " : "reason ") + std::to_string(i);
  }
  CU_ASSERT(str(clear.get(), "services") == services + " and 20 more");
  CU_ASSERT(str(clear.get(), "reasons") == reasons + " and 20 more");
  CU_ASSERT(str(clear.get(), "event_type") == "clear");
  // Exactly ten: no suffix.
  JsonPtr ten = build_json(integration(), EventType::Clear, okay, host_outage(10, 0));
  CU_ASSERT(ten && str(ten.get(), "services") == services);
}

// The start-up bound holds for a host outage's joined fields too, and
// accounts for them: a template that fits for value lists may not for hosts.
void test_template_worst_case_holds_for_host() {
  IntegrationConfig ic = integration();
  ic.group_by = GroupBy::Host;
  const std::string text = "{\"s\": \"$services\", \"i\": \"$items\", \"r\": \"$reasons\"}";
  CU_ASSERT_FATAL(check_template(text).empty());
  ic.outage_template = ic.clear_template = text;
  const std::size_t worst = template_worst_case(text, ic);
  CU_ASSERT(worst > template_worst_case(text, integration()));
  const std::string name(128, '\x01'), message(256, '\x01');
  Outage o = outage_at(T0);
  o.kind = OutageKind::Host;
  for (int i = 0; i < 30; ++i) o.members.push_back(Member{OutageKey{name, name, name, name, name}, true, {}, name, message});
  Notification n;
  n.severity = Severity::Okay;
  n.time = T0;
  const std::string body = build(ic, EventType::Clear, n, o);
  CU_ASSERT_PTR_NOT_NULL(parse_json(body).get());
  CU_ASSERT(body.size() <= worst);
  CU_ASSERT(worst < 3 * body.size());
}

// A flood outage: name, fqdn and description count its outages and hosts;
// services lists its first outages by identifier, the others counted.
void test_flood_outage_payload() {
  Outage o = host_outage(10, 10);
  o.kind = OutageKind::Flood;
  o.outages = 196;
  o.hosts = 49;
  Notification n = threshold_note(Severity::Failure, 95, NAN, 80, NAN, 90);
  JsonPtr j = build_json(integration(), EventType::Outage, n, o);
  CU_ASSERT_FATAL(j != nullptr);
  CU_ASSERT(str(j.get(), "name") == "flood: 196 outages on 49 hosts");
  CU_ASSERT(str(j.get(), "fqdn") == "flood: 196 outages on 49 hosts");
  CU_ASSERT(str(j.get(), "description") == "flood: 196 outages on 49 hosts");
  const std::string services = str(j.get(), "services");
  CU_ASSERT(services.rfind("db1/df-v0/percent_bytes-used, db1/df-v1/percent_bytes-used, ", 0) == 0);
  CU_ASSERT(services.size() > 13 && services.compare(services.size() - 13, 13, " and 186 more") == 0);
  CU_ASSERT(str(json_object_get(j.get(), "collectd"), "host") == "db1");
  o.outages = o.hosts = 1;
  o.members.resize(1);
  JsonPtr one = build_json(integration(), EventType::Clear, n, o);
  CU_ASSERT(one && str(one.get(), "name") == "flood: 1 outage on 1 host");
  CU_ASSERT(one && str(one.get(), "services") == "db1/df-v0/percent_bytes-used");
}

// The built-in body of a flood or host outage stays within 64 KiB whatever
// its members hold: ten members listed, every field of each at collectd's
// longest and made of control characters (6 bytes each once escaped), the
// longest DetailsURL accepted, and meta items up to the room left.
void test_builtin_worst_case_holds_for_members() {
  for (const OutageKind kind : {OutageKind::Host, OutageKind::Flood}) {
    IntegrationConfig ic = integration();
    ic.flood_limit = kind == OutageKind::Flood ? 4 : 0;
    if (kind == OutageKind::Host) ic.group_by = GroupBy::Host;
    std::string url = "https://grafana.example.com/d?";
    for (ic.details_url = url + "h=$host&"; details_url_worst_case(ic) <= kDetailsUrlMax;
         ic.details_url = url + "h=$host&")
      url += "h=$host&";
    ic.details_url = url;
    CU_ASSERT_FATAL(details_url_worst_case(ic) <= kDetailsUrlMax);
    const std::string name(128, '\x01');
    Outage o = host_outage(200, 200);
    o.kind = kind;
    o.id = std::string(64, 'a');
    o.outages = o.hosts = 4294967295u;
    for (auto& m : o.members) {
      m.key = OutageKey{name, name, name, name, name};
      m.items = name;
      m.reasons = std::string(256, '\x01');
    }
    Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
    n.host = n.plugin = n.plugin_instance = n.type = n.type_instance = name;
    n.message = std::string(256, '\x01');
    for (int i = 0; i < 200; ++i) n.meta.push_back({"item" + std::to_string(i), std::string(2000, '\x01')});
    const std::string body = build(ic, EventType::Outage, n, o, std::string(64, 'b'));
    CU_ASSERT(body.size() <= kMaxBody);
    CU_ASSERT_PTR_NOT_NULL(parse_json(body).get());
    if (body.size() > kMaxBody) std::fprintf(stderr, "\n  body %zu > %zu\n", body.size(), kMaxBody);
    // The list stops at kJoinedMax bytes: the rest are counted.
    const JsonPtr j = parse_json(body);
    const std::string services = j ? str(j.get(), "services") : "";
    CU_ASSERT(services.size() <= kJoinedMax + 40 && services.find(" more") != std::string::npos);
  }
}

// Members without a data source are not joined as empty strings: a flood
// or host outage's items list only the ones known; none known, "".
void test_joined_fields_skip_empty_values() {
  Outage o = host_outage(10, 10);
  o.kind = OutageKind::Flood;
  o.outages = 49;
  o.hosts = 49;
  for (std::size_t i = 0; i < o.members.size(); ++i) o.members[i].items = i == 3 ? "rx" : "";
  Notification n = threshold_note(Severity::Failure, 95, NAN, 80, NAN, 90);
  JsonPtr j = build_json(integration(), EventType::Outage, n, o);
  CU_ASSERT_FATAL(j != nullptr);
  CU_ASSERT_EQUAL(str(j.get(), "items"), "rx and 39 more");
  for (auto& m : o.members) m.items.clear();
  j = build_json(integration(), EventType::Outage, n, o);
  CU_ASSERT_FATAL(j != nullptr);
  CU_ASSERT_EQUAL(str(j.get(), "items"), "");
  Outage h = host_outage(3, 3);
  h.members[1].items.clear();
  j = build_json(integration(), EventType::Outage, n, h);
  CU_ASSERT_FATAL(j != nullptr);
  CU_ASSERT_EQUAL(str(j.get(), "items"), "value, value");
}

// The start-up bound holds for a flood outage's payload too.
void test_template_worst_case_holds_for_flood() {
  IntegrationConfig ic = integration();
  ic.flood_limit = 4;
  const std::string text =
      "{\"n\": \"$name\", \"f\": \"$fqdn\", \"d\": \"$description\", \"s\": \"$services\", "
      "\"i\": \"$items\", \"r\": \"$reasons\"}";
  CU_ASSERT_FATAL(check_template(text).empty());
  ic.outage_template = ic.clear_template = text;
  const std::size_t worst = template_worst_case(text, ic);
  const std::string name(128, '\x01'), message(256, '\x01');
  Outage o = outage_at(T0);
  o.kind = OutageKind::Flood;
  o.outages = o.hosts = 4294967295u;
  for (std::size_t i = 0; i < kFloodListed; ++i)
    o.members.push_back(Member{OutageKey{name, name, name, name, name}, true, {}, name, message});
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.message = message;
  const std::string body = build(ic, EventType::Outage, n, o);
  CU_ASSERT_PTR_NOT_NULL(parse_json(body).get());
  CU_ASSERT(body.size() <= worst);
  if (body.size() > worst) std::fprintf(stderr, "\n  body %zu > worst case %zu\n", body.size(), worst);
}

void test_big_unsigned_meta_exact() {
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.meta = {{"big", std::uint64_t{18446744073709551615ull}}, {"max_signed", std::uint64_t{9223372036854775807ull}}};
  JsonPtr j = build_json(integration(), EventType::Outage, n, outage_at(T0));
  const json_t* meta = json_object_get(json_object_get(j.get(), "collectd"), "meta");
  CU_ASSERT(json_number_value(json_object_get(meta, "big")) == 18446744073709551615.0);
  CU_ASSERT(json_is_integer(json_object_get(meta, "max_signed")));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(meta, "max_signed")), INT64_MAX);
}

void test_short_reals_when_possible() {
  Notification n = threshold_note(Severity::Failure, 95.3, kNaN, 80, kNaN, 90);
  const std::string body = build(integration(), EventType::Outage, n, outage_at(T0));
  CU_ASSERT(body.find("\"CurrentValue\":95.3,") != std::string::npos);
}

void test_maximum_length_fields() {
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.host = std::string(127, 'h');
  n.plugin = std::string(127, 'p');
  n.plugin_instance = std::string(127, 'i');
  n.type = std::string(127, 't');
  n.type_instance = std::string(127, 'u');
  n.message = std::string(255, 'm');
  n.meta = {{std::string(127, 'k'), std::string(127, 'v')}};
  IntegrationConfig ic = integration();
  ic.details_url = "https://x.example/?h=$host&s=$services";
  JsonPtr j = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_FATAL(j != nullptr);
  CU_ASSERT_EQUAL(str(j.get(), "name"), n.host);
  CU_ASSERT_EQUAL(str(j.get(), "description"), n.message);
  CU_ASSERT_EQUAL(str(j.get(), "services"), n.plugin + "-" + n.plugin_instance + "/" + n.type + "-" + n.type_instance);
  const json_t* c = json_object_get(j.get(), "collectd");
  CU_ASSERT_EQUAL(str(c, "type_instance"), n.type_instance);
  CU_ASSERT_EQUAL(str(json_object_get(c, "meta"), std::string(127, 'k').c_str()), std::string(127, 'v'));
  // Names cut in the middle of a UTF-8 sequence (collectd truncates bytes).
  n.host = std::string(125, 'h') + "\xE2\x82";
  j = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(j.get(), "name"), std::string(125, 'h') + kFffd);
}

// U+0000 is valid JSON, though jansson refuses it unless asked.
JsonPtr parse_with_nul(const std::string& text) {
  json_error_t error;
  return JsonPtr(json_loadb(text.data(), text.size(), JSON_ALLOW_NUL, &error));
}

// Every string collectd hands over carries the worst bytes; the body must
// still be JSON, and every string must come back as its sanitized self.
void test_hostile_bytes() {
  std::string hostile = "q\"uo\"te \\back\\slash\\ /";
  for (int c = 1; c < 0x20; ++c) hostile += static_cast<char>(c);
  hostile += '\x7f';
  hostile += "\x80|\xBF|\xC0\xAF|\xC1\xBF|\xE0\x80\xAF|\xED\xA0\x80|\xED\xBF\xBF|\xF4\x90\x80\x80|\xF5|\xFF|\xFE|"
             "\xC3|\xE2\x82|\xF0\x9F\x98|caf\xC3\xA9 \xF0\x9F\x98\x80|\xF8\x88\x80\x80\x80|";
  hostile += std::string("nul\0byte", 8);
  hostile += "\xE2";  // truncated at the very end
  const std::string clean = sanitize_utf8(hostile);

  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.host = n.plugin = n.plugin_instance = n.type = n.type_instance = n.message = hostile;
  n.meta = {{"DataSource", hostile}, {hostile, hostile}};
  IntegrationConfig ic = integration();
  ic.targets = {hostile, hostile + "2"};
  ic.details_url = "https://x.example/?h=$host";
  Outage o = outage_at(T0);
  o.id = hostile;
  const std::string body = build(ic, EventType::Outage, n, o, hostile);
  JsonPtr j = parse_with_nul(body);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j.get());
  for (const char* key : {"outage_id", "event_id", "name", "description", "items", "reasons"}) {
    const json_t* v = json_object_get(j.get(), key);
    CU_ASSERT_FATAL(json_is_string(v));
    CU_ASSERT(std::string(json_string_value(v), json_string_length(v)) == clean);
  }
  CU_ASSERT(clean.find(kFffd) != std::string::npos);
  const json_t* c = json_object_get(j.get(), "collectd");
  const json_t* ti = json_object_get(c, "type_instance");
  CU_ASSERT(std::string(json_string_value(ti), json_string_length(ti)) == clean);
  CU_ASSERT_EQUAL(json_array_size(json_object_get(j.get(), "target")), 2u);
  CU_ASSERT_EQUAL(json_object_size(json_object_get(c, "meta")), 2u);
  // Control characters are escaped, never raw.
  bool raw_control = false;
  for (unsigned char ch : body) raw_control = raw_control || ch < 0x20;
  CU_ASSERT(!raw_control);

  // And through a template.
  ic.outage_template = R"({"d": "$description", "s": "$services", "t": $target, "u": "$details_url"})";
  CU_ASSERT_EQUAL(check_template(*ic.outage_template), "");
  const std::string templated = build(ic, EventType::Outage, n, o, hostile);
  JsonPtr t = parse_with_nul(templated);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t.get());
  const json_t* d = json_object_get(t.get(), "d");
  // A template's value ends at its first NUL (a macro may be in a key).
  CU_ASSERT(std::string(json_string_value(d), json_string_length(d)) == clean.substr(0, clean.find('\0')));
}

// Random bytes, mostly the high ones that make UTF-8 go wrong: the body and
// a templated body are always JSON, and sanitize_utf8's output is what
// jansson accepts as UTF-8 (its own check is the oracle).
void test_random_bytes_always_json() {
  std::mt19937 rng(20261128);
  std::uniform_int_distribution<int> length(0, 40), byte(0, 255), pick(0, 3);
  const auto random_text = [&] {
    std::string s(static_cast<std::size_t>(length(rng)), ' ');
    for (auto& ch : s) ch = static_cast<char>(pick(rng) == 0 ? byte(rng) % 0x80 : 0x80 + byte(rng) % 0x80);
    return s;
  };
  IntegrationConfig ic = integration();
  IntegrationConfig templated = integration();
  templated.outage_template = R"({"d": "$description", "h": "$host", "w": "$reasons", "t": $target})";
  int invalid = 0;
  for (int i = 0; i < 2000; ++i) {
    Notification n;
    n.severity = Severity::Failure;
    n.time = T0;
    n.host = random_text();
    n.plugin = random_text();
    n.type = random_text();
    n.message = random_text();
    n.meta = {{random_text(), random_text()}};
    ic.targets = templated.targets = {random_text(), random_text()};
    const std::string clean = sanitize_utf8(n.message);
    JsonPtr s(json_stringn(clean.data(), clean.size()));
    JsonPtr raw(json_stringn(n.message.data(), n.message.size()));
    if (!s || (raw && clean != n.message) || !parse_with_nul(build(ic, EventType::Outage, n, outage_at(T0))) ||
        !parse_with_nul(build(templated, EventType::Outage, n, outage_at(T0))))
      ++invalid;
  }
  CU_ASSERT_EQUAL(invalid, 0);
}

// --- reasons ---------------------------------------------------------------------

std::string reasons_of(const Notification& n, EventType type = EventType::Outage) {
  JsonPtr j = build_json(integration(), type, n, outage_at(T0));
  return str(j.get(), "reasons");
}

void test_reasons_pick_the_crossed_threshold() {
  // A FAILURE is stated against the failure bounds even though the warning
  // bound is crossed too.
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90)),
                  "value 95 is above the failure threshold 90");
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Warning, 85, kNaN, 80, kNaN, 90)),
                  "value 85 is above the warning threshold 80");
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Failure, 0.5, 5, kNaN, 1, kNaN)),
                  "value 0.5 is below the failure threshold 1");
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Warning, 3, 5, 10, 1, 20)),
                  "value 3 is below the warning threshold 5");
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Failure, 2e6, kNaN, kNaN, kNaN, 1e6)),
                  "value 2e+06 is above the failure threshold 1e+06");
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Failure, 1234567, kNaN, kNaN, kNaN, 99.95)),
                  "value 1234567 is above the failure threshold 99.95");
  CU_ASSERT_EQUAL(reasons_of(threshold_note(Severity::Failure, 95.333333333, kNaN, kNaN, kNaN, 90)),
                  "value 95.3333 is above the failure threshold 90");
  // Invert true: the bad region is inside the range (collectd's message
  // says so; the meta does not).
  Notification inverted = threshold_note(Severity::Failure, 5, kNaN, kNaN, 0, 10);
  inverted.message = "Host h, plugin p type t: Data source \"value\" is currently 5.000000. That is within the "
                     "failure region of 0.000000 and 10.000000.";
  CU_ASSERT_EQUAL(reasons_of(inverted), "value 5 is within the failure range 0 to 10");
  inverted = threshold_note(Severity::Warning, 5, kNaN, 10, kNaN, kNaN);
  inverted.message = "Host h, plugin p type t: Data source \"value\" is currently 5.000000. That is below the "
                     "warning threshold of 10.000000.";
  CU_ASSERT_EQUAL(reasons_of(inverted), "value 5 is below the warning threshold 10");
  inverted.meta[1].value = 10.0;
  CU_ASSERT_EQUAL(reasons_of(inverted), "value 10 is at the warning threshold 10");
  inverted = threshold_note(Severity::Failure, 7, kNaN, kNaN, 2, kNaN);
  inverted.message = "Host h, plugin p type t: Data source \"value\" is currently 7.000000. That is above the "
                     "failure threshold of 2.000000.";
  CU_ASSERT_EQUAL(reasons_of(inverted), "value 7 is above the failure threshold 2");
  // Hysteresis keeps FAILURE below the bound: no false sentence, the message.
  Notification hysteresis = threshold_note(Severity::Failure, 89, kNaN, kNaN, kNaN, 90);
  CU_ASSERT_EQUAL(reasons_of(hysteresis), hysteresis.message);
}

void test_reasons_other_shapes() {
  // Percentage mode: CurrentValue is raw while the bounds are percentages.
  Notification pct = threshold_note(Severity::Failure, 5e9, kNaN, kNaN, kNaN, 90);
  pct.message = "Host h, plugin df type df: Data source \"used\" is currently 5000000000 (95.00%). That is above "
                "the failure threshold of 90.00%.";
  CU_ASSERT_EQUAL(reasons_of(pct), pct.message);

  Notification missing;
  missing.severity = Severity::Failure;
  missing.time = T0;
  missing.message = "h/cpu-0/cpu-idle has not been updated for 12.6 seconds.";
  CU_ASSERT_EQUAL(reasons_of(missing), "no data for 13 s");
  missing.message = "h/cpu-0/cpu-idle has not been updated for seconds.";
  CU_ASSERT_EQUAL(reasons_of(missing), missing.message);

  Notification okay;
  okay.severity = Severity::Okay;
  okay.time = T0;
  okay.message = "h/cpu-0/cpu-idle has been updated again";
  CU_ASSERT_EQUAL(reasons_of(okay, EventType::Clear), okay.message);

  Notification nan_value = threshold_note(Severity::Okay, kNaN, kNaN, 80, kNaN, 90);
  CU_ASSERT_EQUAL(reasons_of(nan_value, EventType::Clear), nan_value.message);

  Notification other;
  other.severity = Severity::Failure;
  other.time = T0;
  other.message = "disk on fire";
  other.meta = {{"CurrentValue", std::string("not a number")}};
  CU_ASSERT_EQUAL(reasons_of(other), "disk on fire");
}

void test_duration_never_negative_and_floored() {
  Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  n.time = T0 - seconds(5);  // a clock step backwards
  JsonPtr j = build_json(integration(), EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(j.get(), "duration"), "0");
  n.time = T0 + milliseconds(59999);
  j = build_json(integration(), EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(j.get(), "duration"), "59");
  // Severity is the outage's, even when a re-page comes from a WARNING.
  n.severity = Severity::Warning;
  j = build_json(integration(), EventType::Outage, n, outage_at(T0, Severity::Failure));
  CU_ASSERT_EQUAL(str(j.get(), "severity"), "critical");
  CU_ASSERT_EQUAL(str(json_object_get(j.get(), "collectd"), "severity"), "WARNING");
}

// --- sanitize_utf8 ------------------------------------------------------------------

void test_sanitize_utf8() {
  const std::string R = kFffd;
  struct Case {
    std::string in, out;
  } cases[] = {
      {"", ""},
      {"plain ascii", "plain ascii"},
      {std::string("a\0b", 3), std::string("a\0b", 3)},
      {"\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF",
       "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xEF\xBF\xBF \xF0\x90\x80\x80 \xF4\x8F\xBF\xBF"},
      {"\x80", R},                                      // lone continuation
      {"\xBF\xBF", R + R},                              // each continuation on its own
      {"\xC0\x80", R + R},                              // overlong NUL
      {"\xC1\xBF", R + R},                              // overlong
      {"\xE0\x80\x80", R + R + R},                      // overlong 3-byte
      {"\xF0\x80\x80\x80", R + R + R + R},              // overlong 4-byte
      {"\xED\xA0\x80", R + R + R},                      // lone high surrogate
      {"\xED\xBF\xBF", R + R + R},                      // lone low surrogate
      {"\xED\xA0\xBD\xED\xB8\x80", R + R + R + R + R + R},  // CESU-8 pair
      {"\xF4\x90\x80\x80", R + R + R + R},              // > U+10FFFF
      {"\xF5\x80\x80\x80", R + R + R + R},
      {"\xF8\x88\x80\x80\x80", R + R + R + R + R},      // old 5-byte form
      {"\xFE\xFF", R + R},
      {"\xE2\x82", R},                                  // truncated at the end: one U+FFFD
      {"\xF0\x9F\x98", R},
      {"\xE2\x82x", R + "x"},                           // truncated mid-text
      {"\xC3\xC3\xA9", R + "\xC3\xA9"},
      // Unicode's own example (Table 3-8): maximal subparts.
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a" + R + R + R + "b" + R + "c" + R + R + "d"},
  };
  for (const auto& c : cases) {
    const std::string got = sanitize_utf8(c.in);
    CU_ASSERT(got == c.out);
    // Whatever came out is valid UTF-8 and stays as it is.
    CU_ASSERT(sanitize_utf8(got) == got);
  }
}

// --- format_rfc3339 -----------------------------------------------------------------

void test_format_rfc3339() {
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint()), "1970-01-01T00:00:00Z");
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint(), true), "1970-01-01T00:00:00.000000Z");
  CU_ASSERT_EQUAL(format_rfc3339(T0), "2026-11-28T11:47:45Z");
  CU_ASSERT_EQUAL(format_rfc3339(T0 + microseconds(123456), true), "2026-11-28T11:47:45.123456Z");
  CU_ASSERT_EQUAL(format_rfc3339(T0 + microseconds(123456)), "2026-11-28T11:47:45Z");
  // Floor, never rounding up into the next second.
  const auto almost = T0 + std::chrono::duration_cast<Clock::duration>(nanoseconds(999999999));
  CU_ASSERT_EQUAL(format_rfc3339(almost), "2026-11-28T11:47:45Z");
  CU_ASSERT_EQUAL(format_rfc3339(almost, true), "2026-11-28T11:47:45.999999Z");
  // Before the epoch: floor, not truncation toward zero.
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint() - milliseconds(500)), "1969-12-31T23:59:59Z");
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint() - milliseconds(500), true), "1969-12-31T23:59:59.500000Z");
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint() - microseconds(1), true), "1969-12-31T23:59:59.999999Z");
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint(seconds(1709164800))), "2024-02-29T00:00:00Z");
  CU_ASSERT_EQUAL(format_rfc3339(TimePoint(seconds(4102444799))), "2099-12-31T23:59:59Z");
  // The calendar arithmetic against the C library's, over all a TimePoint
  // holds (1677 to 2262).
  const std::int64_t first = std::chrono::ceil<seconds>(TimePoint::min().time_since_epoch()).count();
  const std::int64_t last = std::chrono::floor<seconds>(TimePoint::max().time_since_epoch()).count();
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100002; ++i) {
    const auto t = static_cast<std::time_t>(
        i == 0 ? first : i == 1 ? last : first + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(last - first)));
    std::tm tm{};
    CU_ASSERT_PTR_NOT_NULL_FATAL(gmtime_r(&t, &tm));
    char expected[64];
    std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (format_rfc3339(TimePoint(seconds(t))) != expected) {
      CU_FAIL("format_rfc3339 differs from gmtime_r");
      std::fprintf(stderr, "at %lld: %s, expected %s\n", static_cast<long long>(t),
                   format_rfc3339(TimePoint(seconds(t))).c_str(), expected);
      break;
    }
  }
}

// --- templates ------------------------------------------------------------------------

void test_template_expansion_and_escaping() {
  IntegrationConfig ic = integration();
  ic.targets = {"ops-oncall"};
  ic.outage_template =
      "{\"id\": \"$outage_id\", \"ev\": \"$event_id\", \"type\": \"$event_type\", \"sev\": \"$severity\",\n"
      " \"host\": \"$name/$fqdn/$host\", \"desc\": \"$description\", \"svc\": \"$services\",\n"
      " \"items\": \"$items\", \"why\": \"$reasons\", \"at\": \"$timestamp\", \"from\": \"$start_time\",\n"
      " \"dur\": $duration, \"ids\": \"$plugin|$plugin_instance|$type|$type_instance\",\n"
      " \"cv\": \"$current_value\", \"to\": $target, \"price\": \"$5\"}";
  CU_ASSERT_EQUAL_FATAL(check_template(*ic.outage_template), "");
  Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  n.message = "say \"hi\"\\\n\tnow \x01 caf\xC3\xA9 \xFF";
  n.time = T0 + seconds(42);
  const std::string body = build(ic, EventType::Outage, n, outage_at(T0));
  assert_golden(body, R"({"id": "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c", "ev": "ev-1", "type": "outage",
    "sev": "critical", "host": "db1/db1/db1", "desc": "say \"hi\"\\\n\tnow \u0001 café �",
    "svc": "df-root/percent_bytes-used", "items": "value", "why": "value 95 is above the failure threshold 90",
    "at": "2026-11-28T11:48:27Z", "from": "2026-11-28T11:47:45Z", "dur": 42,
    "ids": "df|root|percent_bytes|used", "cv": "95", "to": "ops-oncall", "price": "$5"})");
  // Sent as written: the template's own layout is kept.
  CU_ASSERT(body.find(",\n \"host\"") != std::string::npos);
}

void test_template_target_as_json() {
  IntegrationConfig ic = integration();
  ic.outage_template = R"({"to": $target, "in": [$target]})";
  const Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  assert_golden(build(ic, EventType::Outage, n, outage_at(T0)), R"({"to": null, "in": [null]})");
  ic.targets = {"a"};
  assert_golden(build(ic, EventType::Outage, n, outage_at(T0)), R"({"to": "a", "in": ["a"]})");
  ic.targets = {"a", "b\"c"};
  assert_golden(build(ic, EventType::Outage, n, outage_at(T0)),
                R"({"to": ["a", "b\"c"], "in": [["a", "b\"c"]]})");
}

void test_template_longest_match_and_unknown_words() {
  IntegrationConfig ic = integration();
  ic.details_url = "https://x.example/$plugin_instance";
  ic.outage_template =
      R"({"a": "$type_instance|$type|$plugin_instance|$plugin|$typex|$hostname", "b": "$foo $ $$host $1 $HOST",
          "c": "$details_url", "d": "$current_values"})";
  CU_ASSERT_EQUAL_FATAL(check_template(*ic.outage_template), "");
  const Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  assert_golden(build(ic, EventType::Outage, n, outage_at(T0)),
                R"({"a": "used|percent_bytes|root|df|percent_bytesx|db1name", "b": "$foo $ $db1 $1 $HOST",
                    "c": "https://x.example/root", "d": "95s"})");
}

void test_template_current_value_absent_is_empty() {
  IntegrationConfig ic = integration();
  ic.outage_template = R"({"cv": "$current_value", "items": "$items", "url": "$details_url"})";
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.message = "x";
  assert_golden(build(ic, EventType::Outage, n, outage_at(T0)), R"({"cv": "", "items": "", "url": ""})");
}

void test_clear_template_used_for_clears() {
  IntegrationConfig ic = integration();
  ic.outage_template = R"({"kind": "outage template", "event": "$event_type"})";
  ic.clear_template = R"({"kind": "clear template", "event": "$event_type", "dur": "$duration"})";
  Notification n = threshold_note(Severity::Okay, 50, kNaN, 80, kNaN, 90);
  n.time = T0 + seconds(90);
  assert_golden(build(ic, EventType::Clear, n, outage_at(T0)),
                R"({"kind": "clear template", "event": "clear", "dur": "90"})");
  n.severity = Severity::Failure;
  assert_golden(build(ic, EventType::Outage, n, outage_at(T0)),
                R"({"kind": "outage template", "event": "outage"})");
  // Only ClearTemplate: outage events keep the built-in payload.
  ic.outage_template.reset();
  JsonPtr j = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(j.get(), "event_type"), "outage");
  CU_ASSERT(json_is_object(json_object_get(j.get(), "collectd")));
}

void test_template_invalid_at_runtime_falls_back() {
  // Not something check_template lets through; the body is still JSON.
  IntegrationConfig ic = integration();
  ic.outage_template = R"({"cv": $current_value})";
  Notification n;
  n.severity = Severity::Failure;
  n.time = T0;
  n.message = "no value here";
  JsonPtr j = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(str(j.get(), "description"), "no value here");
}

void test_check_template_messages() {
  CU_ASSERT_EQUAL(check_template(R"({"d": "$description", "t": $target, "n": $duration})"), "");
  CU_ASSERT_EQUAL(check_template("[\"$host\"]"), "");

  CU_ASSERT_EQUAL(check_template("{\n  \"a\": \"$host\"\n"),
                  "not valid JSON once expanded: '}' expected near end of file (line 3, column 0)");

  // The position is the template's, not the expansion's: it is where jansson
  // puts it in the template text itself (in which the macros are inert).
  const std::string bad = "{\"long\": \"$description $description\",\n  \"x\": \"$reasons\" \"y\": 1}";
  json_error_t error;
  JsonPtr raw(json_loads(bad.c_str(), 0, &error));
  CU_ASSERT_PTR_NULL_FATAL(raw.get());
  const std::string want = std::string("not valid JSON once expanded: ") + error.text + " (line " +
                           std::to_string(error.line) + ", column " + std::to_string(error.column) + ")";
  CU_ASSERT_EQUAL(check_template(bad), want);
  CU_ASSERT(want.find("(line 2, column ") != std::string::npos);

  // "$target" must not be quoted: with several targets it is an array.
  const std::string quoted_target = check_template(R"({"to": "$target"})");
  CU_ASSERT(quoted_target.rfind("not valid JSON once expanded: ", 0) == 0);
  CU_ASSERT(quoted_target.find("(line 1, column 15)") != std::string::npos);
  // A bare $description breaks on the awkward sample.
  CU_ASSERT(check_template(R"({"d": $description})") != "");
  // A bare $current_value is text like any other ("nan", or none at all).
  const std::string bare_value = check_template(R"({"v": $current_value})");
  CU_ASSERT(bare_value.rfind("not valid JSON once expanded: ", 0) == 0);
  CU_ASSERT(check_template("") != "");
  CU_ASSERT(check_template("{} trailing") != "");
  CU_ASSERT(check_template("{\"a\": \"\xFF\"}") != "");
}

}  // namespace

// --- the JSON writer and UTF-8 ---------------------------------------------------------------

void test_writer_structure_and_separators() {
  xmatters::JsonWriter w;
  w.begin_object().key("a").begin_array().end_array().key("b").begin_object().end_object();
  w.key("c").begin_array().number(std::int64_t{1}).begin_object().key("x").null().end_object().boolean(false);
  w.end_array().key("d").string("").end_object();
  CU_ASSERT_EQUAL(w.text(), R"({"a":[],"b":{},"c":[1,{"x":null},false],"d":""})");
  CU_ASSERT_PTR_NOT_NULL(xmtest::parse_json(std::string(w.text())).get());
}

void test_writer_escapes_exactly_what_json_needs() {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  all += "\xC3\xA9\xE2\x80\xA8\xF0\x9F\x98\x80";  // é, U+2028, an emoji: kept as they are
  xmatters::JsonWriter w;
  w.string(all);
  json_error_t error;
  JsonPtr j(json_loadb(w.text().data(), w.text().size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &error));
  CU_ASSERT_PTR_NOT_NULL_FATAL(j.get());
  CU_ASSERT(std::string(json_string_value(j.get()), json_string_length(j.get())) == all);
  for (char c : w.text()) CU_ASSERT(static_cast<unsigned char>(c) >= 0x20);
  CU_ASSERT(w.text().find("\\u0000") != std::string::npos);
  CU_ASSERT(w.text().find("\\n") != std::string::npos);
  CU_ASSERT(w.text().find("\\\"") != std::string::npos);
  CU_ASSERT(w.text().find("/") != std::string::npos);  // no needless escape of '/'
}

// The escape check looks at blocks of 16 and 8 bytes, then at single ones:
// a character that needs an escape is found at every position, and one that
// needs none is never escaped.
void test_writer_escapes_at_every_position() {
  const std::string needs[] = {std::string(1, '\0'), "\x1f", "\"", "\\", "\n"};
  const std::string plain[] = {" ", "\x7f", "\xC3\xA9", "/", "\xF0\x9F\x98\x80"};
  for (std::size_t length = 1; length <= 40; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (const auto& set : {needs, plain}) {
        for (std::size_t k = 0; k < 5; ++k) {
          std::string s(at, 'a');
          s += set[k];
          s.append(length - at - 1, 'b');
          xmatters::JsonWriter w;
          w.string(s);
          const std::string text(w.text());
          if (set == plain) {
            CU_ASSERT_EQUAL(text, "\"" + s + "\"");
          } else {
            CU_ASSERT_NOT_EQUAL(text, "\"" + s + "\"");
            json_error_t error;
            JsonPtr j(json_loadb(text.data(), text.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &error));
            CU_ASSERT_FATAL(j != nullptr);
            CU_ASSERT(std::string(json_string_value(j.get()), json_string_length(j.get())) == s);
          }
        }
      }
    }
  }
}

void test_writer_numbers() {
  auto text = [](auto v) {
    xmatters::JsonWriter w;
    w.number(v);
    return w.take();
  };
  CU_ASSERT_EQUAL(text(95.0), "95.0");  // stays a real for the reader
  CU_ASSERT_EQUAL(text(95.3), "95.3");
  CU_ASSERT_EQUAL(text(0.1 + 0.2), "0.30000000000000004");
  CU_ASSERT_EQUAL(text(-0.5), "-0.5");
  CU_ASSERT_EQUAL(text(1e300), "1e+300");
  CU_ASSERT_EQUAL(text(std::nan("")), "null");
  CU_ASSERT_EQUAL(text(std::numeric_limits<double>::infinity()), "null");
  CU_ASSERT_EQUAL(text(-std::numeric_limits<double>::infinity()), "null");
  CU_ASSERT_EQUAL(text(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
  CU_ASSERT_EQUAL(text(std::numeric_limits<std::uint64_t>::max()), "18446744073709551615");
  for (double v : {95.3, 1e-7, 123456789.123, 5e-324}) {
    JsonPtr j = xmtest::parse_json(text(v));
    CU_ASSERT_FATAL(j != nullptr && json_is_real(j.get()));
    CU_ASSERT_EQUAL(json_real_value(j.get()), v);  // reads back exactly
  }
  // Small whole numbers take a shorter way: to the same text as the
  // shortest form, on both sides of where it ends.
  auto shortest = [](double v) {
    std::array<char, 32> buf;
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    std::string t(buf.data(), r.ptr);
    return t.find_first_of(".e") == std::string::npos ? t + ".0" : t;
  };
  int mismatches = 0;
  for (int i = -20000; i <= 20000; ++i)
    for (double v : {double(i), i + 0.5, i * 0.001})
      if (text(v) != shortest(v)) ++mismatches;
  CU_ASSERT_EQUAL(mismatches, 0);
  CU_ASSERT_EQUAL(text(-0.0), "-0.0");
  CU_ASSERT_EQUAL(text(0.0), "0.0");
  CU_ASSERT_EQUAL(text(9999.0), "9999.0");
  CU_ASSERT_EQUAL(text(-9999.0), "-9999.0");
  CU_ASSERT_EQUAL(text(100000.0), "1e+05");
}

void test_valid_utf8() {
  CU_ASSERT(xmatters::valid_utf8(""));
  CU_ASSERT(xmatters::valid_utf8("plain ascii"));
  CU_ASSERT(xmatters::valid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  for (const char* bad : {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80",
                          "\xFF", "\xC3", "ok\xE2\x82"})
    CU_ASSERT_FALSE(xmatters::valid_utf8(bad));
}

// --- every template check_template accepts expands to JSON for every event (issue 14) ----------

// Each value class a macro can take: check_template must refuse a template
// that some real value would break, and an accepted one is what is sent.
void test_accepted_template_never_falls_back() {
  // A macro in a key, with a NUL in its value (the fuzz_template finding):
  // jansson refuses "\u0000" in a key, so a value ends at its first NUL, as
  // collectd's C strings do.
  IntegrationConfig ic = integration();
  ic.outage_template = R"({"plug$type": "$type", "$host": 1})";
  CU_ASSERT_EQUAL_FATAL(check_template(*ic.outage_template), "");
  Notification n = threshold_note(Severity::Failure, 95, kNaN, 80, kNaN, 90);
  n.type = std::string("in\0x", 4);
  n.host = std::string("\0", 1);
  JsonPtr j = build_json(ic, EventType::Outage, n, outage_at(T0));
  CU_ASSERT_EQUAL(json_object_size(j.get()), 2u);  // the template's body, not the built-in one
  CU_ASSERT_EQUAL(str(j.get(), "plugin"), "in");
  CU_ASSERT_PTR_NOT_NULL(json_object_get(j.get(), ""));

  // Glued to a number, $current_value would break on "-5" or "1.5", and
  // $duration would pass int64 for an outage of over 31 years.
  CU_ASSERT(check_template(R"({"v": 1$current_value})") != "");
  CU_ASSERT(check_template(R"({"d": 1234567890$duration})") != "");
  ic.outage_template = R"({"d": 1$duration, "e": -$duration})";
  CU_ASSERT_EQUAL_FATAL(check_template(*ic.outage_template), "");
  n.time = TimePoint(seconds(std::int64_t{9000000000}));  // 2255, an outage open since 1970
  j = build_json(ic, EventType::Outage, n, outage_at(TimePoint()));
  CU_ASSERT_EQUAL(json_object_size(j.get()), 2u);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j.get(), "d")), 19000000000);
}

int main(int argc, char** argv) {
  return xmtest::run(argc, argv,
                     {{"payload",
                       {{"golden_threshold_failure", test_golden_threshold_failure},
                        {"golden_warning", test_golden_warning},
                        {"golden_clear_with_duration", test_golden_clear_with_duration},
                        {"golden_missing_value", test_golden_missing_value},
                        {"golden_putnotif_without_type", test_golden_putnotif_without_type},
                        {"property_types", test_property_types},
                        {"target_absent_string_array", test_target_absent_string_array},
                        {"details_url_percent_encoding", test_details_url_percent_encoding},
                        {"meta_numbers_nan_inf_null", test_meta_numbers_nan_inf_null},
                        {"meta_many_items_deduplicated", test_meta_many_items_deduplicated},
                        {"meta_bounded_by_body_size", test_meta_bounded_by_body_size},
                        {"big_unsigned_meta_exact", test_big_unsigned_meta_exact},
                        {"short_reals_when_possible", test_short_reals_when_possible},
                        {"maximum_length_fields", test_maximum_length_fields},
                        {"hostile_bytes", test_hostile_bytes},
                        {"random_bytes_always_json", test_random_bytes_always_json},
                        {"duration_never_negative_and_floored", test_duration_never_negative_and_floored}}},
                      {"reasons",
                       {{"pick_the_crossed_threshold", test_reasons_pick_the_crossed_threshold},
                        {"other_shapes", test_reasons_other_shapes}}},
                      {"utf8_and_time",
                       {{"sanitize_utf8", test_sanitize_utf8}, {"format_rfc3339", test_format_rfc3339}}},
                      {"json_writer",
                       {{"structure_and_separators", test_writer_structure_and_separators},
                        {"escapes_exactly_what_json_needs", test_writer_escapes_exactly_what_json_needs},
                        {"escapes_at_every_position", test_writer_escapes_at_every_position},
                        {"numbers", test_writer_numbers},
                        {"valid_utf8", test_valid_utf8}}},
                      {"templates",
                       {{"expansion_and_escaping", test_template_expansion_and_escaping},
                        {"target_as_json", test_template_target_as_json},
                        {"longest_match_and_unknown_words", test_template_longest_match_and_unknown_words},
                        {"builtin_worst_case_covers_details_url", test_builtin_worst_case_covers_details_url},
                        {"current_value_absent_is_empty", test_template_current_value_absent_is_empty},
                        {"clear_template_used_for_clears", test_clear_template_used_for_clears},
                        {"invalid_at_runtime_falls_back", test_template_invalid_at_runtime_falls_back},
                        {"check_template_messages", test_check_template_messages},
                        {"worst_case_holds", test_template_worst_case_holds},
                        {"worst_case_holds_for_host", test_template_worst_case_holds_for_host},
                        {"worst_case_holds_for_flood", test_template_worst_case_holds_for_flood}}},
                      {"group_by_host", {{"lists_members", test_host_outage_lists_members}}},
                      {"members_worst_case", {{"builtin_worst_case_holds_for_members", test_builtin_worst_case_holds_for_members}}},
                      {"flood", {{"outage_payload", test_flood_outage_payload},
                                 {"joined_fields_skip_empty_values", test_joined_fields_skip_empty_values}}},
                      {"template_check", {{"accepted_never_falls_back", test_accepted_template_never_falls_back}}}});
}
