#include "adapters/store/postgres_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>

#include "core/state_codec.h"

namespace intermission::adapters {
namespace {

// Migrations, in order; migration N brings the schema from version N-1 to N. Never edit one
// that has shipped: add the next.
constexpr const char* kMigrations[] = {
    // 1: the ledger, the audit trail and the switching leases.
    R"sql(
CREATE TABLE intermission_environments (
  name    text PRIMARY KEY,
  version bigint NOT NULL,
  state   text NOT NULL
);
CREATE TABLE intermission_audit (
  id            bigserial PRIMARY KEY,
  environment   text NOT NULL,
  time_ms       bigint NOT NULL,
  kind          text NOT NULL,
  message       text NOT NULL,
  who           text NOT NULL,
  deployment_id text NOT NULL
);
CREATE INDEX intermission_audit_by_environment ON intermission_audit (environment, id);
CREATE TABLE intermission_leases (
  environment text PRIMARY KEY,
  holder      text NOT NULL,
  until_ms    bigint NOT NULL
);
)sql",
};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion);

// Any fixed number: the advisory lock that serializes migrations across processes.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7363418412)";

// A libpq error as ours, by SQLSTATE class (PostgreSQL Appendix A).
core::Error to_error(const std::string& where, const std::string& what, const char* sqlstate,
                     const std::string& message) {
  const std::string state = sqlstate != nullptr ? sqlstate : "";
  std::string m = "postgresql " + where + ": " + what + ": " + message;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  if (!state.empty()) m += " (SQLSTATE " + state + ")";
  const std::string cls = state.substr(0, std::min<std::size_t>(2, state.size()));
  if (state == "40001" || state == "40P01" || state == "23505") return core::Error::conflict(m);
  if (cls == "28" || state == "42501") return core::Error::permission(m);
  if (cls == "42" || cls == "3D" || cls == "3F") return core::Error::config(m);
  return core::Error::unavailable(m);  // 08 connection, 53 resources, 57 shutdown, ...
}

// Host and database of a connection, for messages (never the password).
std::string describe(PGconn* c) {
  const char* host = PQhost(c);
  const char* db = PQdb(c);
  return std::string(host != nullptr && *host != '\0' ? host : "local") + "/" +
         (db != nullptr ? db : "?");
}

}  // namespace

