#include "core/event.h"

#include <cctype>

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

}  // namespace intermission::core
