// Notifications as the front ends wire them: the configured targets made ready to send (their
// URLs and secrets read from files or the environment), and what one delivery's end writes to
// the audit trail. Delivery itself is adapters/notify/http_notifier.h.
#pragma once

#include <string>
#include <vector>

#include "adapters/notify/http_notifier.h"
#include "app/serve_secrets.h"
#include "core/config.h"
#include "core/ledger.h"
#include "core/log.h"
#include "core/store.h"

namespace intermission::app {

struct LoadedTargets {
  std::vector<adapters::NotifyTarget> targets;
  // Targets left out, each with why ("notifications.targets[1] (ops): $OPS_URL is not set").
  // A target that cannot be used is said loudly and left out; the others still work.
  std::vector<std::string> problems;
};

// Reads each target's URL (url, url_file or url_env: trimmed, http or https) and a webhook's
// secret (secret_file or secret_env, at least kMinSecretLength characters).
LoadedTargets load_notify_targets(const core::NotificationsConfig& config, const GetEnv& getenv);

adapters::NotifierOptions notifier_options(const core::NotificationsConfig& config);

// The audit line of one delivery's end: kind "notified", "notify-failed" or "notify-dropped".
core::AuditEntry delivery_audit(const adapters::DeliveryReport& report, core::Time now);

// What every front end does with a delivery's end: logs it (info when delivered, else error)
// and writes its audit line to `store` (a failed write is logged, nothing more). Called on the
// notifier's thread, so `store` must be one that thread alone uses.
void record_delivery(const adapters::DeliveryReport& report, core::Store& store, core::Logger& log,
                     core::Time now);

}  // namespace intermission::app
