#include "outage/notification.h"

namespace xmatters {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Failure: return "FAILURE";
    case Severity::Warning: return "WARNING";
    case Severity::Okay: break;
  }
  return "OKAY";
}

const MetaItem* Notification::find_meta(std::string_view name) const {
  for (const auto& m : meta)
    if (m.name == name) return &m;
  return nullptr;
}

bool Notification::is_missing_value() const {
  return severity == Severity::Failure && meta.empty() &&
         message.find("has not been updated for") != std::string::npos;
}

}  // namespace xmatters
