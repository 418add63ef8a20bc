// The backend interface (one per load balancer kind) and the planner that turns
// (desired, observed) into idempotent steps. Backends only observe and execute; the core
// decides. A run that died half-way is finished by the next one, because planning always
// starts from what the load balancer looks like now.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/config.h"
#include "core/result.h"
#include "core/time.h"

namespace intermission::core {

// A backend whose maintenance state is one switch (a HAProxy map entry, the log backend).
struct SwitchObservation {
  bool on = false;
  std::string detail;     // what was seen, for people ("map entry prod=1")
  bool persisted = true;  // the durable copy (a map file on disk) agrees with `on`
};

// What a backend sees right now. Each backend kind adds its own alternative.
using Observation = std::variant<SwitchObservation>;

// Steps. Each is idempotent: applying it twice is the same as once.
struct SetSwitch {
  bool on = false;
  std::string reason;         // shown by backends that can (page text, map value)
  std::optional<Time> until;  // expected end, if known
};

using Step = std::variant<SetSwitch>;

// One line for people: "switch maintenance on (reason: ...)".
std::string describe(const Step& step);

// What the page should say, carried into steps that can show it.
struct PageContext {
  std::string reason;
  std::optional<Time> until;
};

// The steps that take the backend from `observed` to `desired_on`, in order; empty when it is
// already there. Pure.
std::vector<Step> plan(bool desired_on, const Observation& observed, const PageContext& page);

// One environment's load balancer. Implementations are not required to be thread-safe; a
// Backend is used by one thread at a time.
class Backend {
 public:
  virtual ~Backend() = default;
  // Reads the live state back from the load balancer (never what was last written).
  virtual Result<Observation> observe() = 0;
  // Executes one step. Must be idempotent.
  virtual Status apply(const Step& step) = 0;
  // "haproxy map /etc/haproxy/maintenance.map key prod", for logs and status.
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Makes the backend an environment's config names. Unknown types are errors.
class BackendFactory {
 public:
  virtual ~BackendFactory() = default;
  virtual Result<std::unique_ptr<Backend>> make(const EnvironmentConfig& env) = 0;
};

}  // namespace intermission::core
