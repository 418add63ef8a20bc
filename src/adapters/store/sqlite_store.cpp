#include "adapters/store/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/state_codec.h"

namespace intermission::adapters {
namespace {

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  [[nodiscard]] int prepared() const { return rc_; }
  void bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::int64_t int64(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p),
                                      static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                        : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS environments (
  name    TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  state   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  environment   TEXT NOT NULL,
  time_ms       INTEGER NOT NULL,
  kind          TEXT NOT NULL,
  message       TEXT NOT NULL,
  who           TEXT NOT NULL,
  deployment_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_environment ON audit(environment, id);
CREATE TABLE IF NOT EXISTS leases (
  environment TEXT PRIMARY KEY,
  holder      TEXT NOT NULL,
  until_ms    INTEGER NOT NULL
);
)sql";

}  // namespace

core::Error SqliteStore::error(int rc, const std::string& what) const {
  std::string message = "sqlite " + path_ + ": " + what + ": " + sqlite3_errmsg(db_);
  const int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return core::Error::unavailable(message + " (another process holds the lock)");
  }
  if (primary == SQLITE_READONLY || primary == SQLITE_PERM || primary == SQLITE_AUTH) {
    return core::Error::permission(message);
  }
  return core::Error::unavailable(message);
}

core::Status SqliteStore::exec(const char* sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK) return error(rc, std::string("exec ") + sql);
  return {};
}

