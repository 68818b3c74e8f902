// collectd.conf syntax (collectd-xmatters(1), check): any bytes as one
// file's text. The reader gives a tree or one ConfSyntaxError line, never a
// crash or a hang; a tree's first <Plugin xmatters> block then goes through
// parse_config as check hands it over (ConfigError or a Config).
#include <string>
#include <string_view>

#include "config/conf_file.h"
#include "config/options.h"
#include "fuzz_support.h"

namespace {

const xmatters::ConfigNode* plugin_block(const xmatters::ConfigNode& root) {
  for (const auto& c : root.children)
    if (c.key == "Plugin" && !c.values.empty() && c.values[0].string == "xmatters") return &c;
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  xmatters::ConfigNode root;
  try {
    root = xmatters::parse_conf_text(text, "fuzz.conf");
  } catch (const xmatters::ConfSyntaxError& e) {
    const std::string line = e.what();
    if (line.empty() || line.find('\n') != std::string::npos) xmfuzz::fail("the error is not one line", line);
    return 0;
  }
  if (const xmatters::ConfigNode* block = plugin_block(root)) {
    try {
      xmatters::parse_config(*block);
    } catch (const xmatters::ConfigError&) {
    }
  }
  return 0;
}
