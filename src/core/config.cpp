#include "core/config.h"

namespace intermission::core {

const ConfigNode* ConfigNode::find(const std::string& key) const {
  if (kind != Kind::kMap) return nullptr;
  const auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

const EnvironmentConfig* Config::environment(const std::string& name) const {
  const auto it = environments.find(name);
  return it == environments.end() ? nullptr : &it->second;
}

}  // namespace intermission::core
