// Chooses a backend implementation by the `type` of an environment's backend config, and
// checks each type's settings when the config is loaded (so mistakes surface at start-up
// with their line, not at the first deployment).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "adapters/config/config_error.h"
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

class DefaultBackendFactory final : public core::BackendFactory {
 public:
  // `clock` must outlive the factory and the backends it makes.
  explicit DefaultBackendFactory(const core::Clock& clock) : clock_(clock) {}
  core::Result<std::unique_ptr<core::Backend>> make(const core::EnvironmentConfig& env) override;

 private:
  const core::Clock& clock_;
};

}  // namespace intermission::adapters
