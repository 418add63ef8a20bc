// Loads the YAML configuration file into core::Config, collecting every mistake with the file,
// line, column and field, so `intermission check-config` can report them all at once.
#pragma once

#include <string>
#include <vector>

#include "adapters/config/config_error.h"
#include "core/config.h"
#include "core/result.h"

namespace intermission::adapters {

struct LoadedConfig {
  core::Config config;
  std::vector<ConfigError> errors;  // empty = valid
};

// Parses YAML text; `file` names it in errors and anchors relative paths.
LoadedConfig parse_config(const std::string& text, const std::string& file);

// Reads and parses the file. A file that cannot be read is one error at line 0.
LoadedConfig load_config_file(const std::string& path);

// An http:// or https:// URL with a host and no spaces or user info: what a notification
// target may be sent to (checked at load for `url`, at start for url_file and url_env).
bool is_notify_url(const std::string& url);

// Resolves `path` against the directory of the config file (absolute paths are kept).
std::string resolve_path(const std::string& config_file, const std::string& path);

}  // namespace intermission::adapters
