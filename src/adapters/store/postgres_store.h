// The PostgreSQL state store (libpq): daemon replicas, CLIs and tick timers on several machines
// share one database, off AWS. Compare-and-set is a conditional UPDATE (or INSERT ... ON
// CONFLICT DO NOTHING for the first write) on a version column, in one transaction with the
// audit rows; the switching lease is a row locked FOR UPDATE and changed by core::lease_after,
// the rule every store applies. The schema is versioned and migrated by the tool.
#pragma once

#include <memory>
#include <string>

#include "core/store.h"

struct pg_conn;

namespace intermission::adapters {

// The schema version this build creates and reads.
inline constexpr int kPostgresSchemaVersion = 1;

class PostgresStore final : public core::Store {
 public:
  // Connects with `conninfo` (a libpq connection string or URI; empty = the PG* environment
  // variables, as psql) and brings the schema to kPostgresSchemaVersion (under an advisory
  // lock, so processes starting together migrate once). A database whose schema is newer than
  // this build is refused.
  static core::Result<std::unique_ptr<PostgresStore>> open(const std::string& conninfo);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // The schema version now in the database (what `intermission store migrate` reports).
  core::Result<int> schema_version();

  core::Result<core::EnvState> load(const std::string& environment) override;
  core::Result<std::int64_t> compare_and_set(const core::EnvState& state,
                                             std::int64_t expected_version,
                                             const std::vector<core::AuditEntry>& audit) override;
  core::Result<std::vector<core::AuditEntry>> audit(const std::string& environment,
                                                    std::size_t limit) override;
  core::Result<std::vector<std::string>> environments() override;
  core::Result<core::Lease> acquire_lease(const std::string& environment, const std::string& holder,
                                          core::Time now, core::Time until) override;
  core::Status release_lease(const std::string& environment, const std::string& holder) override;
  core::Result<std::optional<core::Lease>> lease(const std::string& environment) override;

 private:
  class Query;
  PostgresStore(pg_conn* conn, std::string where) : conn_(conn), where_(std::move(where)) {}
  // Reconnects once when the connection was lost (a server restart); errors otherwise.
  core::Status ready();
  // Runs `once`; if it failed because the connection was lost (a server restart: libpq only
  // notices at the next statement), reconnects and runs it once more. Safe for every
  // operation: a compare-and-set whose COMMIT did land before the loss gets a conflict on the
  // second run, and the caller re-reads.
  template <class F>
  auto with_reconnect(F&& once) -> decltype(once());
  core::Status migrate();
  core::Status configure();  // per-session settings (timeouts), again after a reconnect
  core::Status exec(const char* sql);
  core::Status rollback();

  pg_conn* conn_;
  std::string where_;  // host/db for messages, never the password
};

}  // namespace intermission::adapters
