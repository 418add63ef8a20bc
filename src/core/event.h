// The one value every input becomes: a deployment event, an operator command, or a note that
// the input was acknowledged and ignored (with the reason, for the log).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/time.h"

namespace intermission::core {

// CodeDeploy's deployment status in one vocabulary. The SNS trigger (CREATED, IN_PROGRESS...),
// the API (Created, InProgress, Baking...) and EventBridge (START, SUCCESS...) all map here.
enum class DeploymentStatus {
  kCreated,
  kQueued,
  kInProgress,
  kBaking,
  kReady,
  kSucceeded,
  kFailed,
  kStopped,
};

// Succeeded, Failed and Stopped are final: nothing reopens a deployment after them.
bool is_terminal(DeploymentStatus status);
// The API spelling ("InProgress").
std::string_view to_string(DeploymentStatus status);
// Any of the three vocabularies, case-insensitive, '_' ignored. nullopt for anything else
// (CodeDeploy has sent "unknown").
std::optional<DeploymentStatus> parse_deployment_status(std::string_view text);

enum class EventSource {
  kLambdaSns,    // Lambda event with Records[].Sns
  kSnsHttp,      // body of an SNS HTTP(S) delivery
  kCodeDeploy,   // a bare CodeDeploy trigger message
  kEventBridge,  // EventBridge "CodeDeploy Deployment State-change Notification"
  kOperator,     // an operator command
  kLookup,       // CodeDeploy GetDeployment (a re-check on a tick)
  kWebhook,      // the daemon's signed webhook for deploy pipelines
};
std::string_view to_string(EventSource source);

struct DeploymentEvent {
  EventSource source = EventSource::kCodeDeploy;
  std::string environment;  // set by sources that name it (the webhook): no routing then
  std::string region;
  std::string application;
  std::string deployment_group;
  std::string deployment_id;
  DeploymentStatus status = DeploymentStatus::kCreated;
  std::optional<std::string> creator;  // only GetDeployment knows it; notifications don't
  std::optional<Time> time;            // when the source says it happened
  std::string message_id;              // SNS MessageId / EventBridge id; empty if none
  std::optional<std::string> rollback_of;  // the deployment this one rolls back
  std::optional<std::string> error_code;
  std::optional<std::string> error_message;
};

enum class OperatorAction { kOn, kOff };

struct OperatorCommand {
  std::string environment;
  OperatorAction action = OperatorAction::kOn;
  std::string reason;
  std::optional<Duration> duration;  // "for"; resolved against the clock when applied
  std::optional<Time> until;         // absolute end; never given together with duration
  std::string who;
  // What a parser found wrong with a value as it was sent (a 'for' that is not a duration, an
  // 'until' that is not a time or past the year 9999); check_operator_command refuses it.
  std::string problem;
};

// Longest reason or who an operator may give (a hold's or a scheduled window's): it is shown
// on the page and kept in the environment's one stored item.
inline constexpr std::size_t kMaxOperatorText = 500;

// Longest deployment id, application, deployment group, creator or rolled-back id a deployment
// event may carry: each record keeps them in the environment's one stored item (CodeDeploy's
// ids are 11 bytes, a Flux object and revision about a hundred). Its message id is kept among
// the recent ones (core/ledger.h kRecentMessageIds): at most kMaxMessageId bytes (an SNS or
// EventBridge id is 36, ours about 40).
inline constexpr std::size_t kMaxDeploymentText = 512;
inline constexpr std::size_t kMaxMessageId = 200;

// Whether a deployment event can be kept: those fields within their bounds and free of control
// characters (which the stored item would escape to six bytes each). kInvalidInput naming the
// field, otherwise ok.
Status check_deployment_event(const DeploymentEvent& event);

// The one check of an operator command, made by the core before it is applied (so by every
// front end: the CLI, `handle` and the Lambda, the operator API) and by front ends that want to
// refuse before doing anything else: the environment is named; environment, reason and who are
// UTF-8 and at most kMaxOperatorText bytes each; not both a duration and an until; a duration
// longer than 0 and at most kLongestDuration; an until after `now` and within the years 0000-9999;
// no parser problem. kRefused with the reason, naming the field, otherwise ok.
Status check_operator_command(const OperatorCommand& command, Time now);

// An operator's scheduled maintenance window: schedule, change or cancel one. Times are
// absolute (start/end) or relative to the moment the command is applied (start_in/duration),
// so "+2h" means two hours after the ledger records it.
enum class WindowAction { kSchedule, kChange, kCancel };
struct WindowCommand {
  std::string environment;
  WindowAction action = WindowAction::kSchedule;
  std::string id;                     // change, cancel: the window's id
  std::optional<Time> start;          // schedule (required, or start_in); change: optional
  std::optional<Duration> start_in;
  std::optional<Time> end;            // end or duration (from the start); change: optional
  std::optional<Duration> duration;
  std::optional<std::string> reason;  // change: nullopt keeps the old one
  std::string who;
};

// Reads when a window starts into `command`: "+2h", "+30m", "+0s" (relative to when the ledger
// records it: start_in) or a time with its zone, read_operator_time (start). kInvalidInput with
// the accepted shapes otherwise.
Status read_window_start(std::string_view text, WindowCommand& command);
// Reads when a window ends: a time with its zone (end). kInvalidInput otherwise.
Status read_window_end(std::string_view text, WindowCommand& command);

// Acknowledged and deliberately not acted on (instance-level messages, test messages, ...).
struct Ignored {
  std::string reason;
};

// A request for the periodic work (an EventBridge "Scheduled Event", or {"intermission":"tick"}).
struct TickRequest {};

using ParsedItem = std::variant<DeploymentEvent, OperatorCommand, Ignored, TickRequest>;

}  // namespace intermission::core
