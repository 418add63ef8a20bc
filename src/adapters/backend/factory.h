// Chooses a backend implementation by the `type` of an environment's backend config, and
// checks each type's settings when the config is loaded (so mistakes surface at start-up
// with their line, not at the first deployment).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/aws/aws_context.h"
#include "adapters/config/config_error.h"
#include "adapters/nginx/nginx_backend.h"
#include "adapters/kube/api.h"
#include "core/backend.h"
#include "core/config.h"
#include "core/time.h"

namespace intermission::adapters {

// The backend types this build knows.
const std::vector<std::string>& backend_types();

// Every mistake in `backend` (unknown type, missing or unknown settings). `field` is the
// dotted path of the backend block, for messages.
std::vector<ConfigError> check_backend_config(const core::BackendConfig& backend,
                                              const std::string& field, const std::string& file);

// Builds the nginx backend's page files (file mode) the way the page server builds its
// responses; given by the front end (app/nginx_page.h), since adapters do not use page/.
using NginxPageBuilder =
    std::function<core::Result<nginx::PageFiles>(const nginx::PageSource&, const core::SetSwitch&)>;

// The longest one step of a backend can wait: a health wait (elb-classic; alb in
// target-group mode), the nginx probe, a HAProxy runtime command, the log backend's delay.
struct BackendWait {
  core::Duration wait{0};
  std::string setting;                     // "health_timeout"
  const core::ConfigNode* node = nullptr;  // where it is set; null: the type's default
};

// The wait of `backend`, or nullopt when its steps do not wait (or its settings are already
// reported as mistakes by check_backend_config). The result points into `backend`.
std::optional<BackendWait> longest_wait(const core::BackendConfig& backend);

// Opens the Kubernetes API a `kubernetes` backend names (its kubeconfig and context settings,
// empty = kubectl's order: KUBECONFIG, ~/.kube/config, the pod's service account).
using KubeConnector = std::function<core::Result<std::unique_ptr<kube::Api>>(
    const std::string& kubeconfig, const std::string& context)>;

class DefaultBackendFactory final : public core::BackendFactory {
 public:
  // `clock` and `aws` (may be null when no environment uses AWS) must outlive the factory
  // and the backends it makes. Without `nginx_pages`, an nginx backend with `page_dir` is a
  // config error; `kube` may be empty when no environment uses Kubernetes.
  DefaultBackendFactory(const core::Clock& clock, aws::AwsContext* aws,
                        NginxPageBuilder nginx_pages = nullptr, KubeConnector kube = {})
      : clock_(clock), aws_(aws), nginx_pages_(std::move(nginx_pages)), kube_(std::move(kube)) {}
  core::Result<std::unique_ptr<core::Backend>> make(const core::EnvironmentConfig& env) override;

 private:
  const core::Clock& clock_;
  aws::AwsContext* aws_;
  NginxPageBuilder nginx_pages_;
  KubeConnector kube_;
};

// True when some environment needs AWS (its backend type talks to AWS).
bool uses_aws(const core::Config& config);

}  // namespace intermission::adapters
