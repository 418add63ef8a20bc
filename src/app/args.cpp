#include "app/args.h"

namespace intermission::app {

std::optional<std::string> Args::option(const std::string& name) const {
  const auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

core::Result<Args> parse_args(const std::vector<std::string>& argv, const ArgSpec& spec) {
  Args out;
  bool only_positional = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positional || a.size() < 2 || a.rfind("--", 0) != 0) {
      if (!only_positional && a.size() >= 2 && a[0] == '-' && a != "-") {
        return core::Error::invalid_input("unknown option " + a);
      }
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    const auto eq = a.find('=');
    const std::string name = a.substr(0, eq);
    if (spec.flags.contains(name)) {
      if (eq != std::string::npos) return core::Error::invalid_input(name + " takes no value");
      out.flags.insert(name);
    } else if (spec.options.contains(name)) {
      if (eq != std::string::npos) {
        out.options[name] = a.substr(eq + 1);
      } else if (i + 1 < argv.size()) {
        out.options[name] = argv[++i];
      } else {
        return core::Error::invalid_input(name + " needs a value");
      }
    } else {
      return core::Error::invalid_input("unknown option " + name);
    }
  }
  if (out.positional.size() < spec.min_positional) {
    return core::Error::invalid_input("missing argument");
  }
  if (out.positional.size() > spec.max_positional) {
    return core::Error::invalid_input("unexpected argument '" +
                                      out.positional[spec.max_positional] + "'");
  }
  return out;
}

}  // namespace intermission::app
