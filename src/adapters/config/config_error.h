// A configuration mistake with the file, line, column and field it is about.
#pragma once

#include <string>

#include "core/config.h"

namespace intermission::adapters {

struct ConfigError {
  core::SourceLocation where;
  std::string field;  // dotted path: "environments.prod.backend.socket"
  std::string message;

  // "config.yaml:12:5: environments.prod.max_duration: '5' is not a duration (...)"
  [[nodiscard]] std::string to_string() const;
};

}  // namespace intermission::adapters
