#include "adapters/aws/codedeploy_lookup.h"

#include <boost/json.hpp>

namespace intermission::adapters::aws {

core::Result<core::DeploymentInfo> parse_get_deployment(const boost::json::value& reply,
                                                        const std::string& id) {
  const auto* o = reply.if_object();
  const auto* info = o != nullptr ? o->if_contains("deploymentInfo") : nullptr;
  if (info == nullptr || !info->is_object()) {
    return core::Error::unavailable("codedeploy GetDeployment " + id + ": no deploymentInfo");
  }
  const auto& d = info->get_object();
  auto str = [&d](const char* key) -> std::optional<std::string> {
    const auto* v = d.if_contains(key);
    if (v == nullptr || !v->is_string()) return std::nullopt;
    return std::string(v->get_string());
  };
  core::DeploymentInfo out;
  out.id = str("deploymentId").value_or(id);
  if (auto s = str("status")) out.status = core::parse_deployment_status(*s);
  out.creator = str("creator");
  if (const auto* rb = d.if_contains("rollbackInfo"); rb != nullptr && rb->is_object()) {
    if (const auto* t = rb->get_object().if_contains("rollbackTriggeringDeploymentId");
        t != nullptr && t->is_string()) {
      out.rollback_of = std::string(t->get_string());
    }
  }
  return out;
}

core::Result<core::DeploymentInfo> CodeDeployLookup::get_deployment(
    const std::string& deployment_id) {
  auto r = client_.json("GetDeployment", boost::json::object{{"deploymentId", deployment_id}});
  if (!r) return r.error();
  return parse_get_deployment(*r, deployment_id);
}

}  // namespace intermission::adapters::aws
