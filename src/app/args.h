// Command-line arguments: positionals and --options (--name value, --name=value, or a flag).
// Small on purpose; each command declares what it accepts and gets clear usage errors.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"

namespace intermission::app {

struct ArgSpec {
  std::set<std::string> options;  // take a value: "--reason"
  std::set<std::string> flags;    // take none: "--json"
  std::size_t min_positional = 0;
  std::size_t max_positional = 0;
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::set<std::string> flags;

  [[nodiscard]] bool flag(const std::string& name) const { return flags.contains(name); }
  [[nodiscard]] std::optional<std::string> option(const std::string& name) const;
};

// Fails (kInvalidInput) with a message for the user on anything `spec` does not allow.
core::Result<Args> parse_args(const std::vector<std::string>& argv, const ArgSpec& spec);

}  // namespace intermission::app
