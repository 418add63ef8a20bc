// The state store in a Kubernetes cluster: replicas of the daemon share it with no database.
// Each environment's state is one ConfigMap (its ledger and its audit trail together, so one
// write is atomic) written with compare-and-set on metadata.resourceVersion: a 409 is a
// kConflict, re-read and re-decided, never an overwrite. The switching lease of each
// environment is a coordination.k8s.io/v1 Lease kept as client-go's leader election keeps it
// (holderIdentity, leaseDurationSeconds, acquireTime, renewTime, leaseTransitions).
//
// Objects, in the store's namespace, named by kube_object_name(environment):
//   ConfigMap: labels app.kubernetes.io/managed-by=intermission,
//              app.kubernetes.io/component=ledger; annotation intermission/environment = the
//              name; data: version (decimal), state (core/state_codec.h JSON), audit (a JSON
//              array of the newest kMaxKubeAuditEntries entries, oldest first).
//   Lease:     labels managed-by as above, app.kubernetes.io/component=switching-lease; the
//              same annotation. A released lease has no holderIdentity.
// RBAC (exactly the calls made): configmaps get, list, create, update; leases (API group
// coordination.k8s.io) get, create, update.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "adapters/kube/api.h"
#include "core/log.h"
#include "core/store.h"

namespace intermission::adapters {

// A DNS-1123 name (lowercase letters, digits and '-', at most 63 characters, a letter or digit
// at each end) for the objects of `environment`: "intermission-<slug>-<hash>", where the slug
// is the name made safe and the hash (FNV-1a, 32 bits, hex) tells apart names that make the
// same slug ("Prod" and "prod"). Deterministic: every process finds the same objects.
std::string kube_object_name(const std::string& environment);

// A time as Kubernetes writes a MicroTime: "2026-12-02T05:38:34.123000Z".
std::string kube_micro_time(core::Time t);

// The audit entries kept in an environment's ConfigMap (the oldest go first).
inline constexpr std::size_t kMaxKubeAuditEntries = 500;
// The most a ConfigMap's data may hold (keys and values): Kubernetes refuses over 1 MiB; the
// margin leaves room for metadata and our count's blind spots.
inline constexpr std::size_t kKubeConfigMapBudget = 1024 * 1024 - 32 * 1024;

class KubeStore final : public core::Store {
 public:
  // `api` is owned; `log` must outlive the store. Thread-safe (requests are serialized).
  KubeStore(std::unique_ptr<kube::Api> api, std::string namespace_name, core::Logger& log);

  core::Result<core::EnvState> load(const std::string& environment) override;
  core::Result<std::int64_t> compare_and_set(const core::EnvState& state,
                                             std::int64_t expected_version,
                                             const std::vector<core::AuditEntry>& audit) override;
  core::Result<std::vector<core::AuditEntry>> audit(const std::string& environment,
                                                    std::size_t limit) override;
  core::Result<std::vector<std::string>> environments() override;
  core::Result<core::Lease> acquire_lease(const std::string& environment,
                                          const std::string& holder, core::Time now,
                                          core::Time until) override;
  core::Status release_lease(const std::string& environment, const std::string& holder) override;
  core::Result<std::optional<core::Lease>> lease(const std::string& environment) override;

 private:
  struct Stored;
  struct StoredLease;
  core::Result<std::optional<Stored>> get_configmap(const std::string& environment);
  core::Result<std::optional<StoredLease>> get_lease(const std::string& environment);
  // A failed answer as an error naming the store and who asked (kubeconfig, context, user).
  core::Error refused(const kube::Response& r, const std::string& method,
                      const std::string& path) const;
  core::Result<kube::Response> call(const std::string& method, const std::string& path,
                                    const std::string& body = "");
  [[nodiscard]] std::string configmap_path(const std::string& environment) const;
  [[nodiscard]] std::string lease_path(const std::string& environment) const;

  std::mutex mutex_;
  std::unique_ptr<kube::Api> api_;
  std::string namespace_;
  core::Logger& log_;
};

}  // namespace intermission::adapters
