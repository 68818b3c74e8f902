#include "config/conf_file.h"

#include <dirent.h>
#include <fnmatch.h>
#include <strings.h>
#include <sys/stat.h>
#include <wordexp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <system_error>

namespace xmatters {

namespace {

// --- Include -----------------------------------------------------------------
// As collectd's configfile.c: only a file's top-level Include items are
// followed; a path goes through wordexp (globs, ~, $VARIABLES; no command
// substitution), each match sorted; a directory's entries (not those
// starting with '.') are read in sorted order, and one that fails is
// skipped; Filter applies fnmatch to the base names of files.

constexpr int kMaxIncludeDepth = 8;

using Messages = std::vector<CollectdConf::Message>;

void error(Messages& m, std::string text) { m.push_back({true, std::move(text)}); }
void warning(Messages& m, std::string text) { m.push_back({false, std::move(text)}); }

std::optional<ConfigNode> read_generic(const std::string& path, const std::string* pattern, int depth, Messages& m);

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::size_t slash = p.find_last_of('/');
  return slash == std::string::npos || p.size() == 1 ? p : p.substr(slash + 1);
}

bool include_all(ConfigNode& root, int depth, Messages& m) {
  std::vector<ConfigNode> out;
  for (auto& child : root.children) {
    if (strcasecmp(child.key.c_str(), "Include") != 0) {
      out.push_back(std::move(child));
      continue;
    }
    if (child.values.size() != 1 || child.values[0].type != ConfigValue::Type::String) {
      error(m, "configfile: `Include' needs exactly one string argument.");
      out.push_back(std::move(child));
      continue;
    }
    std::optional<std::string> pattern;
    for (const auto& option : child.children) {
      if (strcasecmp(option.key.c_str(), "Filter") != 0) {
        error(m, "configfile: Option `" + option.key + "' not allowed in <Include> block.");
      } else if (option.values.size() != 1 || option.values[0].type != ConfigValue::Type::String) {
        error(m, "configfile: The `" + option.key + "' option requires exactly one string argument.");
      } else {
        pattern = option.values[0].string;
      }
    }
    std::optional<ConfigNode> included = read_generic(child.values[0].string, pattern ? &*pattern : nullptr, depth + 1, m);
    if (!included) return false;
    for (auto& c : included->children) out.push_back(std::move(c));
  }
  root.children = std::move(out);
  return true;
}

std::optional<ConfigNode> read_file(const std::string& file, const std::string* pattern, int depth, Messages& m) {
  if (pattern != nullptr && fnmatch(pattern->c_str(), base_name(file).c_str(), 0) != 0) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  std::string text;
  if (in) text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) {
    error(m, "fopen (" + file + ") failed: " + std::system_category().message(errno));
    error(m, "configfile: Cannot read file `" + file + "'.");
    return std::nullopt;
  }
  std::optional<ConfigNode> root;
  try {
    root = parse_conf_text(text, file);
  } catch (const ConfSyntaxError& e) {
    error(m, e.what());
    error(m, "configfile: Cannot read file `" + file + "'.");
    return std::nullopt;
  }
  if (!include_all(*root, depth, m)) return std::nullopt;
  return root;
}

std::optional<ConfigNode> read_dir(const std::string& dir, const std::string* pattern, int depth, Messages& m) {
  DIR* dh = ::opendir(dir.c_str());
  if (dh == nullptr) {
    error(m, "configfile: opendir failed: " + std::system_category().message(errno));
    return std::nullopt;
  }
  std::vector<std::string> names;
  while (const dirent* de = ::readdir(dh)) {
    if (de->d_name[0] == '.' || de->d_name[0] == '\0') continue;
    names.push_back(dir + "/" + de->d_name);
  }
  ::closedir(dh);
  std::sort(names.begin(), names.end());
  ConfigNode root;
  for (const auto& name : names) {
    if (name.size() >= 1024) {
      error(m, "configfile: Not including `" + name + "' because its name is too long.");
      return std::nullopt;
    }
    std::optional<ConfigNode> part = read_generic(name, pattern, depth, m);
    if (!part) continue;  // already reported, or filtered out
    for (auto& c : part->children) root.children.push_back(std::move(c));
  }
  return root;
}

