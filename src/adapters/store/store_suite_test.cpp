// One test suite for every store: what core::Store promises (store.h), run against SQLite
// always, and against PostgreSQL and DynamoDB when a server is named in the environment
// (INTERMISSION_TEST_POSTGRES = a libpq connection string; INTERMISSION_TEST_DYNAMODB = an
// endpoint URL with a table made by `dynamodb-table`, as tests/postgres_store_test.py does with
// a real PostgreSQL and dynalite). Without a server those instances are not made at all; the
// integration test checks that all three ran. The Kubernetes store runs against an in-memory
// API always (KubeMemoryStores/...), and against an API server when
// INTERMISSION_TEST_KUBECONFIG names a kubeconfig (INTERMISSION_TEST_KUBE_NAMESPACE: the
// namespace, else the context's), as tests/kube_store_test.py does with the fake API server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "adapters/aws/aws_context.h"
#include "adapters/log/json_logger.h"
#include "adapters/kube/client.h"
#include "adapters/store/dynamodb_store.h"
#include "adapters/store/kube_store.h"
#include "adapters/store/postgres_store.h"
#include "adapters/store/sqlite_store.h"
#include "testing/fakes.h"
#include "testing/kube_memory_api.h"

namespace intermission::adapters {
namespace {

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// Opens stores of one kind; every open() is a new connection (as another process would have).
class StoreKind {
 public:
  virtual ~StoreKind() = default;
  // Empty when this kind cannot run here (no server named).
  virtual std::string unavailable() const = 0;
  virtual std::unique_ptr<core::Store> open() = 0;
};

class SqliteKind final : public StoreKind {
 public:
  SqliteKind() {
    dir_ = std::filesystem::temp_directory_path() /
           ("intermission-suite-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  ~SqliteKind() override { std::filesystem::remove_all(dir_); }
  std::string unavailable() const override { return ""; }
  std::unique_ptr<core::Store> open() override {
    auto s = SqliteStore::open((dir_ / "state.db").string());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::unique_ptr<core::Store>(std::move(*s)) : nullptr;
  }

 private:
  std::filesystem::path dir_;
};

class PostgresKind final : public StoreKind {
 public:
  std::string unavailable() const override {
    return env("INTERMISSION_TEST_POSTGRES") ? "" : "INTERMISSION_TEST_POSTGRES is not set";
  }
  std::unique_ptr<core::Store> open() override {
    auto s = PostgresStore::open(*env("INTERMISSION_TEST_POSTGRES"));
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::unique_ptr<core::Store>(std::move(*s)) : nullptr;
  }
};

class DynamoKind final : public StoreKind {
 public:
  std::string unavailable() const override {
    return env("INTERMISSION_TEST_DYNAMODB") ? "" : "INTERMISSION_TEST_DYNAMODB is not set";
  }
  // Called from several threads at once: each store gets its own context, client and logger
  // (none of them is thread-safe), as in separate processes.
  std::unique_ptr<core::Store> open() override {
    auto c = std::make_unique<Connection>();
    c->context = std::make_unique<aws::AwsContext>(
        "eu-west-1",
        [](const std::string& name) -> std::optional<std::string> {
          if (name == "AWS_ENDPOINT_URL") return env("INTERMISSION_TEST_DYNAMODB");
          if (name == "AWS_ACCESS_KEY_ID") return std::string("AKIDSUITE");
          if (name == "AWS_SECRET_ACCESS_KEY") return std::string("suite-secret");
          return env(name.c_str());
        },
        clock_, c->log);
    auto client = c->context->client(aws::dynamodb_service());
    EXPECT_TRUE(client.ok());
    if (!client.ok()) return nullptr;
    auto store = std::make_unique<DynamoDbStore>(
        **client, env("INTERMISSION_TEST_DYNAMODB_TABLE").value_or("intermission"),
        std::chrono::hours(24), clock_, c->log);
    const std::lock_guard<std::mutex> hold(mutex_);
    connections_.push_back(std::move(c));
    return store;
  }

 private:
  struct Connection {
    testing::RecordingLogger log;
    std::unique_ptr<aws::AwsContext> context;
  };
  SystemClock clock_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> connections_;
};

// Every open() is a new handle on one in-memory API server.
class KubeMemoryKind final : public StoreKind {
 public:
  std::string unavailable() const override { return ""; }
  std::unique_ptr<core::Store> open() override {
    return std::make_unique<KubeStore>(cluster_.api(), "ops", log_);
  }

 private:
  testing::KubeMemoryCluster cluster_;
  testing::RecordingLogger log_;  // nothing is logged without a client
};

// Every open() is a new client (connection, credentials) to the API server the kubeconfig names.
class KubeKind final : public StoreKind {
 public:
  std::string unavailable() const override {
    return env("INTERMISSION_TEST_KUBECONFIG") ? "" : "INTERMISSION_TEST_KUBECONFIG is not set";
  }
  std::unique_ptr<core::Store> open() override {
    auto log = std::make_unique<testing::RecordingLogger>();
    auto client = kube::KubeClient::open({*env("INTERMISSION_TEST_KUBECONFIG"), ""}, *log);
    EXPECT_TRUE(client.ok()) << (client.ok() ? "" : client.error().message);
    if (!client.ok()) return nullptr;
    std::string ns = env("INTERMISSION_TEST_KUBE_NAMESPACE").value_or("");
    if (ns.empty()) ns = (*client)->connection().namespace_name;
    auto store = std::make_unique<KubeStore>(std::move(*client), ns, *log);
    const std::lock_guard<std::mutex> hold(mutex_);
    logs_.push_back(std::move(log));
    return store;
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<testing::RecordingLogger>> logs_;
};

std::unique_ptr<StoreKind> make_kind(const std::string& name) {
  if (name == "sqlite") return std::make_unique<SqliteKind>();
  if (name == "postgresql") return std::make_unique<PostgresKind>();
  if (name == "kubernetes") return std::make_unique<KubeKind>();
  if (name == "kubernetes_memory") return std::make_unique<KubeMemoryKind>();
  return std::make_unique<DynamoKind>();
}

class StoreSuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    kind_ = make_kind(GetParam());
    if (const std::string why = kind_->unavailable(); !why.empty()) GTEST_SKIP() << why;
    store_ = kind_->open();
    ASSERT_NE(store_, nullptr);
    // A name no other test (or earlier run on a shared server) has used.
    env_ = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
           std::to_string(std::random_device{}());
    for (auto& c : env_) {
      if (c == '/') c = '-';
    }
  }

  core::EnvState with_deployment(core::EnvState s, const std::string& id) {
    core::DeploymentRecord r;
    r.id = id;
    r.application = "shop";
    r.deployment_group = "prod-web";
    s.deployments.emplace(id, r);
    return s;
  }

  std::unique_ptr<StoreKind> kind_;
  std::unique_ptr<core::Store> store_;
  std::string env_;
};

TEST_P(StoreSuite, AFreshEnvironmentIsVersionZeroAndEmpty) {
  auto s = store_->load(env_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->version, 0);
  EXPECT_EQ(s->environment, env_);
  EXPECT_TRUE(s->deployments.empty());
  auto lease = store_->lease(env_);
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->has_value());
}

TEST_P(StoreSuite, CompareAndSetWritesTheStateAndItsAuditTogether) {
  auto s = with_deployment(*store_->load(env_), "d-1");
  const core::AuditEntry a{
      core::from_epoch_ms(5000), env_, "deployment", "d-1 Created", "ops", "d-1"};
  auto v = store_->compare_and_set(s, 0, {a});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 1);
  auto other = kind_->open();  // another connection sees it
  auto back = other->load(env_);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->version, 1);
  EXPECT_TRUE(back->deployments.contains("d-1"));
  auto audit = other->audit(env_, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].message, "d-1 Created");
  EXPECT_EQ((*audit)[0].who, "ops");
  EXPECT_EQ((*audit)[0].time, core::from_epoch_ms(5000));
}

