// The state store: per-environment state with compare-and-set on a version, and an
// append-only audit trail written with it. SQLite locally, PostgreSQL for replicas on one's
// own machines, DynamoDB in AWS, ConfigMaps and Leases in a Kubernetes cluster.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ledger.h"
#include "core/result.h"

namespace intermission::core {

struct Lease {
  std::string holder;
  Time until;
};

// The lease in force after `holder` asks for it until `until` at `now`, given the `current`
// one: the same rule for every store, which applies it atomically.
inline Lease lease_after(const std::optional<Lease>& current, const std::string& holder, Time now,
                         Time until) {
  if (!current || current->until <= now || current->holder == holder) return Lease{holder, until};
  return *current;
}

class Store {
 public:
  virtual ~Store() = default;
  // The stored state of `environment`, or a fresh one (version 0) if none was ever stored.
  virtual Result<EnvState> load(const std::string& environment) = 0;
  // Writes `state` with version expected_version + 1 if the stored version is still
  // `expected_version` (0 = not stored yet), and appends `audit`: atomically, except in
  // DynamoDB, which writes the state first and may lose (and logs) the audit lines if their
  // write fails after it (docs/ledger.md). Returns the new
  // version, or kConflict when another writer got there first (re-read and decide again;
  // never write blindly).
  virtual Result<std::int64_t> compare_and_set(const EnvState& state,
                                               std::int64_t expected_version,
                                               const std::vector<AuditEntry>& audit) = 0;
  // The newest `limit` audit entries of `environment`, oldest first.
  virtual Result<std::vector<AuditEntry>> audit(const std::string& environment,
                                                std::size_t limit) = 0;
  // Every environment that has stored state.
  virtual Result<std::vector<std::string>> environments() = 0;

  // The switching lease of `environment`: several processes (daemon replicas, the CLI, a
  // Lambda) may share one store, and only the lease holder touches the environment's backend.
  // Takes the lease for `holder` until `until` when nobody holds it or the holder's lease has
  // run out at `now`, and renews it when `holder` already has it; atomically. Returns the lease
  // in force afterwards: `holder`'s when taken, else the other holder's.
  virtual Result<Lease> acquire_lease(const std::string& environment, const std::string& holder,
                                      Time now, Time until) = 0;
  // Gives the lease up if `holder` has it; does nothing otherwise.
  virtual Status release_lease(const std::string& environment, const std::string& holder) = 0;
  // The lease as stored (it may have run out), or nullopt when none is held.
  virtual Result<std::optional<Lease>> lease(const std::string& environment) = 0;
};

}  // namespace intermission::core
