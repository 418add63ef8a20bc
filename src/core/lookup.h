// Where the core learns what CodeDeploy itself says about a deployment (creator, status).
// The CodeDeploy client implements it; tests use a fake.
#pragma once

#include <string>

#include "core/ledger.h"
#include "core/result.h"

namespace intermission::core {

class DeploymentLookup {
 public:
  virtual ~DeploymentLookup() = default;
  // kNotFound when CodeDeploy does not know the id; retryable errors when it cannot answer.
  virtual Result<DeploymentInfo> get_deployment(const std::string& deployment_id) = 0;
};

}  // namespace intermission::core
