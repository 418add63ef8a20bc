// Test doubles for the core's interfaces. Deterministic, in memory, thread-compatible
// (one thread at a time), and they record what was asked of them so tests can assert on it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/log.h"
#include "core/lookup.h"
#include "core/store.h"
#include "core/time.h"

namespace intermission::testing {

using namespace intermission::core;  // NOLINT: test code

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Time start = from_epoch_ms(1'700'000'000'000)) : now_(start) {}
  Time now() const override { return now_; }
  void advance(Duration d) { now_ += d; }
  void set(Time t) { now_ = t; }

 private:
  Time now_;
};

// Store in memory with the same CAS contract as the real ones. `conflicts_to_inject` makes the
// next N compare_and_set calls fail with kConflict after a concurrent-looking write.
class MemoryStore final : public Store {
 public:
  Result<EnvState> load(const std::string& environment) override;
  Result<std::int64_t> compare_and_set(const EnvState& state, std::int64_t expected_version,
                                       const std::vector<AuditEntry>& audit) override;
  Result<std::vector<AuditEntry>> audit(const std::string& environment, std::size_t limit) override;
  Result<std::vector<std::string>> environments() override;
  Result<Lease> acquire_lease(const std::string& environment, const std::string& holder, Time now,
                              Time until) override;
  Status release_lease(const std::string& environment, const std::string& holder) override;
  Result<std::optional<Lease>> lease(const std::string& environment) override;

  // Runs inside the next acquire_lease() by `holder`, before it takes effect (a test makes
  // another process act at that moment); then cleared.
  std::function<void()> before_next_acquire;
  std::function<void()> before_next_release;  // the same, in release_lease()
  std::map<std::string, Lease> leases;
  int lease_calls = 0;
  int loads = 0;
  int writes = 0;
  int conflicts_to_inject = 0;
  int failures_to_inject = 0;  // the next writes fail as unavailable (a throttled store)
  int load_failures_to_inject = 0;  // the next loads fail as unavailable
  // The next writes are made but answered with a conflict, as a store client's retry reports
  // a write whose first answer was lost (a PostgreSQL COMMIT whose reply never came, a
  // DynamoDB PutItem retried after a timeout): the condition now fails on our own write.
  int lost_replies_to_inject = 0;
  std::vector<AuditEntry> all_audit;

 private:
  std::map<std::string, EnvState> states_;
};

// A single-switch backend that records every step it applies.
struct FakeSwitch {
  bool on = false;
  std::vector<Step> applied;
  int observations = 0;
  int fail_next_applies = 0;               // make the next N apply() calls fail (kUnavailable)
  int conflict_next_applies = 0;           // the next N apply() calls lose a write race (kConflict)
  std::function<void()> after_next_apply;  // runs once, after the next step is applied
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(FakeSwitch& s) : s_(s) {}
  Result<Observation> observe() override;
  Status apply(const Step& step) override;
  std::string describe() const override { return "fake switch"; }

 private:
  FakeSwitch& s_;
};

class FakeBackendFactory final : public BackendFactory {
 public:
  Result<std::unique_ptr<Backend>> make(const EnvironmentConfig& env) override;
  std::map<std::string, FakeSwitch> switches;  // by environment
};

class FakeLookup final : public DeploymentLookup {
 public:
  Result<DeploymentInfo> get_deployment(const std::string& id) override;
  std::map<std::string, DeploymentInfo> known;
  bool unavailable = false;
  int calls = 0;
};

class RecordingLogger final : public Logger {
 public:
  struct Line {
    LogLevel level;
    std::string message;
    LogFields fields;
  };
  void log(LogLevel level, std::string_view message, const LogFields& fields) override {
    lines.push_back({level, std::string(message), fields});
  }
  [[nodiscard]] bool contains(LogLevel level, std::string_view fragment) const;
  std::vector<Line> lines;
};

// Reads a file of the test fixtures (testing/fixtures/...); aborts the test run if missing.
std::string read_fixture(const std::string& relative_path);

}  // namespace intermission::testing
