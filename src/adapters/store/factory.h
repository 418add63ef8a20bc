// Opens the store the config names (`store.type`).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "adapters/aws/aws_context.h"
#include "core/config.h"
#include "core/random.h"
#include "core/store.h"

namespace intermission::adapters {

// Where the SQLite store lives when the config names no path.
inline constexpr const char* kDefaultSqlitePath = "/var/lib/intermission/state.db";

// `aws` is needed (and must outlive the store) for the dynamodb store; `clock` and `log` too.
core::Result<std::unique_ptr<core::Store>> open_store(const core::StoreConfig& config,
                                                      aws::AwsContext* aws,
                                                      const core::Clock& clock, core::Logger& log);

// This process's name in the store's switching leases: "host/pid.start/random" (start: when
// the process started, in clock ticks after boot; "host/pid/random" where /proc cannot say),
// unique among the processes that share a store (daemon replicas, CLI runs, Lambda sandboxes).
std::string lease_holder_id();

// Whether the process a lease holder id names is alive on this host: its host is this host,
// its pid exists and, when the id says when it started, the process with that pid started
// then (a pid reused by another process is not the holder). False for another host (nothing
// can be known from here) and for ids in neither form. An id without a start time reads as
// alive whenever its pid is taken, which errs on the side of refusing to break a lease.
bool lease_holder_alive_here(const std::string& holder);

// The pauses between compare-and-set attempts, for the controller.
class ThreadSleeper final : public core::Sleeper {
 public:
  void sleep_for(core::Duration d) override;
};

// A random engine seeded from the system's random device. Thread-safe.
class SeededRandom final : public core::Random {
 public:
  SeededRandom();
  std::uint64_t next() override;

 private:
  std::mutex mutex_;
  std::mt19937_64 engine_;
};

}  // namespace intermission::adapters
