// The `intermission` command line: parses arguments, wires the adapters the config names,
// and runs one command. Exceptions stop here.
#pragma once

#include <cstdlib>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace intermission::app {

// Exit codes, documented in `intermission --help` and the README.
enum ExitCode : int {
  kExitOk = 0,        // done (an input that was acknowledged and ignored is also done)
  kExitFailed = 1,    // the store or a backend failed; trying again may help
  kExitUsage = 2,     // the command line is wrong
  kExitConfig = 3,    // the configuration is invalid
  kExitBadInput = 4,  // the input event could not be read or is not JSON
};

struct CliIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  // Environment lookup (so tests can control INTERMISSION_CONFIG, USER, ...).
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Runs the small page-server binary in this process's place with these arguments (this
  // binary's, after its name); returns only when it cannot. Empty: `page` runs in-process.
  std::function<void(const std::vector<std::string>&)> exec_page = {};
};

// The process environment, as CliIo::getenv reads it in both binaries' main().
inline std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

// `args` excludes the program name.
int run_cli(const std::vector<std::string>& args, CliIo& io);

}  // namespace intermission::app
