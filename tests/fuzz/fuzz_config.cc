// Every configuration value type: a <Plugin xmatters> tree drawn from the
// input (known and unknown options, any value types and counts, nested
// blocks) through parse_config. It either gives a Config or throws one
// ConfigError, whose one line never shows a secret; the warnings neither.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "config/options.h"
#include "fuzz_support.h"

namespace {

using xmatters::ConfigNode;
using xmatters::ConfigValue;

// Secrets as xmfuzz::secret makes them; other strings that happen to
// contain one are noted and such a secret is not checked.
struct Draw {
  FuzzedDataProvider& in;
  std::vector<std::string> secrets;
  std::vector<std::string> others;

  std::string secret() { return xmfuzz::secret(in, secrets); }

  std::string url() {
    std::string u = in.ConsumeBool() ? "https://" : "http://";
    if (in.ConsumeBool()) u += "user:" + secret() + "@";
    u += in.ConsumeBool() ? "127.0.0.1:8080" : plain(24);
    u += "/api/integration/1/functions/" + plain(16) + "/triggers";
    const int params = in.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < params; ++i) u += (i == 0 ? "?" : "&") + plain(8) + "=" + secret();
    if (in.ConsumeBool()) u += plain(16);  // whatever follows, '#' and all
    return u;
  }

  std::string plain(std::size_t max) {
    std::string s = xmfuzz::bytes(in, max);
    others.push_back(s);
    return s;
  }

  // A string for an option, often one of the shapes the options want.
  std::string string_for(const std::string& key, const std::string& files) {
    if (key == "Password") return secret();
    if (key == "Header" && in.ConsumeBool()) return plain(16) + ":" + (in.ConsumeBool() ? " " : "") + secret();
    if ((key == "OutageURL" || key == "ClearURL" || key == "Proxy") && in.ConsumeBool()) return url();
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0: return files + "/template.json";
      case 1: return files + "/broken.json";
      case 2: return files + "/password";
      case 3: return files + "/missing";
      case 4: return files;  // a directory
      case 5: return in.ConsumeBool() ? "warning" : "failure";
      case 6: return "^(db|web)[0-9]+$";
      default: return plain(48);
    }
  }

  ConfigValue value(const std::string& key, const std::string& files) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: return ConfigValue::of(xmfuzz::number(in));
      case 1: return ConfigValue::of(in.ConsumeBool());
      default: return ConfigValue::of(string_for(key, files));
    }
  }

  std::string key() {
    const auto& table = xmatters::option_table();
    if (in.ConsumeIntegralInRange<int>(0, 15) == 0) return plain(16);
    std::string k = table[in.ConsumeIntegralInRange<std::size_t>(0, table.size() - 1)].name;
    if (in.ConsumeIntegralInRange<int>(0, 7) == 0)  // names are case-insensitive
      for (char& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return k;
  }

  ConfigNode node(const std::string& files, int depth) {
    ConfigNode n;
    n.key = key();
    const bool block = n.key == "Integration" || (depth < 2 && in.ConsumeIntegralInRange<int>(0, 15) == 0);
    const int values = in.ConsumeIntegralInRange<int>(0, 7) == 0 ? in.ConsumeIntegralInRange<int>(0, 3) : 1;
    for (int i = 0; i < values; ++i) {
      if (block && in.ConsumeBool())
        n.values.push_back(ConfigValue::of(in.ConsumeBool() ? std::string("ops") : plain(12)));
      else
        n.values.push_back(value(n.key, files));
    }
    if (block && depth < 2) {
      const int children = in.ConsumeIntegralInRange<int>(0, 12);
      for (int i = 0; i < children && in.remaining_bytes() > 0; ++i) n.children.push_back(node(files, depth + 1));
    }
    return n;
  }
};

// Files the Path options can name: made once, removed at exit.
class Fixtures {
 public:
  Fixtures() {
    char tmpl[] = "/tmp/xm-fuzz-config-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) xmfuzz::fail("mkdtemp");
    dir_ = tmpl;
    put("template.json", R"({"id": "$outage_id", "host": "$host", "target": $target})");
    put("broken.json", R"({"id": $outage_id})");
    put("password", "Zq7filePassword\n");
  }
  ~Fixtures() {
    for (const char* name : kNames) ::unlink((dir_ + "/" + name).c_str());
    ::rmdir(dir_.c_str());
  }
  Fixtures(const Fixtures&) = delete;
  Fixtures& operator=(const Fixtures&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  static constexpr const char* kNames[] = {"template.json", "broken.json", "password"};
  void put(const char* name, const char* text) {
    FILE* f = std::fopen((dir_ + "/" + name).c_str(), "w");
    if (f == nullptr) xmfuzz::fail("cannot write a fixture");
    std::fputs(text, f);
    std::fclose(f);
  }
  std::string dir_;
};

void check_shows_no_secret(const Draw& d, const std::string& text, const char* what) {
  std::vector<std::string> secrets = d.secrets;
  secrets.push_back("Zq7filePassword");
  for (const auto& s : secrets) {
    bool elsewhere = false;
    for (const auto& o : d.others) elsewhere = elsewhere || o.find(s) != std::string::npos;
    if (!elsewhere && text.find(s) != std::string::npos) xmfuzz::fail(what, "secret " + s + " in: " + text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Draw d{in, {}, {}};
  static const Fixtures fixtures;
  const std::string& files = fixtures.dir();
  ConfigNode plugin{"Plugin", {ConfigValue::of("xmatters")}, {}};
  const int children = in.ConsumeIntegralInRange<int>(0, 6);
  for (int i = 0; i < children && in.remaining_bytes() > 0; ++i) plugin.children.push_back(d.node(files, 0));

  try {
    const xmatters::Config c = xmatters::parse_config(plugin);
    for (const auto& w : c.warnings) check_shows_no_secret(d, w, "a warning shows a secret");
    if (c.integrations.empty()) xmfuzz::fail("a Config without an integration");
  } catch (const xmatters::ConfigError& e) {
    const std::string message = e.what();
    if (message.empty() || message.find('\n') != std::string::npos)
      xmfuzz::fail("a ConfigError is not one line", message);
    check_shows_no_secret(d, message, "a ConfigError shows a secret");
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    xmfuzz::fail("parse_config threw something other than ConfigError", e.what());
  }
  return 0;
}
