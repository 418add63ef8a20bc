// Turns any supported input (Lambda SNS event, SNS HTTP body, bare CodeDeploy message,
// EventBridge event, operator command, or a JSON array of these) into ParsedItems.
// Pure: no I/O. See docs/architecture.md, "Events", for the shapes and their sources.
#pragma once

#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/result.h"

namespace intermission::core {

// Fails (kInvalidInput) only when `body` is not JSON at all. Any valid JSON yields items:
// what is not a deployment-level CodeDeploy event or an operator command becomes Ignored with
// the reason, so that a caller can acknowledge it (SNS and Lambda would retry an error forever).
Result<std::vector<ParsedItem>> parse_events(std::string_view body);

}  // namespace intermission::core
