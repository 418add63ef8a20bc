#include "adapters/store/sqlite_store.h"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

namespace intermission::adapters {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  SqliteStoreTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("intermission-sqlite-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "state.db").string();
  }
  ~SqliteStoreTest() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteStore> open() {
    auto s = SqliteStore::open(path_);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }

  static core::EnvState with_deployment(core::EnvState s, const std::string& id) {
    core::DeploymentRecord r;
    r.id = id;
    r.application = "shop";
    r.deployment_group = "prod-web";
    s.deployments.emplace(id, r);
    return s;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, FreshEnvironmentHasVersionZero) {
  auto store = open();
  auto s = store->load("prod");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->version, 0);
  EXPECT_EQ(s->environment, "prod");
  EXPECT_TRUE(s->deployments.empty());
}

TEST_F(SqliteStoreTest, CompareAndSetWritesStateAndAuditTogether) {
  auto store = open();
  auto s = with_deployment(*store->load("prod"), "d-1");
  const core::AuditEntry a{core::from_epoch_ms(5000), "prod", "deployment", "d-1 Created", "",
                           "d-1"};
  auto v = store->compare_and_set(s, 0, {a});
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, 1);
  auto back = store->load("prod");
  EXPECT_EQ(back->version, 1);
  EXPECT_TRUE(back->deployments.contains("d-1"));
  auto audit = store->audit("prod", 10);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].message, "d-1 Created");
  EXPECT_EQ(core::to_epoch_ms((*audit)[0].time), 5000);
  EXPECT_EQ(*store->environments(), std::vector<std::string>{"prod"});
}

TEST_F(SqliteStoreTest, StaleVersionIsAConflictAndWritesNothing) {
  auto a = open();
  auto b = open();  // a second connection, as another process would have
  auto sa = *a->load("prod");
  auto sb = *b->load("prod");
  ASSERT_TRUE(a->compare_and_set(with_deployment(sa, "d-a"), 0, {}).ok());
  const core::AuditEntry entry{core::from_epoch_ms(1), "prod", "x", "lost", "", ""};
  auto lost = b->compare_and_set(with_deployment(sb, "d-b"), 0, {entry});
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, core::ErrorCode::kConflict);
  auto now = b->load("prod");
  EXPECT_TRUE(now->deployments.contains("d-a"));
  EXPECT_FALSE(now->deployments.contains("d-b"));
  EXPECT_TRUE(b->audit("prod", 10)->empty()) << "the loser's audit must not be appended";
}

TEST_F(SqliteStoreTest, AuditIsNewestLimitOldestFirst) {
  auto store = open();
  core::EnvState s = *store->load("prod");
  for (int i = 0; i < 5; ++i) {
    const core::AuditEntry e{core::from_epoch_ms(i), "prod", "k", "m" + std::to_string(i), "", ""};
    auto v = store->compare_and_set(s, s.version, {e});
    ASSERT_TRUE(v.ok());
    s.version = *v;
  }
  auto audit = store->audit("prod", 2);
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[0].message, "m3");
  EXPECT_EQ((*audit)[1].message, "m4");
}

TEST_F(SqliteStoreTest, LeaseIsExclusiveUntilGivenUpOrRunOut) {
  auto a = open();
  auto b = open();  // another process
  const core::Time t0 = core::from_epoch_ms(1'000'000);
  const auto min = std::chrono::minutes(1);
  auto got = a->acquire_lease("prod", "a", t0, t0 + 5 * min);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->holder, "a");
  auto other = b->acquire_lease("prod", "b", t0 + min, t0 + 6 * min);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->holder, "a") << "a live lease is not taken";
  EXPECT_EQ(other->until, t0 + 5 * min);
  EXPECT_EQ(b->acquire_lease("staging", "b", t0, t0 + min)->holder, "b")
      << "leases are per environment";
  auto renewed = a->acquire_lease("prod", "a", t0 + 2 * min, t0 + 7 * min);
  EXPECT_EQ(renewed->until, t0 + 7 * min) << "the holder renews";
  ASSERT_TRUE(b->release_lease("prod", "b").ok());
  EXPECT_EQ(b->acquire_lease("prod", "b", t0 + 3 * min, t0 + 8 * min)->holder, "a")
      << "releasing someone else's lease does nothing";
  EXPECT_EQ(b->acquire_lease("prod", "b", t0 + 7 * min, t0 + 9 * min)->holder, "b")
      << "a lease that ran out is taken over";
  auto held = a->lease("prod");
  ASSERT_TRUE(held.ok() && held->has_value());
  EXPECT_EQ((*held)->holder, "b");
  EXPECT_EQ((*held)->until, t0 + 9 * min);
  ASSERT_TRUE(b->release_lease("prod", "b").ok());
  EXPECT_FALSE(a->lease("prod")->has_value()) << "given up";
  EXPECT_EQ(a->acquire_lease("prod", "a", t0 + 8 * min, t0 + 9 * min)->holder, "a")
      << "a given-up lease is free";
}

// The ledger holds reasons, names and deployment ids: never world-readable, whatever the
// umask of the shell that ran the CLI first.
TEST_F(SqliteStoreTest, NewDatabaseAndItsWalAreReadableByTheOwnerOnly) {
  const mode_t old = ::umask(022);
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    core::EnvState st;
    st.environment = "prod";
    ASSERT_TRUE(s->compare_and_set(with_deployment(st, "d-1"), 0, {}).ok());
    for (const std::string suffix : {"", "-wal", "-shm"}) {
      struct stat info {};
      if (::stat((path_ + suffix).c_str(), &info) != 0) continue;
      EXPECT_EQ(info.st_mode & 077, 0u)
          << "state.db" << suffix << " mode " << std::oct << (info.st_mode & 0777);
    }
  }
  ::umask(old);
}

// Daemon replicas and CLI runs started together on a new database all switch it to WAL: the
// one whose read lock another's switch needs gets SQLITE_BUSY at once (SQLite does not wait
// there, or the two would deadlock). Seen as "PRAGMA journal_mode=WAL: database is locked"
// when two daemons started on one new database (tests/serve_test.py, Replicas).
TEST_F(SqliteStoreTest, ManyProcessesOpeningOneNewDatabaseAllSucceed) {
  constexpr int kRounds = 100;
  constexpr int kOpeners = 6;
  for (int round = 0; round < kRounds; ++round) {
    const std::string path = (dir_ / ("new-" + std::to_string(round) + ".db")).string();
    std::atomic<int> ready{0};
    std::vector<std::string> failures(kOpeners);
    std::vector<std::thread> threads;
    for (int i = 0; i < kOpeners; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kOpeners) std::this_thread::yield();
        auto s = SqliteStore::open(path);
        if (!s.ok()) failures[static_cast<std::size_t>(i)] = s.error().message;
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& f : failures) ASSERT_EQ(f, "") << "round " << round;
  }
}

TEST_F(SqliteStoreTest, MissingDirectoryIsAClearError) {
  auto s = SqliteStore::open((dir_ / "no" / "such" / "state.db").string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot open"), std::string::npos);
}

TEST_F(SqliteStoreTest, CorruptStateIsReportedNotGuessed) {
  auto store = open();
  ASSERT_TRUE(store->compare_and_set(*store->load("prod"), 0, {}).ok());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE environments SET state='garbage'", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto s = store->load("prod");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, core::ErrorCode::kInvalidInput);
}

}  // namespace
}  // namespace intermission::adapters
