// The ledger: per-environment memory of deployments and operator holds, the pure transitions
// that events cause, and the decision (maintenance on or off) that follows from it.
// The transition table is in docs/ledger.md; every rule has a test in ledger_test.cpp.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/event.h"
#include "core/time.h"

namespace intermission::core {

struct DeploymentRecord {
  std::string id;
  std::string application;
  std::string deployment_group;
  DeploymentStatus status = DeploymentStatus::kCreated;
  std::optional<std::string> creator;  // from GetDeployment; nullopt = not known (yet)
  std::optional<std::string> rollback_of;
  // Its events come from CodeDeploy (SNS, EventBridge), so CodeDeploy can be asked about it on
  // a tick; false for a pipeline's webhook (its id is the pipeline's, not CodeDeploy's).
  bool codedeploy = true;
  Time first_seen{};                   // our clock, when the first event for it arrived
  Time last_seen{};                    // our clock, the last event that changed it
  std::optional<Time> ended_at;        // our clock, when it reached a terminal status
  // The deployment's own times, where its events carry them (EventBridge `time`, CodeDeploy
  // createTime/completeTime): the earliest non-terminal event, and the terminal one. "Later
  // deployment" is judged by these when both are known, since deliveries come out of order.
  std::optional<Time> started;
  std::optional<Time> finished;
  bool expired = false;    // active for longer than max_duration: no longer counts
  bool dismissed = false;  // an operator lifted the page over it: no longer counts
};

// An operator's word. While it lasts it wins over deployments, both ways.
struct Hold {
  bool on = true;
  std::string reason;
  std::string who;
  Time since{};
  std::optional<Time> until;  // nullopt = until an operator says otherwise
};

// A scheduled maintenance window: while `start <= now < end` it keeps the page up like an
// operator hold on (an operator's own hold still wins, both ways). Ended windows are dropped.
struct Window {
  std::string id;  // "w1", "w2", ...: unique within the environment
  Time start{};
  Time end{};      // > start
  std::string reason;
  std::string who;
  Time created{};
  bool started = false;  // the "window-started" audit line was written
};

// What was last applied to the backend successfully (for status; never trusted for planning,
// which always observes the backend).
struct Applied {
  bool on = false;
  std::optional<Time> since;
  std::string reason;
};

struct EnvState {
  std::string environment;
  std::int64_t version = 0;  // 0 = never stored; the store bumps it on every write
  std::map<std::string, DeploymentRecord> deployments;
  std::optional<Hold> hold;
  Applied applied;
  std::deque<std::string> recent_message_ids;  // newest last; bounded by kRecentMessageIds
  std::map<std::string, Window> windows;       // by id; bounded by kMaxWindows
  std::int64_t last_window_id = 0;             // ids are never reused within an environment
  // Deployments whose records were dropped by the count bound, and when: for kReplayWindow
  // a message about one of them is late, not a new deployment. Bounded by kMaxForgottenBytes.
  std::map<std::string, Time> forgotten;
};

// Scheduled windows kept at most per environment (upcoming and active); more are refused.
inline constexpr std::size_t kMaxWindows = 50;

inline constexpr std::size_t kRecentMessageIds = 256;
// How long after it was first received a message may still be accepted again: an SNS message
// within kSnsMaxAge of its Timestamp, which may be kSnsMaxSkew ahead of our clock (core/sns.h),
// with a margin; longer than a signed webhook's window. A deployment whose record the count
// bound drops is remembered (its id, in `forgotten`) this long, so that a replayed message of
// it changes nothing, even in a daemon that restarted since.
inline constexpr Duration kReplayWindow = std::chrono::minutes(80);
// The bytes the forgotten deployment ids may take at most in the stored item (the id and
// kForgottenEntryBytes each), the oldest going first: about 640 of CodeDeploy's 11-byte ids,
// 60 of the longest an event may carry (kMaxDeploymentText).
inline constexpr std::size_t kForgottenEntryBytes = 40;
inline constexpr std::size_t kMaxForgottenBytes = 32 * 1024;
// Finished deployments are forgotten this long after their last change.
inline constexpr Duration kRetention = std::chrono::hours(24 * 7);
// Records that no longer count (finished, expired, dismissed, skipped) kept at most, newest
// first: the ledger is one stored item, and a busy environment must not outgrow it. Records
// that count are never dropped.
inline constexpr std::size_t kMaxSettledRecords = 200;
// ...and the bytes they may take at most in the stored item (their texts and
// kRecordOverheadBytes each), since each text may be up to kMaxDeploymentText long.
inline constexpr std::size_t kRecordOverheadBytes = 300;
inline constexpr std::size_t kMaxSettledBytes = 160 * 1024;
// What the bounded parts of a ledger take at most (settled records, forgotten ids, recent
// message ids, windows, a hold; JSON quoting included roughly) leaves room in the item for
// the records that count, which are never dropped: twenty running deployments with every
// text at its bound (hundreds with CodeDeploy's), where a real environment has a handful.
// 384 KiB is kMaxEncodedStateBytes (core/state_codec.h).
inline constexpr std::size_t kBoundedLedgerBytes =
    kMaxSettledBytes + kMaxForgottenBytes + kRecentMessageIds * (kMaxMessageId + 4) +
    kMaxWindows * (2 * kMaxOperatorText + 150) + 2 * kMaxOperatorText + 200;
static_assert(kBoundedLedgerBytes + 20 * (5 * kMaxDeploymentText + kRecordOverheadBytes) <=
                  384 * 1024,
              "the ledger's bounds must leave room for the records that count");

// One line of the append-only audit trail.
struct AuditEntry {
  Time time{};
  std::string environment;
  std::string kind;  // "deployment", "skipped", "expired", "hold", "lifted", "switched", ...
  std::string message;
  std::string who;
  std::string deployment_id;
};

// A transition's result: the new state, what to append to the audit trail, and whether
// anything changed at all (when not, nothing is written and the version stays).
struct Transition {
  EnvState state;
  std::vector<AuditEntry> audit;
  bool changed = false;
  std::string note;  // why nothing changed, for the log ("duplicate delivery", ...)
};

// What GetDeployment says about a deployment.
struct DeploymentInfo {
  std::string id;
  std::optional<DeploymentStatus> status;
  std::optional<std::string> creator;
  std::optional<std::string> rollback_of;
};

// Records a deployment event. Duplicates (same MessageId, or a status already recorded),
// late non-terminal events for a finished deployment and regressions (InProgress then a late
// Created) change nothing.
Transition apply_deployment_event(const EnvState& state, const DeploymentEvent& event,
                                  const EnvironmentConfig& env, Time now);

// Records an operator command (precondition: command.environment == state.environment).
// on: a hold that keeps the page up. off: lifts the page now; with a duration or until, also
// keeps it off for that long even if deployments start.
Transition apply_operator_command(const EnvState& state, const OperatorCommand& command,
                                  Time now);

// Schedules, changes or cancels a window (precondition: command.environment ==
// state.environment). Refused (kRefused, kNotFound for an unknown id) when the window
// would end at or before `now`, end at or before its start, start in the past (a new one, or a
// new start for one that has not started), start or last beyond kLongestDuration, end after
// kLatestTime, be one too many, or have a reason or who that is not UTF-8; a window that has
// started keeps its start. The new or
// changed window's id is in Transition::note.
Result<Transition> apply_window_command(const EnvState& state, const WindowCommand& command,
                                        Time now);

// The windows that have not ended by `now`, by start (then id).
std::vector<Window> upcoming_windows(const EnvState& state, Time now);

// Records what CodeDeploy says about a deployment: its creator and, if final, its status (a
// lost "finished" notification heals here).
Transition apply_lookup(const EnvState& state, const DeploymentInfo& info, Time now);

// Applies the passage of time: starts and ends windows (audit "window-started",
// "window-ended"; an ended window is dropped), ends expired holds, expires deployments active for longer
// than max_duration (loudly), forgets records that no longer count after kRetention or beyond
// kMaxSettledRecords. Forgetting never changes what counts: a failure that a forgotten
// deployment had taken over is forgotten with it.
Transition tick(const EnvState& state, const EnvironmentConfig& env, Time now);

struct Decision {
  bool on = false;
  std::vector<std::string> reasons;   // why on (empty when off and nothing is pending)
  std::optional<Time> expected_end;   // when the page is expected to go, if known
  std::optional<Time> recheck_at;     // the next time the decision may change by time alone
  // What the public page may say: an operator's reason, never deployment ids or names.
  std::string page_message;
  std::string reason_text() const;    // reasons joined for people
};

// The desired state of the backend.
Decision decide(const EnvState& state, const EnvironmentConfig& env, Time now);

// The next moment after `now` at which time alone changes the state or the decision (a window
// starts or ends, a hold expires, a deployment's max_duration or a failure's grace runs out);
// nullopt when nothing is pending; at or before `now` when a tick is due. A daemon wakes then
// instead of waiting for its next periodic tick.
std::optional<Time> next_wake(const EnvState& state, const EnvironmentConfig& env, Time now);

// True when the deployment counts towards maintenance right now (for status listings).
bool counts(const EnvState& state, const DeploymentRecord& record, const EnvironmentConfig& env,
            Time now);

}  // namespace intermission::core
