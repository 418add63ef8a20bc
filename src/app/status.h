// What `intermission status` shows, built from stored state and (optionally) what each
// backend observes. Pure: rendering only.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/config.h"
#include "core/ledger.h"
#include "core/result.h"
#include "core/store.h"

namespace intermission::app {

struct EnvironmentStatus {
  const core::EnvironmentConfig* config = nullptr;
  core::EnvState state;
  std::vector<core::AuditEntry> recent;                  // newest last
  std::optional<core::Result<core::Observation>> observed;  // nullopt = not asked
  std::string backend;                                    // the backend's describe()
  std::optional<core::Lease> lease;  // who is switching the backend now, if anyone
  // Set when the ledger could not be read: the environment is shown as unreadable, with this,
  // and the rest (state, recent, observed...) is not looked at.
  std::optional<std::string> error;
};

// An environment with `error` set is {"environment", "error"} in the JSON and
// "NAME: unreadable: ERROR" in the text; the others are shown as usual.
boost::json::value status_json(const std::vector<EnvironmentStatus>& envs, core::Time now);
std::string status_text(const std::vector<EnvironmentStatus>& envs, core::Time now);

// The newest `count` lines of `audit` (oldest first) that say what happened to the
// environment: a delivered notice is left out (one per target and switch, they would push the
// switches out); one that failed or was dropped stays, since someone was not told.
std::vector<core::AuditEntry> status_recent(const std::vector<core::AuditEntry>& audit,
                                            std::size_t count);
// How many audit lines status reads to find those.
inline constexpr std::size_t kStatusAuditRead = 200;
inline constexpr std::size_t kStatusRecent = 10;

}  // namespace intermission::app