core::Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                             int busy_timeout_ms) {
  // A new database is created mode 0600 whatever the umask (the CLI may be run from any
  // shell): it holds reasons, names and deployment ids. SQLite gives its -wal and -shm files
  // the database's mode. An existing file keeps its mode; a failure here is SQLite's to report.
  if (path != ":memory:" && path.rfind("file:", 0) != 0) {
    if (const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        fd >= 0) {
      ::close(fd);
    }
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "sqlite: cannot open " + path + ": " +
                          (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
                          " (does its directory exist and is it writable?)";
    sqlite3_close(db);
    return core::Error::unavailable(std::move(message));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
  sqlite3_busy_timeout(db, busy_timeout_ms);
  // WAL lets readers (status) run while a writer commits; NORMAL sync is durable in WAL mode
  // against process crashes, which is the failure that matters here.
  // Processes opening a new database together all switch it to WAL, and SQLite answers
  // SQLITE_BUSY at once, without its busy handler, to one whose read lock blocks another's
  // switch (waiting would deadlock both). The statement has let its locks go by then: try
  // again, for as long as the busy timeout allows.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (const char* sql : {"PRAGMA journal_mode=WAL;", "PRAGMA synchronous=NORMAL;", kSchema}) {
    for (;;) {
      const int code = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
      if (code == SQLITE_OK) break;
      if ((code & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) {
        return store->error(code, std::string("exec ") + sql);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return store;
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

core::Result<core::EnvState> SqliteStore::load(const std::string& environment) {
  Statement st(db_, "SELECT version, state FROM environments WHERE name = ?1");
  if (st.prepared() != SQLITE_OK) return error(st.prepared(), "prepare load");
  st.bind(1, environment);
  const int rc = st.step();
  if (rc == SQLITE_DONE) {
    core::EnvState fresh;
    fresh.environment = environment;
    return fresh;
  }
  if (rc != SQLITE_ROW) return error(rc, "load " + environment);
  return core::decode_state(st.text(1), environment, st.int64(0));
}

core::Result<std::int64_t> SqliteStore::compare_and_set(
    const core::EnvState& state, std::int64_t expected_version,
    const std::vector<core::AuditEntry>& audit) {
  const std::string encoded = core::encode_state(state);
  if (auto st = core::check_state_size(state, encoded); !st) return st.error();
  // IMMEDIATE takes the write lock now, so the version read below cannot change before COMMIT.
  if (auto st = exec("BEGIN IMMEDIATE;"); !st) return st.error();
  auto rollback = [this](core::Error e) -> core::Result<std::int64_t> {
    (void)exec("ROLLBACK;");
    return e;
  };
  std::int64_t current = 0;
  {
    Statement st(db_, "SELECT version FROM environments WHERE name = ?1");
    st.bind(1, state.environment);
    const int rc = st.step();
    if (rc == SQLITE_ROW) {
      current = st.int64(0);
    } else if (rc != SQLITE_DONE) {
      return rollback(error(rc, "read version of " + state.environment));
    }
  }
  if (current != expected_version) {
    return rollback(core::Error::conflict(state.environment + " is at version " +
                                          std::to_string(current) + ", expected " +
                                          std::to_string(expected_version)));
  }
  const std::int64_t next = expected_version + 1;
  {
    Statement st(db_,
                 "INSERT INTO environments(name, version, state) VALUES(?1, ?2, ?3) "
                 "ON CONFLICT(name) DO UPDATE SET version = excluded.version, "
                 "state = excluded.state");
    st.bind(1, state.environment);
    st.bind(2, next);
    st.bind(3, encoded);
    if (const int rc = st.step(); rc != SQLITE_DONE) {
      return rollback(error(rc, "write " + state.environment));
    }
  }
  for (const auto& a : audit) {
    Statement st(db_,
                 "INSERT INTO audit(environment, time_ms, kind, message, who, deployment_id) "
                 "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    st.bind(1, a.environment);
    st.bind(2, core::to_epoch_ms(a.time));
    st.bind(3, a.kind);
    st.bind(4, a.message);
    st.bind(5, a.who);
    st.bind(6, a.deployment_id);
    if (const int rc = st.step(); rc != SQLITE_DONE) return rollback(error(rc, "append audit"));
  }
  if (auto st = exec("COMMIT;"); !st) return rollback(st.error());
  return next;
}

core::Result<std::vector<core::AuditEntry>> SqliteStore::audit(const std::string& environment,
                                                               std::size_t limit) {
  Statement st(db_,
               "SELECT time_ms, kind, message, who, deployment_id FROM ("
               " SELECT * FROM audit WHERE environment = ?1 ORDER BY id DESC LIMIT ?2"
               ") ORDER BY id ASC");
  if (st.prepared() != SQLITE_OK) return error(st.prepared(), "prepare audit");
  st.bind(1, environment);
  st.bind(2, static_cast<std::int64_t>(limit));
  std::vector<core::AuditEntry> out;
  int rc = 0;
  while ((rc = st.step()) == SQLITE_ROW) {
    out.push_back({core::from_epoch_ms(st.int64(0)), environment, st.text(1), st.text(2),
                   st.text(3), st.text(4)});
  }
  if (rc != SQLITE_DONE) return error(rc, "read audit of " + environment);
  return out;
}

core::Result<std::vector<std::string>> SqliteStore::environments() {
  Statement st(db_, "SELECT name FROM environments ORDER BY name");
  std::vector<std::string> out;
  int rc = 0;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(st.text(0));
  if (rc != SQLITE_DONE) return error(rc, "list environments");
  return out;
}

core::Result<core::Lease> SqliteStore::acquire_lease(const std::string& environment,
                                                    const std::string& holder, core::Time now,
                                                    core::Time until) {
  if (auto st = exec("BEGIN IMMEDIATE;"); !st) return st.error();
  auto rollback = [this](core::Error e) -> core::Result<core::Lease> {
    (void)exec("ROLLBACK;");
    return e;
  };
  std::optional<core::Lease> current;
  {
    Statement st(db_, "SELECT holder, until_ms FROM leases WHERE environment = ?1");
    st.bind(1, environment);
    const int rc = st.step();
    if (rc == SQLITE_ROW) {
      current = core::Lease{st.text(0), core::from_epoch_ms(st.int64(1))};
    } else if (rc != SQLITE_DONE) {
      return rollback(error(rc, "read lease of " + environment));
    }
  }
  const core::Lease next = core::lease_after(current, holder, now, until);
  if (next.holder == holder) {
    Statement st(db_,
                 "INSERT INTO leases(environment, holder, until_ms) VALUES(?1, ?2, ?3) "
                 "ON CONFLICT(environment) DO UPDATE SET holder = excluded.holder, "
                 "until_ms = excluded.until_ms");
    st.bind(1, environment);
    st.bind(2, next.holder);
    st.bind(3, core::to_epoch_ms(next.until));
    if (const int rc = st.step(); rc != SQLITE_DONE) {
      return rollback(error(rc, "write lease of " + environment));
    }
  }
  if (auto st = exec("COMMIT;"); !st) return rollback(st.error());
  return next;
}

core::Result<std::optional<core::Lease>> SqliteStore::lease(const std::string& environment) {
  Statement st(db_, "SELECT holder, until_ms FROM leases WHERE environment = ?1");
  if (st.prepared() != SQLITE_OK) return error(st.prepared(), "prepare lease");
  st.bind(1, environment);
  const int rc = st.step();
  if (rc == SQLITE_DONE) return std::optional<core::Lease>();
  if (rc != SQLITE_ROW) return error(rc, "read lease of " + environment);
  return std::optional<core::Lease>(core::Lease{st.text(0), core::from_epoch_ms(st.int64(1))});
}

core::Status SqliteStore::release_lease(const std::string& environment, const std::string& holder) {
  Statement st(db_, "DELETE FROM leases WHERE environment = ?1 AND holder = ?2");
  if (st.prepared() != SQLITE_OK) return error(st.prepared(), "prepare release");
  st.bind(1, environment);
  st.bind(2, holder);
  if (const int rc = st.step(); rc != SQLITE_DONE) return error(rc, "release lease of " + environment);
  return {};
}

}  // namespace intermission::adapters