TEST_P(StoreSuite, AStaleVersionIsAConflictAndChangesNothing) {
  auto s = *store_->load(env_);
  ASSERT_TRUE(store_->compare_and_set(with_deployment(s, "d-1"), 0, {}).ok());
  auto stale = store_->compare_and_set(with_deployment(s, "d-2"), 0,
                                       {{core::from_epoch_ms(1), env_, "x", "lost", "", ""}});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, core::ErrorCode::kConflict) << stale.error().message;
  auto back = *store_->load(env_);
  EXPECT_EQ(back.version, 1);
  EXPECT_FALSE(back.deployments.contains("d-2"));
  EXPECT_TRUE(store_->audit(env_, 10)->empty()) << "the loser's audit is not written";
  auto next = store_->compare_and_set(with_deployment(back, "d-2"), 1, {});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 2);
  EXPECT_EQ(store_->compare_and_set(back, 5, {}).error().code, core::ErrorCode::kConflict);
}

TEST_P(StoreSuite, TheAuditIsTheNewestEntriesOldestFirst) {
  std::vector<core::AuditEntry> entries;
  for (int i = 0; i < 5; ++i) {
    entries.push_back({core::from_epoch_ms(1000 * i), env_, "k", "m" + std::to_string(i), "", ""});
  }
  ASSERT_TRUE(store_->compare_and_set(*store_->load(env_), 0, entries).ok());
  auto newest = store_->audit(env_, 3);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 3u);
  EXPECT_EQ((*newest)[0].message, "m2");
  EXPECT_EQ((*newest)[2].message, "m4");
  EXPECT_TRUE(store_->audit(env_ + "-other", 3)->empty());
}

