// Opens the store the config names (`store.type`).
#pragma once

#include <memory>
#include <string>

#include "adapters/aws/aws_context.h"
#include "core/config.h"
#include "core/store.h"

namespace intermission::adapters {

// Where the SQLite store lives when the config names no path.
inline constexpr const char* kDefaultSqlitePath = "/var/lib/intermission/state.db";

// `aws` is needed (and must outlive the store) for the dynamodb store; `clock` and `log` too.
core::Result<std::unique_ptr<core::Store>> open_store(const core::StoreConfig& config,
                                                      aws::AwsContext* aws,
                                                      const core::Clock& clock, core::Logger& log);

// This process's name in the store's switching leases: "host/pid/random", unique among the
// processes that share a store (daemon replicas, CLI runs, Lambda sandboxes).
std::string lease_holder_id();

}  // namespace intermission::adapters