std::optional<ConfigNode> read_generic(const std::string& path, const std::string* pattern, int depth, Messages& m) {
  if (depth >= kMaxIncludeDepth) {
    error(m, "configfile: Not including `" + path + "' because the maximum nesting depth has been reached.");
    return std::nullopt;
  }
  wordexp_t we;
  if (::wordexp(path.c_str(), &we, WRDE_NOCMD) != 0) {
    error(m, "configfile: wordexp (" + path + ") failed.");
    return std::nullopt;
  }
  std::vector<std::string> words(we.we_wordv, we.we_wordv + we.we_wordc);
  ::wordfree(&we);
  std::sort(words.begin(), words.end());
  ConfigNode root;
  for (const auto& word : words) {
    struct stat st;
    if (::stat(word.c_str(), &st) != 0) {
      warning(m, "configfile: stat (" + word + ") failed: " + std::system_category().message(errno));
      continue;
    }
    std::optional<ConfigNode> part;
    if (S_ISREG(st.st_mode)) {
      part = read_file(word, pattern, depth, m);
    } else if (S_ISDIR(st.st_mode)) {
      part = read_dir(word, pattern, depth, m);
    } else {
      warning(m, "configfile: " + path + " is neither a file nor a directory.");
      continue;
    }
    if (!part) return std::nullopt;
    for (auto& c : part->children) root.children.push_back(std::move(c));
  }
  return root;
}

// --- what collectd does with the top-level items -----------------------------

// collectd's global options (configfile.c): each takes exactly one value.
bool is_global_option(const std::string& key) {
  static const char* const kOptions[] = {"BaseDir",      "PIDFile",      "Hostname",           "FQDNLookup",
                                         "Interval",     "ReadThreads",  "WriteThreads",       "WriteQueueLimitHigh",
                                         "WriteQueueLimitLow", "Timeout", "AutoLoadPlugin",   "CollectInternalStats",
                                         "PreCacheChain", "PostCacheChain", "MaxReadInterval"};
  for (const char* o : kOptions)
    if (strcasecmp(o, key.c_str()) == 0) return true;
  return false;
}

// A global option's value as collectd stores it.
std::string global_value(const ConfigValue& v) {
  switch (v.type) {
    case ConfigValue::Type::Number: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%lf", v.number);
      return buf;
    }
    case ConfigValue::Type::Boolean: return v.boolean ? "true" : "false";
    case ConfigValue::Type::String: break;
  }
  return v.string;
}

bool is_true(const std::string& s) {
  return strcasecmp(s.c_str(), "true") == 0 || strcasecmp(s.c_str(), "yes") == 0 || strcasecmp(s.c_str(), "on") == 0;
}

bool is_plugin(const ConfigValue& v) {
  return v.type == ConfigValue::Type::String && strcasecmp(v.string.c_str(), "xmatters") == 0;
}

}  // namespace

bool CollectdConf::failed() const {
  return std::any_of(messages.begin(), messages.end(), [](const Message& m) { return m.error; });
}

CollectdConf read_collectd_conf(const std::string& path) {
  CollectdConf conf;
  conf.base_dir = kCollectdDefaultBaseDir;
  Messages& m = conf.messages;
  std::optional<ConfigNode> root = read_generic(path, nullptr, 0, m);
  if (!root) {
    error(m, "Unable to read config file " + path + ".");
    return conf;
  }
  if (root->children.empty()) {
    error(m, "Configuration file " + path + " is empty.");
    return conf;
  }
  bool auto_load = false;
  for (const ConfigNode& item : root->children) {
    const char* key = item.key.c_str();
    if (strcasecmp(key, "LoadPlugin") == 0) {
      if (item.values.size() != 1 || item.values[0].type != ConfigValue::Type::String)
        error(m, "configfile: The `LoadPlugin' block needs exactly one string argument.");
      else if (is_plugin(item.values[0]))
        conf.loads_plugin = true;
    } else if (strcasecmp(key, "Plugin") == 0) {
      if (item.values.empty()) {
        error(m, "configfile: The `Plugin' block requires arguments.");
      } else if (item.values[0].type != ConfigValue::Type::String) {
        error(m, "configfile: First argument of `Plugin' block should be a string.");
      } else if (is_plugin(item.values[0])) {
        if (!conf.loads_plugin && auto_load) conf.loads_plugin = true;
        if (conf.loads_plugin)
          conf.blocks.push_back({item, conf.base_dir});
        else
          warning(m, "There is configuration for the `" + item.values[0].string +
                         "' plugin, but the plugin isn't loaded. Please check your configuration.");
      }
    } else if (strcasecmp(key, "PluginDir") == 0 && item.children.empty()) {
      if (item.values.size() != 1 || item.values[0].type != ConfigValue::Type::String)
        error(m, "configfile: The `PluginDir' option needs exactly one string argument.");
    } else if (item.children.empty() && is_global_option(item.key)) {
      if (item.values.size() != 1) {
        error(m, "configfile: Global option `" + item.key + "' needs exactly one argument.");
        continue;
      }
      const std::string value = global_value(item.values[0]);
      if (strcasecmp(key, "BaseDir") == 0) conf.base_dir = value;
      if (strcasecmp(key, "AutoLoadPlugin") == 0) auto_load = is_true(value);
    }
  }
  return conf;
}

}  // namespace xmatters