// One statement with text parameters; owns its PGresult.
class PostgresStore::Query {
 public:
  Query(PostgresStore& s, const char* sql, std::vector<std::string> params = {})
      : params_(std::move(params)) {
    std::vector<const char*> values;
    for (const auto& p : params_) values.push_back(p.c_str());
    result_ = PQexecParams(s.conn_, sql, static_cast<int>(values.size()), nullptr, values.data(),
                           nullptr, nullptr, 0);
    const ExecStatusType st = PQresultStatus(result_);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      error_ =
          to_error(s.where_, sql_name(sql),
                   result_ != nullptr ? PQresultErrorField(result_, PG_DIAG_SQLSTATE) : nullptr,
                   PQerrorMessage(s.conn_));
    }
  }
  ~Query() { PQclear(result_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  [[nodiscard]] const std::optional<core::Error>& error() const { return error_; }
  [[nodiscard]] int rows() const { return PQntuples(result_); }
  [[nodiscard]] long affected() const { return std::atol(PQcmdTuples(result_)); }
  [[nodiscard]] std::string text(int row, int col) const {
    return std::string(PQgetvalue(result_, row, col),
                       static_cast<std::size_t>(PQgetlength(result_, row, col)));
  }
  [[nodiscard]] std::int64_t int64(int row, int col) const {
    return std::strtoll(PQgetvalue(result_, row, col), nullptr, 10);
  }

 private:
  // The statement's first words, for messages.
  static std::string sql_name(const char* sql) {
    std::string s(sql);
    s.erase(0, s.find_first_not_of(" \n"));
    return s.substr(0, std::min<std::size_t>(s.find_first_of("(\n"), 48));
  }
  std::vector<std::string> params_;
  PGresult* result_ = nullptr;
  std::optional<core::Error> error_;
};

core::Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& conninfo) {
  // The options the connection string itself gives. As libpq reads `dbname` (expand_dbname),
  // a string with neither '=' nor a URI prefix is a bare database name, as psql takes it.
  // libpq's message for a string it cannot parse may quote part of it: not shown when the
  // string holds a password.
  const bool bare_name = conninfo.find('=') == std::string::npos &&
                         conninfo.rfind("postgres://", 0) != 0 &&
                         conninfo.rfind("postgresql://", 0) != 0;
  char* parse_error = nullptr;
  PQconninfoOption* given = PQconninfoParse(bare_name ? "" : conninfo.c_str(), &parse_error);
  if (given == nullptr) {
    std::string message = parse_error != nullptr ? parse_error : "out of memory";
    PQfreemem(parse_error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    std::string lower = conninfo;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower.find("password") != std::string::npos || lower.find('@') != std::string::npos) {
      message = "libpq's message is left out: it may quote the password";
    }
    return core::Error::config(
        "postgresql: store.connection is not a libpq connection string or URI (" + message + ")");
  }
  bool timeout_given =
      std::getenv("PGCONNECT_TIMEOUT") != nullptr || std::getenv("PGSERVICE") != nullptr;
  for (const PQconninfoOption* o = given; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view key = o->keyword;
    if (key == "connect_timeout" || key == "service") timeout_given = true;
  }
  PQconninfoFree(given);
  // A connect timeout of ours unless one is given: by the string, PGCONNECT_TIMEOUT, or a
  // service (pg_service.conf fills only what nothing else set, so ours would win over it).
  const char* keys[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"10", conninfo.c_str(), nullptr};
  const int first = timeout_given ? 1 : 0;
  PGconn* conn = PQconnectdbParams(keys + first, values + first, /*expand_dbname=*/1);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    PQfinish(conn);
    return core::Error::unavailable("postgresql: cannot connect (" + message +
                                    "); store.connection or the PG* variables name the server");
  }
  // NOTICEs ("relation ... already exists, skipping") are for people at psql, not our logs.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  std::unique_ptr<PostgresStore> store(new PostgresStore(conn, describe(conn)));
  if (auto st = store->configure(); !st) return st.error();
  if (auto st = store->migrate(); !st) return st.error();
  return store;
}

PostgresStore::~PostgresStore() { PQfinish(conn_); }

core::Status PostgresStore::ready() {
  if (PQstatus(conn_) == CONNECTION_OK) return {};
  PQreset(conn_);
  if (PQstatus(conn_) == CONNECTION_OK) return configure();
  std::string message = PQerrorMessage(conn_);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return core::Error::unavailable("postgresql " + where_ + ": connection lost and not back (" +
                                  message + ")");
}

template <class F>
auto PostgresStore::with_reconnect(F&& once) -> decltype(once()) {
  if (auto st = ready(); !st) return st.error();
  auto r = once();
  if (r.ok() || PQstatus(conn_) == CONNECTION_OK) return r;
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK || !configure().ok()) return r;
  return once();
}

core::Status PostgresStore::configure() {
  // A peer stuck inside a transaction must not hold us forever (the Lambda's deadline, the
  // daemon's handler thread): waits end as errors that a retry may fix (SQLSTATE 55P03, 57014).
  if (auto st = exec("SET lock_timeout = '10s'"); !st) return st;
  return exec("SET statement_timeout = '30s'");
}

core::Status PostgresStore::exec(const char* sql) {
  Query q(*this, sql);
  if (q.error()) return *q.error();
  return {};
}

core::Status PostgresStore::rollback() { return exec("ROLLBACK"); }

core::Result<int> PostgresStore::schema_version() {
  if (auto st = ready(); !st) return st.error();
  Query exists(*this, "SELECT to_regclass('intermission_schema') IS NOT NULL");
  if (exists.error()) return *exists.error();
  if (exists.text(0, 0) != "t") return 0;
  Query v(*this, "SELECT version FROM intermission_schema");
  if (v.error()) return *v.error();
  return v.rows() == 0 ? 0 : static_cast<int>(v.int64(0, 0));
}

