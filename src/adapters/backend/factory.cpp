#include "adapters/backend/factory.h"

#include <set>

#include "adapters/backend/log_backend.h"
#include "adapters/haproxy/haproxy_backend.h"
#include "adapters/haproxy/protocol.h"
#include "adapters/config/yaml_config.h"

namespace intermission::adapters {
namespace {

// Checks one setting's value; returns a message, or empty when it is fine.
using Check = std::string (*)(const std::string&);

std::string any_value(const std::string&) { return ""; }
std::string haproxy_token(const std::string& v) {
  return haproxy::safe_token(v) ? ""
                                : "'" + v + "' must not contain spaces, quotes, ';', '\\' or '#'";
}
std::string duration_value(const std::string& v) {
  return core::parse_duration(v) ? "" : "'" + v + "' is not a duration (5s, 500ms)";
}

struct Setting {
  std::string name;
  bool required;
  Check check = any_value;
};

// The settings each backend type takes (besides `type`).
const std::map<std::string, std::vector<Setting>>& schema() {
  static const std::map<std::string, std::vector<Setting>> kSchema = {
      {"log", {{"path", true}}},
      {"haproxy",
       {{"socket", true},
        {"map", true, haproxy_token},
        {"key", false, haproxy_token},
        {"value", false, haproxy_token},
        {"timeout", false, duration_value}}},
  };
  return kSchema;
}

std::string setting(const core::BackendConfig& b, const std::string& name) {
  const core::ConfigNode* n = b.settings.find(name);
  return n != nullptr ? n->scalar : "";
}

}  // namespace

const std::vector<std::string>& backend_types() {
  static const std::vector<std::string> kTypes = [] {
    std::vector<std::string> out;
    for (const auto& [type, settings] : schema()) out.push_back(type);
    return out;
  }();
  return kTypes;
}

std::vector<ConfigError> check_backend_config(const core::BackendConfig& backend,
                                              const std::string& field, const std::string& file) {
  std::vector<ConfigError> errors;
  std::string known;
  for (const auto& t : backend_types()) known += (known.empty() ? "" : ", ") + t;
  const auto it = schema().find(backend.type);
  if (backend.type.empty()) {
    errors.push_back({backend.where, field + ".type", "missing (one of: " + known + ")"});
    return errors;
  }
  if (it == schema().end()) {
    const core::ConfigNode* t = backend.settings.find("type");
    errors.push_back({t != nullptr ? t->where : backend.where, field + ".type",
                      "'" + backend.type + "' is not a known backend (one of: " + known + ")"});
    return errors;
  }
  std::set<std::string> allowed = {"type"};
  for (const auto& s : it->second) {
    allowed.insert(s.name);
    const core::ConfigNode* n = backend.settings.find(s.name);
    if (n == nullptr && s.required) {
      errors.push_back({backend.where, field + "." + s.name, "missing (required by type " +
                                                                 backend.type + ")"});
    } else if (n != nullptr && n->kind != core::ConfigNode::Kind::kScalar) {
      errors.push_back({n->where, field + "." + s.name, "must be a single value"});
    } else if (n != nullptr) {
      if (std::string problem = s.check(n->scalar); !problem.empty()) {
        errors.push_back({n->where, field + "." + s.name, problem});
      }
    }
  }
  for (const auto& [key, node] : backend.settings.map) {
    if (!allowed.contains(key)) {
      errors.push_back({node.where, field + "." + key,
                        "unknown setting for backend type " + backend.type});
    }
  }
  (void)file;
  return errors;
}

core::Result<std::unique_ptr<core::Backend>> DefaultBackendFactory::make(
    const core::EnvironmentConfig& env) {
  const core::BackendConfig& b = env.backend;
  if (b.type == "log") {
    return std::unique_ptr<core::Backend>(std::make_unique<LogBackend>(
        resolve_path(b.where.file, setting(b, "path")), env.name, clock_));
  }
  if (b.type == "haproxy") {
    haproxy::HaproxySettings s;
    s.socket = setting(b, "socket");
    if (!s.socket.empty() && s.socket.front() != '/' && s.socket.find(':') == std::string::npos) {
      s.socket = resolve_path(b.where.file, s.socket);
    }
    s.map = setting(b, "map");
    s.key = setting(b, "key").empty() ? env.name : setting(b, "key");
    if (!setting(b, "value").empty()) s.value = setting(b, "value");
    if (auto t = core::parse_duration(setting(b, "timeout"))) {
      s.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
    }
    if (!haproxy::safe_token(s.key)) {
      return core::Error::config("environment " + env.name + ": '" + s.key +
                                 "' cannot be a HAProxy map key; set backend.key");
    }
    return std::unique_ptr<core::Backend>(std::make_unique<haproxy::HaproxyBackend>(s));
  }
  return core::Error::config("environment " + env.name + ": unknown backend type '" + b.type +
                             "'");
}

}  // namespace intermission::adapters
