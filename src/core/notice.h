// Notifications: what is announced (the page switched, a switch failed or is stuck, a
// deployment expired), the texts and payloads sent for it (a Slack incoming webhook, a generic
// JSON webhook signed with HMAC), the retry rule of one delivery, and the Notifier interface
// through which the controller announces without waiting. docs/notifications.md has the scheme.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/ledger.h"
#include "core/result.h"
#include "core/store.h"
#include "core/time.h"

namespace intermission::core {

enum class NoticeKind {
  kSwitchedOn,         // this process put the page up (its backend steps did it)
  kSwitchedOff,        // this process took it down
  kSwitchFailed,       // a convergence failed (the first failure of a run of them)
  kSwitchStuck,        // convergences kept failing for longer than notifications.stuck_after
  kDeploymentExpired,  // a deployment ran past max_duration and no longer keeps the page up
};
inline constexpr NoticeKind kNoticeKinds[] = {NoticeKind::kSwitchedOn, NoticeKind::kSwitchedOff,
                                              NoticeKind::kSwitchFailed, NoticeKind::kSwitchStuck,
                                              NoticeKind::kDeploymentExpired};

// "switched-on", "switched-off", "switch-failed", "switch-stuck", "deployment-expired": the
// names the config's `events` lists and the webhook's `kind` use.
std::string_view to_string(NoticeKind kind);
std::optional<NoticeKind> parse_notice_kind(std::string_view name);

struct Notice {
  NoticeKind kind = NoticeKind::kSwitchedOn;
  std::string environment;
  Time time{};
  // Switched on: why (the decision's reasons); off: what lifted it; failed/stuck: the error;
  // expired: the audit line.
  std::string reason;
  std::string who;                          // the operator or window author, when one decided
  std::vector<std::string> deployment_ids;  // deployments that keep the page up / expired
  std::optional<Time> expected_end;         // switched on: when the page should go, if known
  std::optional<Time> failing_since;        // failed / stuck: the first failure of the run
  bool wanted_on = false;                   // failed / stuck: the state that was not reached

  // "prod/switched-on/1700000000000": the same for every delivery and retry of this notice, so
  // a receiver can drop a repeat.
  [[nodiscard]] std::string id() const;
};

// Where notices go. Implementations queue and return at once: notify() never blocks on the
// network and never fails its caller (a switch must never wait for an announcement of it).
// Thread-safe.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify(const Notice& notice) = 0;
};

// The notice a recorded switch makes, from the state after it (who and which deployments keep
// the page up) and the decision that was applied.
Notice switch_notice(const EnvState& after, const EnvironmentConfig& env, const Decision& decision,
                     Time now);

// The notices that stored audit lines make: one per "expired" line.
std::vector<Notice> audit_notices(const std::vector<AuditEntry>& audit);

// Remembers, per environment, a run of failed convergences: the first failure of a run is
// announced (switch-failed), and once the run has lasted `stuck_after` the next failure is
// announced once more (switch-stuck). A success ends the run. Not thread-safe (one per
// controller); a restart forgets runs, so a stuck environment is announced again after one.
class FailureTracker {
 public:
  explicit FailureTracker(Duration stuck_after) : stuck_after_(stuck_after) {}
  // A convergence of `environment` towards `wanted_on` failed with `error` at `now`: the
  // notice to send, if this failure is worth one.
  std::optional<Notice> failed(const std::string& environment, bool wanted_on,
                               const std::string& error, Time now);
  void succeeded(const std::string& environment) { runs_.erase(environment); }

 private:
  struct Run {
    Time since{};
    bool stuck_sent = false;
  };
  Duration stuck_after_;
  std::map<std::string, Run> runs_;
};

// Slack's control characters in text: & < > become &amp; &lt; &gt; (nothing else is escaped).
std::string slack_escape(std::string_view text);
// One line for people: "prod: maintenance ON — maintenance window w1 by alice: upgrade".
std::string notice_text(const Notice& notice);
// The JSON body for a Slack incoming webhook: `text` (the fallback that notifications show)
// and `blocks` (a header-like mrkdwn section and a context line), all escaped.
std::string slack_payload(const Notice& notice);
// The JSON body of the generic webhook (fields in docs/notifications.md).
std::string webhook_body(const Notice& notice);
// What the webhook's HMAC-SHA256 covers: "<timestamp>.<body>" (timestamp in Unix seconds, as
// sent in X-Intermission-Timestamp).
std::string webhook_signed_text(std::string_view timestamp, std::string_view body);

// What to do after one attempt at a delivery.
enum class DeliveryVerdict { kDelivered, kRetry, kGiveUp };
// `status` nullopt: the request failed in transport (refused, reset, timed out): retried.
// 2xx delivered; 408, 429 and 5xx retried; any other status given up at once.
DeliveryVerdict classify_delivery(std::optional<long> status);
// A Retry-After value (RFC 9110 §10.2.3): delay-seconds ("120"), or an HTTP-date, as the
// time from `now` until then (zero once past); nullopt for anything else (the backoff applies).
std::optional<Duration> parse_retry_after(std::string_view value, Time now);
// The pause before retry number `attempt` (1 = after the first failure): a random duration
// ("full jitter") up to min(cap, base * 2^(attempt-1)), from `random`; a Retry-After wins when
// given, up to `cap`.
Duration retry_delay(int attempt, Duration base, Duration cap, std::uint64_t random,
                     std::optional<Duration> retry_after);

// Appends `audit` to `environment`'s trail without changing its state: a compare-and-set of
// the state as loaded, retried from a fresh load when another writer got there first (the
// version moves, so a concurrent controller write retries as it does for any other writer).
Status append_audit(Store& store, const std::string& environment,
                    const std::vector<AuditEntry>& audit, int attempts = 16);

}  // namespace intermission::core