core::Status PostgresStore::migrate() {
  // A schema already at this version needs no DDL and no lock: a user with only SELECT,
  // INSERT, UPDATE and DELETE on the tables (README) must be able to run every command, and
  // PostgreSQL checks CREATE on the schema even for CREATE TABLE IF NOT EXISTS.
  auto newer = [this](int version) {
    return core::Error::config("postgresql " + where_ + ": the schema is at version " +
                               std::to_string(version) + ", newer than this intermission knows (" +
                               std::to_string(kPostgresSchemaVersion) + "); upgrade intermission");
  };
  if (auto current = schema_version(); current && *current >= kPostgresSchemaVersion) {
    if (*current > kPostgresSchemaVersion) return newer(*current);
    return {};
  }
  if (auto st = exec("BEGIN"); !st) return st;
  auto fail = [this](core::Error e) -> core::Status {
    (void)rollback();
    const bool refused = e.code == core::ErrorCode::kPermission;
    return e.with_context(
        "migrating the schema to version " + std::to_string(kPostgresSchemaVersion) +
        (refused ? " (the user needs CREATE on the database's schema for that)" : ""));
  };
  if (auto st = exec(kMigrationLock); !st) return fail(st.error());
  if (auto st = exec("CREATE TABLE IF NOT EXISTS intermission_schema (version integer NOT NULL)");
      !st) {
    return fail(st.error());
  }
  auto version = schema_version();
  if (!version) return fail(version.error());
  if (*version > kPostgresSchemaVersion) {  // migrated meanwhile by a newer binary
    (void)rollback();
    return newer(*version);
  }
  for (int v = *version; v < kPostgresSchemaVersion; ++v) {
    // A migration is several statements: the simple query protocol runs them in order, within
    // the open transaction.
    PGresult* r = PQexec(conn_, kMigrations[v]);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const core::Status st =
        ok ? core::Status{}
           : core::Status{to_error(where_, "migrate", PQresultErrorField(r, PG_DIAG_SQLSTATE),
                                   PQerrorMessage(conn_))};
    PQclear(r);
    if (!st) return fail(st.error().with_context("step to version " + std::to_string(v + 1)));
  }
  if (*version != kPostgresSchemaVersion) {
    if (auto st = exec("DELETE FROM intermission_schema"); !st) return fail(st.error());
    Query set(*this, "INSERT INTO intermission_schema (version) VALUES ($1)",
              {std::to_string(kPostgresSchemaVersion)});
    if (set.error()) return fail(*set.error());
  }
  return exec("COMMIT");
}

core::Result<core::EnvState> PostgresStore::load(const std::string& environment) {
  return with_reconnect([&]() -> core::Result<core::EnvState> {
    Query q(*this, "SELECT version, state FROM intermission_environments WHERE name = $1",
            {environment});
    if (q.error()) return q.error()->with_context("load " + environment);
    if (q.rows() == 0) {
      core::EnvState fresh;
      fresh.environment = environment;
      return fresh;
    }
    return core::decode_state(q.text(0, 1), environment, q.int64(0, 0));
  });
}

core::Result<std::int64_t> PostgresStore::compare_and_set(
    const core::EnvState& state, std::int64_t expected_version,
    const std::vector<core::AuditEntry>& audit) {
  return with_reconnect([&]() -> core::Result<std::int64_t> {
    if (auto st = exec("BEGIN"); !st) return st.error();
    auto fail = [this](core::Error e) -> core::Result<std::int64_t> {
      (void)rollback();
      return e;
    };
    const std::int64_t next = expected_version + 1;
    const std::string text = core::encode_state(state);
    // The first write inserts (a concurrent first write makes it a no-op); later ones update only
    // the version read. Either way one row changed = we won.
    Query write = expected_version == 0
                      ? Query(*this,
                              "INSERT INTO intermission_environments (name, version, state) "
                              "VALUES ($1, 1, $2) ON CONFLICT (name) DO NOTHING",
                              {state.environment, text})
                      : Query(*this,
                              "UPDATE intermission_environments SET version = $3, state = $2 "
                              "WHERE name = $1 AND version = $4",
                              {state.environment, text, std::to_string(next),
                               std::to_string(expected_version)});
    if (write.error()) return fail(write.error()->with_context("write " + state.environment));
    if (write.affected() != 1) {
      return fail(core::Error::conflict(state.environment + " is no longer at version " +
                                        std::to_string(expected_version)));
    }
    for (const auto& a : audit) {
      Query q(*this,
              "INSERT INTO intermission_audit (environment, time_ms, kind, message, who, "
              "deployment_id) VALUES ($1, $2, $3, $4, $5, $6)",
              {a.environment, std::to_string(core::to_epoch_ms(a.time)), a.kind, a.message, a.who,
               a.deployment_id});
      if (q.error()) return fail(q.error()->with_context("append audit"));
    }
    if (auto st = exec("COMMIT"); !st) return fail(st.error());
    return next;
  });
}