TEST_P(StoreSuite, EnvironmentsListsWhatWasStored) {
  ASSERT_TRUE(store_->compare_and_set(*store_->load(env_ + "-a"), 0, {}).ok());
  ASSERT_TRUE(store_->compare_and_set(*store_->load(env_ + "-b"), 0, {}).ok());
  auto names = store_->environments();
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_NE(std::find(names->begin(), names->end(), env_ + "-a"), names->end());
  EXPECT_NE(std::find(names->begin(), names->end(), env_ + "-b"), names->end());
  EXPECT_EQ(std::find(names->begin(), names->end(), env_ + "-c"), names->end());
}

TEST_P(StoreSuite, TheLeaseFollowsTheOneRule) {
  const core::Time t0 = core::from_epoch_ms(1'000'000);
  const auto s = std::chrono::seconds(1);
  auto a = store_->acquire_lease(env_, "a", t0, t0 + 10 * s);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->holder, "a");
  auto other = kind_->open();
  auto b = other->acquire_lease(env_, "b", t0 + s, t0 + 11 * s);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->holder, "a") << "taken: the holder's lease is returned";
  EXPECT_EQ(b->until, t0 + 10 * s);
  auto renewed = store_->acquire_lease(env_, "a", t0 + 2 * s, t0 + 20 * s);
  EXPECT_EQ(renewed->until, t0 + 20 * s);
  auto late = other->acquire_lease(env_, "b", t0 + 20 * s, t0 + 30 * s);
  EXPECT_EQ(late->holder, "b") << "run out: taken over";
  ASSERT_TRUE(store_->release_lease(env_, "a").ok()) << "not a's any more: nothing happens";
  EXPECT_EQ((*store_->lease(env_))->holder, "b");
  ASSERT_TRUE(other->release_lease(env_, "b").ok());
  EXPECT_FALSE(store_->lease(env_)->has_value());
  EXPECT_EQ(store_->acquire_lease(env_, "a", t0 + 21 * s, t0 + 22 * s)->holder, "a");
}

TEST_P(StoreSuite, ConcurrentWritersEachWinOnceAndNoneIsLost) {
  constexpr int kWriters = 6;
  constexpr int kEach = 5;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto store = kind_->open();
      if (store == nullptr) {
        ++failures;
        return;
      }
      for (int i = 0; i < kEach; ++i) {
        for (int attempt = 0; attempt < 500; ++attempt) {
          auto s = store->load(env_);
          if (!s) continue;
          auto v = store->compare_and_set(
              with_deployment(*s, "d-" + std::to_string(w) + "-" + std::to_string(i)), s->version,
              {});
          if (v) break;
          if (v.error().code != core::ErrorCode::kConflict &&
              v.error().code != core::ErrorCode::kUnavailable) {
            ++failures;
            return;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  auto s = store_->load(env_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->version, kWriters * kEach);
  EXPECT_EQ(s->deployments.size(), static_cast<std::size_t>(kWriters * kEach));
}

TEST_P(StoreSuite, OnlyOneOfManyAskersGetsAFreeLease) {
  const core::Time t0 = core::from_epoch_ms(2'000'000);
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 6; ++w) {
    threads.emplace_back([&, w] {
      auto store = kind_->open();
      if (store == nullptr) return;
      const std::string me = "holder-" + std::to_string(w);
      auto l = store->acquire_lease(env_, me, t0, t0 + std::chrono::minutes(1));
      if (l && l->holder == me) ++winners;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners, 1);
}

// SQLite always; the others when their server is named (so a plain unit run lists no skips).
std::vector<std::string> available_kinds() {
  std::vector<std::string> out{"sqlite"};
  if (env("INTERMISSION_TEST_POSTGRES")) out.emplace_back("postgresql");
  if (env("INTERMISSION_TEST_DYNAMODB")) out.emplace_back("dynamodb");
  if (env("INTERMISSION_TEST_KUBECONFIG")) out.emplace_back("kubernetes");
  return out;
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreSuite, ::testing::ValuesIn(available_kinds()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });
// Apart from Stores/..., whose list of kinds the integration tests check.
INSTANTIATE_TEST_SUITE_P(KubeMemoryStores, StoreSuite, ::testing::Values("kubernetes_memory"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace intermission::adapters
