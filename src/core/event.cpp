#include "core/event.h"

#include <algorithm>
#include <cctype>

#include "core/text.h"

namespace intermission::core {

bool is_terminal(DeploymentStatus status) {
  return status == DeploymentStatus::kSucceeded || status == DeploymentStatus::kFailed ||
         status == DeploymentStatus::kStopped;
}

std::string_view to_string(DeploymentStatus status) {
  switch (status) {
    case DeploymentStatus::kCreated: return "Created";
    case DeploymentStatus::kQueued: return "Queued";
    case DeploymentStatus::kInProgress: return "InProgress";
    case DeploymentStatus::kBaking: return "Baking";
    case DeploymentStatus::kReady: return "Ready";
    case DeploymentStatus::kSucceeded: return "Succeeded";
    case DeploymentStatus::kFailed: return "Failed";
    case DeploymentStatus::kStopped: return "Stopped";
  }
  return "Unknown";
}

std::optional<DeploymentStatus> parse_deployment_status(std::string_view text) {
  std::string key;
  for (const char c : text) {
    if (c != '_') key += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  // SNS trigger and API vocabularies (UPPER_SNAKE and PascalCase fold to the same key).
  if (key == "CREATED") return DeploymentStatus::kCreated;
  if (key == "QUEUED") return DeploymentStatus::kQueued;
  if (key == "INPROGRESS") return DeploymentStatus::kInProgress;
  if (key == "BAKING") return DeploymentStatus::kBaking;
  if (key == "READY") return DeploymentStatus::kReady;
  if (key == "SUCCEEDED") return DeploymentStatus::kSucceeded;
  if (key == "FAILED") return DeploymentStatus::kFailed;
  if (key == "STOPPED") return DeploymentStatus::kStopped;
  // EventBridge vocabulary.
  if (key == "START") return DeploymentStatus::kInProgress;
  if (key == "SUCCESS") return DeploymentStatus::kSucceeded;
  if (key == "FAILURE") return DeploymentStatus::kFailed;
  if (key == "STOP") return DeploymentStatus::kStopped;
  return std::nullopt;
}

std::string_view to_string(EventSource source) {
  switch (source) {
    case EventSource::kLambdaSns: return "lambda-sns";
    case EventSource::kSnsHttp: return "sns-http";
    case EventSource::kCodeDeploy: return "codedeploy";
    case EventSource::kEventBridge: return "eventbridge";
    case EventSource::kOperator: return "operator";
    case EventSource::kLookup: return "lookup";
    case EventSource::kWebhook: return "webhook";
  }
  return "unknown";
}

Status read_window_start(std::string_view text, WindowCommand& command) {
  if (!text.empty() && text.front() == '+') {
    auto d = read_duration(text.substr(1));
    if (!d) return Error::invalid_input("the start " + d.error().message);
    command.start_in = *d;
    command.start.reset();
    return {};
  }
  auto t = read_operator_time(text);
  if (t) {
    command.start = *t;
    command.start_in.reset();
    return {};
  }
  return Error::invalid_input("the start is neither a delay like +2h nor a time: " +
                              t.error().message);
}

Status read_window_end(std::string_view text, WindowCommand& command) {
  auto t = read_operator_time(text);
  if (!t) return Error::invalid_input("the end " + t.error().message);
  command.end = *t;
  command.duration.reset();
  return {};
}

Status check_deployment_event(const DeploymentEvent& e) {
  struct Field {
    const char* name;
    const std::string& value;
    std::size_t bound;
  };
  const std::string none;
  const Field fields[] = {
      {"deployment id", e.deployment_id, kMaxDeploymentText},
      {"application", e.application, kMaxDeploymentText},
      {"deployment group", e.deployment_group, kMaxDeploymentText},
      {"creator", e.creator ? *e.creator : none, kMaxDeploymentText},
      {"rolled-back deployment id", e.rollback_of ? *e.rollback_of : none, kMaxDeploymentText},
      {"message id", e.message_id, kMaxMessageId}};
  for (const auto& f : fields) {
    if (f.value.size() > f.bound) {
      return Error::invalid_input("the " + std::string(f.name) + " is " +
                                  std::to_string(f.value.size()) + " bytes, more than the " +
                                  std::to_string(f.bound) + " a deployment may carry");
    }
    if (std::any_of(f.value.begin(), f.value.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      return Error::invalid_input("the " + std::string(f.name) + " holds a control character");
    }
  }
  return {};
}

Status check_operator_command(const OperatorCommand& c, Time now) {
  if (!c.problem.empty()) return Error::refused(c.problem);
  if (c.environment.empty()) return Error::refused("an operator command names its environment");
  if (auto st = check_utf8(c.environment, "the environment"); !st) return st;
  if (auto st = check_utf8(c.reason, "the reason"); !st) return st;
  if (auto st = check_utf8(c.who, "who"); !st) return st;
  if (c.reason.size() > kMaxOperatorText || c.who.size() > kMaxOperatorText) {
    return Error::refused("the reason and who are at most " + std::to_string(kMaxOperatorText) +
                          " bytes each");
  }
  if (c.duration && c.until) return Error::refused("give 'for' or 'until', not both");
  if (c.duration && c.duration->count() <= 0) {
    return Error::refused("'for' must be longer than 0s");
  }
  if (c.duration && *c.duration > kLongestDuration) {
    return Error::refused("'for' is longer than " + format_duration(kLongestDuration) +
                          ", the longest duration accepted");
  }
  if (c.until && !within_bounds(*c.until)) {
    return Error::refused("'until' must lie within the years 0000-9999");
  }
  if (c.until && *c.until <= now) {
    return Error::refused("'until' (" + format_iso8601(*c.until) +
                          ") is in the past: it must be later than now (" + format_iso8601(now) +
                          ")");
  }
  return {};
}

}  // namespace intermission::core
