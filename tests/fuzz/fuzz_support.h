// Shared by the fuzz targets: collectd-shaped values drawn from the fuzz
// input, and a failure that libFuzzer records as a finding.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "outage/notification.h"
#include "outage/notification_text.h"
#include "outage/outage_tracker.h"
#include "payload/payload.h"

namespace xmfuzz {

// An invariant broke: abort, so that libFuzzer keeps the input as a crash.
[[noreturn]] inline void fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz invariant broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// Any bytes, up to max_len: collectd passes its strings through unchecked.
inline std::string bytes(FuzzedDataProvider& in, std::size_t max_len = 64) {
  return in.ConsumeRandomLengthString(max_len);
}

// Any double, NaN and infinities included (collectd's gauges hold them).
inline double number(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return std::numeric_limits<double>::quiet_NaN();
    case 1: return in.ConsumeBool() ? std::numeric_limits<double>::infinity()
                                    : -std::numeric_limits<double>::infinity();
    case 2: return static_cast<double>(in.ConsumeIntegral<std::int32_t>());
    default: return in.ConsumeFloatingPoint<double>();
  }
}

// Any time the glue makes of a cdtime_t: 0 to 2^62 ns (it clamps later ones).
inline xmatters::TimePoint time_point(FuzzedDataProvider& in) {
  const auto ns = in.ConsumeIntegralInRange<std::int64_t>(0, std::int64_t{1} << 62);
  return xmatters::TimePoint(std::chrono::duration_cast<xmatters::Clock::duration>(std::chrono::nanoseconds(ns)));
}

// A secret (password, query value, token): a marker and letters or digits,
// so that it reads the same raw, percent-encoded and quoted, and no
// delimiter ends it early. Noted in secrets, for the checks.
inline std::string secret(FuzzedDataProvider& in, std::vector<std::string>& secrets, int min_len = 3,
                          int max_len = 16) {
  static const char kAlnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string s = "Zq7";
  const int n = in.ConsumeIntegralInRange<int>(min_len, max_len);
  for (int i = 0; i < n; ++i) s += kAlnum[in.ConsumeIntegralInRange<int>(0, sizeof kAlnum - 2)];
  secrets.push_back(s);
  return s;
}

inline xmatters::Severity severity(FuzzedDataProvider& in) {
  return static_cast<xmatters::Severity>(in.ConsumeIntegralInRange<int>(0, 2));
}

// Every string field and meta item arbitrary.
inline xmatters::Notification notification(FuzzedDataProvider& in) {
  xmatters::Notification n;
  n.severity = severity(in);
  n.time = time_point(in);
  n.host = bytes(in);
  n.plugin = bytes(in);
  n.plugin_instance = bytes(in);
  n.type = bytes(in);
  n.type_instance = bytes(in);
  n.message = bytes(in, 256);
  const int items = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < items; ++i) {
    xmatters::MetaItem m;
    // The threshold plugin's names often, so that their special handling runs.
    static const char* const kNames[] = {"DataSource", "CurrentValue", "WarningMin", "WarningMax",
                                         "FailureMin", "FailureMax",   "Hysteresis", ""};
    m.name = in.ConsumeBool() ? std::string(kNames[in.ConsumeIntegralInRange<int>(0, 7)]) : bytes(in, 16);
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0: m.value = bytes(in); break;
      case 1: m.value = in.ConsumeIntegral<std::int64_t>(); break;
      case 2: m.value = in.ConsumeIntegral<std::uint64_t>(); break;
      case 3: m.value = number(in); break;
      default: m.value = in.ConsumeBool(); break;
    }
    n.meta.push_back(std::move(m));
  }
  return n;
}

// Every field equal: an event read back is the one written.
inline bool same_event(const xmatters::Event& a, const xmatters::Event& b) {
  return a.event_id == b.event_id && a.integration == b.integration && a.outage_id == b.outage_id &&
         a.type == b.type && a.created == b.created && a.body == b.body && a.change == b.change;
}

inline xmatters::Outage outage(FuzzedDataProvider& in) {
  xmatters::Outage o;
  o.id = "6f1c2a9e-4b7d-4e0a-9c1f-2d3e4f5a6b7c";  // the plugin makes it, a UUID
  o.severity = in.ConsumeBool() ? xmatters::Severity::Failure : xmatters::Severity::Warning;
  o.start = time_point(in);
  o.last_page = in.ConsumeBool() ? o.start : time_point(in);
  // A host's or a flood's outage lists members, made as the tracker makes
  // them from their notifications (GroupBy host, FloodLimit).
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: return o;
    case 1: o.kind = xmatters::OutageKind::Host; break;
    default:
      o.kind = xmatters::OutageKind::Flood;
      o.outages = in.ConsumeIntegral<std::uint32_t>();
      o.hosts = in.ConsumeIntegral<std::uint32_t>();
      break;
  }
  const int members = in.ConsumeIntegralInRange<int>(0, 12);
  for (int i = 0; i < members; ++i) {
    const xmatters::Notification n = notification(in);
    xmatters::Member m;
    m.key = xmatters::OutageKey::of(n);
    m.failing = in.ConsumeBool();
    m.items = xmatters::notification_items(n);
    m.reasons = xmatters::notification_reasons(n);
    o.members.push_back(std::move(m));
  }
  return o;
}

}  // namespace xmfuzz
