// The CodeDeploy side of the core's DeploymentLookup: GetDeployment gives a deployment's
// creator (autoscaling deployments never raise the page) and its status (a tick closes
// deployments whose "finished" notification was lost).
#pragma once

#include "adapters/aws/aws_client.h"
#include "core/lookup.h"

namespace intermission::adapters::aws {

// Reads GetDeployment's reply ({"deploymentInfo": {...}}). Pure.
core::Result<core::DeploymentInfo> parse_get_deployment(const boost::json::value& reply,
                                                        const std::string& id);

class CodeDeployLookup final : public core::DeploymentLookup {
 public:
  explicit CodeDeployLookup(AwsClient& client) : client_(client) {}
  core::Result<core::DeploymentInfo> get_deployment(const std::string& deployment_id) override;

 private:
  AwsClient& client_;
};

}  // namespace intermission::adapters::aws
