// Opens the store the config names (`store.type`).
#pragma once

#include <memory>

#include "core/config.h"
#include "core/store.h"

namespace intermission::adapters {

// Where the SQLite store lives when the config names no path.
inline constexpr const char* kDefaultSqlitePath = "/var/lib/intermission/state.db";

core::Result<std::unique_ptr<core::Store>> open_store(const core::StoreConfig& config);

}  // namespace intermission::adapters
