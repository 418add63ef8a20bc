// The embedded state store: one SQLite file (WAL mode) shared safely by any number of
// processes on one machine. Compare-and-set runs in a BEGIN IMMEDIATE transaction, so two
// writers never both win.
#pragma once

#include <memory>
#include <string>

#include "core/store.h"

struct sqlite3;

namespace intermission::adapters {

class SqliteStore final : public core::Store {
 public:
  // Opens (creating if needed) the database at `path` and its tables. The directory must
  // exist. Waits up to `busy_timeout_ms` for another process's lock before reporting
  // kUnavailable.
  static core::Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                         int busy_timeout_ms = 10'000);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

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
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  core::Status exec(const char* sql);
  core::Error error(int rc, const std::string& what) const;

  sqlite3* db_;
  std::string path_;
};

}  // namespace intermission::adapters
