// collectd-xmatters: the operator's command (collectd-xmatters(1)).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "command/command.h"

namespace xmatters::command {

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> table = {
      {"check", "", "validate the plugin's configuration as collectd's start would", check},
      {"status", "", "health per integration (exit status as a Nagios plugin)", status},
      {"outages", "[--integration N] [MATCHER...]", "open outages", outages},
      {"queue", "[--integration N]", "undelivered events", queue},
      {"dead-letters", "[--integration N]", "dead letters", dead_letters},
      {"resend", "(EVENT_ID... | --all) [--integration N] [--include-cleared]", "deliver dead letters again", resend},
      {"test", "[--integration N] [--no-clear]", "page through the running plugin (outage, then clear)", test},
      {"silence",
       "add MATCHER... (--duration D | --end TIME) [--start TIME] --comment TEXT [--author NAME] [--integration N]",
       "hold back the pages of what matches, until the end", silence},
      {"silence", "list [--expired]", "active and pending silences (--expired: and those ended in 5 days)", silence},
      {"silence", "expire ID...", "end silences now", silence},
  };
  return table;
}

std::string take_integration(Args& args) {
  std::string name;
  for (std::size_t i = 0; i < args.size();) {
    const std::string& a = args[i];
    std::string value;
    if (a == "--integration") {
      if (i + 1 >= args.size()) throw UsageError("--integration needs a name");
      value = args[i + 1];
      args.erase(args.begin() + i, args.begin() + i + 2);
    } else if (a.rfind("--integration=", 0) == 0) {
      value = a.substr(std::strlen("--integration="));
      args.erase(args.begin() + i);
    } else {
      ++i;
      continue;
    }
    if (!name.empty()) throw UsageError("--integration is given more than once");
    if (value.empty()) throw UsageError("--integration needs a name");
    name = value;
  }
  return name;
}

void no_more_args(const Args& args) {
  if (!args.empty()) throw UsageError("unexpected argument '" + args.front() + "'");
}

namespace {

void usage(std::FILE* out) {
  std::fprintf(out, "usage: collectd-xmatters [--config FILE] [--spool-dir DIR] [--json] COMMAND [ARGS]\n");
  for (const auto& v : verbs()) {
    const std::string head = std::string(v.name) + (*v.usage ? " " : "") + v.usage;
    std::fprintf(out, "  %-40s %s\n", head.c_str(), v.summary);
  }
  std::fprintf(out, "See collectd-xmatters(1).\n");
}

int run(int argc, char** argv) {
  Options options;
  int i = 1;
  // Global options come before the verb; --json is taken after it too.
  const auto option_value = [&](const char* name, std::string& into) -> bool {
    const std::string a = argv[i];
    const std::string eq = std::string(name) + "=";
    if (a == name) {
      if (i + 1 >= argc) throw UsageError(std::string(name) + " needs a value");
      into = argv[++i];
    } else if (a.rfind(eq, 0) == 0) {
      into = a.substr(eq.size());
    } else {
      return false;
    }
    if (into.empty()) throw UsageError(std::string(name) + " needs a value");
    return true;
  };
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      options.json = true;
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("collectd-xmatters %s\n", XMATTERS_VERSION);
      return 0;
    } else if (option_value("--config", options.config) || option_value("--spool-dir", options.spool_dir)) {
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'");
    } else {
      break;
    }
  }
  if (i >= argc) throw UsageError("no command given (see --help)");
  const std::string name = argv[i++];
  Args args;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0)
      options.json = true;
    else
      args.emplace_back(argv[i]);
  }
  for (const auto& v : verbs())
    if (name == v.name) return v.run(options, args);
  throw UsageError("unknown command '" + name + "' (see --help)");
}

}  // namespace
}  // namespace xmatters::command

int main(int argc, char** argv) {
  using namespace xmatters::command;
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "collectd-xmatters: %s\n", e.what());
    return 2;
  } catch (const Failure& e) {
    std::fprintf(stderr, "collectd-xmatters: %s\n", e.what());
    return e.status();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "collectd-xmatters: %s\n", e.what());
    return 3;
  }
}
