#include "outage/notification_text.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <type_traits>
#include <variant>

namespace xmatters {
namespace {

std::string chars(double v, std::chars_format fmt, int precision) {
  std::array<char, 64> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, fmt, precision);
  return std::string(buf.data(), r.ptr);
}

bool round_trips(const std::string& text, double v) {
  double back = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), back);
  return r.ec == std::errc() && back == v;
}

std::optional<double> meta_number(const Notification& n, std::string_view name) {
  const MetaItem* m = n.find_meta(name);
  if (m == nullptr) return std::nullopt;
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>)
          return std::nullopt;
        else
          return static_cast<double>(v);
      },
      m->value);
}

bool is_missing_value_message(const std::string& message, double* seconds) {
  static constexpr std::string_view kMissing = "has not been updated for ";
  const auto at = message.find(kMissing);
  if (at == std::string::npos) return false;
  const char* first = message.data() + at + kMissing.size();
  const auto r = std::from_chars(first, message.data() + message.size(), *seconds);
  return r.ec == std::errc() && std::isfinite(*seconds);
}

// The pieces, in one allocation: notification_reasons runs on collectd's thread.
std::string join(std::initializer_list<std::string_view> pieces) {
  std::size_t size = 0;
  for (const auto piece : pieces) size += piece.size();
  std::string out;
  out.reserve(size);
  for (const auto piece : pieces) out += piece;
  return out;
}

}  // namespace

// %g-like (95, 0.5, 1e+06) and locale-independent; a whole number that %g
// would round (1234567) is written out instead, since a human reading a byte
// count wants the count.
std::string compact_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Most thresholds and values are whole and small: %g writes them as
  // integers, and so does this, for a fraction of the cost.
  if (std::fabs(v) < 1e6 && v == std::trunc(v)) return std::to_string(static_cast<long>(v));
  std::string text = chars(v, std::chars_format::general, 6);
  if (!round_trips(text, v) && v == std::trunc(v) && std::fabs(v) < 1e15)
    text = chars(v, std::chars_format::fixed, 0);
  return text;
}

// A NaN CurrentValue (collectd's "no value") says nothing worth a sentence.
std::optional<double> current_value(const Notification& n) {
  auto v = meta_number(n, "CurrentValue");
  if (v && std::isnan(*v)) v.reset();
  return v;
}

// One short sentence: which threshold the value crossed, "no data for N s"
// for collectd's missing-value FAILURE, or else collectd's own message.
std::string notification_reasons(const Notification& n) {
  const auto value = current_value(n);
  if (n.severity == Severity::Okay) {
    if (value) return join({"value ", compact_number(*value), " is back within thresholds"});
    return n.message;
  }
  // In Percentage mode CurrentValue is the raw value while the thresholds
  // are percentages: comparing them would state something false.
  const bool percentage = n.message.find("%). That is") != std::string::npos;
  if (value && !percentage) {
    const bool failure = n.severity == Severity::Failure;
    const std::string_view level = failure ? "failure" : "warning";
    const auto min = meta_number(n, failure ? "FailureMin" : "WarningMin");
    const auto max = meta_number(n, failure ? "FailureMax" : "WarningMax");
    const bool has_min = min && !std::isnan(*min), has_max = max && !std::isnan(*max);
    const std::string v = compact_number(*value);
    if (has_max && *value > *max)
      return join({"value ", v, " is above the ", level, " threshold ", compact_number(*max)});
    if (has_min && *value < *min)
      return join({"value ", v, " is below the ", level, " threshold ", compact_number(*min)});
    // Neither bound crossed: either an inverted threshold (Invert true),
    // whose bad region is the inside, or a Hysteresis holding the state.
    // The meta cannot tell them apart; collectd's message can.
    const auto says = [&](const char* words) { return n.message.find(words) != std::string::npos; };
    if (has_min && has_max && says("That is within the"))
      return join({"value ", v, " is within the ", level, " range ", compact_number(*min), " to ",
                   compact_number(*max)});
    if (has_max && !has_min && says("That is below the"))
      return join({"value ", v, *value < *max ? " is below the " : " is at the ", level, " threshold ",
                   compact_number(*max)});
    if (has_min && !has_max && says("That is above the"))
      return join({"value ", v, *value > *min ? " is above the " : " is at the ", level, " threshold ",
                   compact_number(*min)});
  }
  double seconds = 0;
  if (!value && is_missing_value_message(n.message, &seconds))
    return join({"no data for ", std::to_string(std::max(0LL, std::llround(seconds))), " s"});
  return n.message;
}

// A data source name is a collectd name; only a plugin's own meta could
// make it longer, and the template bound counts on it.
std::string_view notification_data_source(const Notification& n) {
  if (const MetaItem* ds = n.find_meta("DataSource"))
    if (const auto* s = std::get_if<std::string>(&ds->value)) return std::string_view(*s).substr(0, kNameMax);
  return {};
}

std::string notification_items(const Notification& n) { return std::string(notification_data_source(n)); }

}  // namespace xmatters
