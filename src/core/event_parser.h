// Turns any supported input (Lambda SNS event, SNS HTTP body, bare CodeDeploy message,
// EventBridge event, operator command, or a JSON array of these) into ParsedItems.
// Pure: no I/O. See docs/architecture.md, "Events", for the shapes and their sources.
#pragma once

#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/result.h"
#include "core/sns.h"

namespace intermission::core {

// Fails (kInvalidInput) only when `body` is not JSON at all. Any valid JSON yields items:
// what is not a deployment-level CodeDeploy event or an operator command becomes Ignored with
// the reason, so that a caller can acknowledge it (SNS and Lambda would retry an error forever).
// An SNS message inside (each record of a Lambda event, an HTTP delivery) is read as
// events_from_sns reads it.
Result<std::vector<ParsedItem>> parse_events(std::string_view body);

// The events an SNS message carries, built from that message alone (the caller verified it,
// or trusts where it came from): CodeDeploy only. A Notification's Message is a CodeDeploy
// trigger message, or an EventBridge event with `source: aws.codedeploy`; anything else
// (operator commands, ticks, arrays, other sources, another SNS envelope) is Ignored, since
// whoever may publish to a topic must not gain an operator's powers. Other types are Ignored.
std::vector<ParsedItem> events_from_sns(const SnsMessage& m, EventSource source);

}  // namespace intermission::core