core::Result<std::vector<core::AuditEntry>> PostgresStore::audit(const std::string& environment,
                                                                 std::size_t limit) {
  return with_reconnect([&]() -> core::Result<std::vector<core::AuditEntry>> {
    Query q(*this,
            "SELECT time_ms, kind, message, who, deployment_id FROM ("
            " SELECT * FROM intermission_audit WHERE environment = $1 ORDER BY id DESC LIMIT $2"
            ") AS newest ORDER BY id ASC",
            {environment, std::to_string(limit)});
    if (q.error()) return q.error()->with_context("read audit of " + environment);
    std::vector<core::AuditEntry> out;
    for (int r = 0; r < q.rows(); ++r) {
      out.push_back({core::from_epoch_ms(q.int64(r, 0)), environment, q.text(r, 1), q.text(r, 2),
                     q.text(r, 3), q.text(r, 4)});
    }
    return out;
  });
}

core::Result<std::vector<std::string>> PostgresStore::environments() {
  return with_reconnect([&]() -> core::Result<std::vector<std::string>> {
    Query q(*this, "SELECT name FROM intermission_environments ORDER BY name");
    if (q.error()) return q.error()->with_context("list environments");
    std::vector<std::string> out;
    for (int r = 0; r < q.rows(); ++r) out.push_back(q.text(r, 0));
    return out;
  });
}

core::Result<core::Lease> PostgresStore::acquire_lease(const std::string& environment,
                                                       const std::string& holder, core::Time now,
                                                       core::Time until) {
  return with_reconnect([&]() -> core::Result<core::Lease> {
    if (auto st = exec("BEGIN"); !st) return st.error();
    auto fail = [this](core::Error e) -> core::Result<core::Lease> {
      (void)rollback();
      return e.with_context("lease");
    };
    // Make sure the row exists, then lock it: concurrent askers queue on the lock, and each sees
    // what the one before it wrote.
    Query ensure(
        *this,
        "INSERT INTO intermission_leases (environment, holder, until_ms) VALUES ($1, '', 0) "
        "ON CONFLICT (environment) DO NOTHING",
        {environment});
    if (ensure.error()) return fail(*ensure.error());
    Query current(
        *this, "SELECT holder, until_ms FROM intermission_leases WHERE environment = $1 FOR UPDATE",
        {environment});
    if (current.error()) return fail(*current.error());
    std::optional<core::Lease> held;
    if (current.rows() == 1 && !current.text(0, 0).empty()) {
      held = core::Lease{current.text(0, 0), core::from_epoch_ms(current.int64(0, 1))};
    }
    const core::Lease next = core::lease_after(held, holder, now, until);
    if (!held || next.holder != held->holder || next.until != held->until) {
      Query write(
          *this, "UPDATE intermission_leases SET holder = $2, until_ms = $3 WHERE environment = $1",
          {environment, next.holder, std::to_string(core::to_epoch_ms(next.until))});
      if (write.error()) return fail(*write.error());
    }
    if (auto st = exec("COMMIT"); !st) return fail(st.error());
    return next;
  });
}

core::Status PostgresStore::release_lease(const std::string& environment,
                                          const std::string& holder) {
  return with_reconnect([&]() -> core::Status {
    Query q(*this,
            "UPDATE intermission_leases SET holder = '', until_ms = 0 "
            "WHERE environment = $1 AND holder = $2",
            {environment, holder});
    if (q.error()) return q.error()->with_context("release lease");
    return {};
  });
}

core::Result<std::optional<core::Lease>> PostgresStore::lease(const std::string& environment) {
  return with_reconnect([&]() -> core::Result<std::optional<core::Lease>> {
    Query q(*this, "SELECT holder, until_ms FROM intermission_leases WHERE environment = $1",
            {environment});
    if (q.error()) return q.error()->with_context("read lease");
    if (q.rows() == 0 || q.text(0, 0).empty()) return std::optional<core::Lease>();
    return std::optional<core::Lease>(
        core::Lease{q.text(0, 0), core::from_epoch_ms(q.int64(0, 1))});
  });
}

}  // namespace intermission::adapters
