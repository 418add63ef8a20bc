// The ALB backend: maintenance is a listener rule (on one or more listeners of one ALB) that
// answers every request, or the configured hosts, with a fixed 503 page or forwards them to a
// maintenance target group; bypass rules above it (source CIDRs, a secret header or cookie)
// forward to what the listener does by default. Every rule it creates carries tags
// (intermission:environment, :role, :fingerprint), so off deletes exactly those, found on the
// live listener — a lost state file cannot orphan a rule — and nothing else is touched
// (aws-facts.md §7).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "adapters/aws/aws_client.h"
#include "core/backend.h"

namespace intermission::adapters::aws {

// ALB fixed-response bodies are at most this many characters.
inline constexpr std::size_t kFixedResponseLimit = 1024;
// ALB allows this many condition values in one rule (all conditions together).
inline constexpr std::size_t kConditionValuesPerRule = 5;

// Characters as the API counts them for MessageBody: UTF-16 code units (a character outside
// the Basic Multilingual Plane counts twice); invalid UTF-8 counts per byte. Pure.
std::size_t api_characters(std::string_view utf8);

// The built-in fixed-response page: minified HTML and inline CSS, well under 1024 characters.
const std::string& default_alb_page();

struct AlbSettings {
  std::string environment;
  std::vector<std::string> listeners;
  std::string mode = "fixed-response";  // or "target-group"
  std::string target_group;             // target-group mode
  std::vector<std::string> hosts;       // host-header condition; empty = every request
  std::vector<std::string> bypass_cidrs;
  std::string bypass_secret;            // header X-Intermission-Bypass or cookie intermission_bypass
  std::string page;                     // fixed-response body
  std::string status_code = "503";
  std::chrono::milliseconds health_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds poll_interval{std::chrono::seconds(5)};
  std::function<std::optional<std::chrono::steady_clock::time_point>()> deadline;
};

// The rules maintenance needs on a listener whose default actions are `default_forward`
// (for the bypass rules), before priorities are allocated. Pure.
std::vector<core::RuleSpec> wanted_rules(const AlbSettings& s,
                                         const std::vector<core::RuleAction>& default_forward);

// Gives each wanted rule a priority: the one its existing rule has, if that still keeps bypass
// rules above the maintenance rule; otherwise the lowest free ones, in order. `taken` are the
// priorities of rules that are not ours. Pure.
void allocate_priorities(std::vector<core::RuleSpec>& wanted,
                         const std::vector<core::OwnedRule>& owned,
                         const std::vector<int>& taken);

class AlbBackend final : public core::Backend {
 public:
  // `elbv2` (an ELBv2 client) and `sleeper` must outlive the backend.
  AlbBackend(AlbSettings settings, AwsClient& elbv2, Sleeper sleeper);

  core::Result<core::Observation> observe() override;
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  core::Result<core::AlbListener> observe_listener(const std::string& arn, std::string& notes);
  core::Result<int> healthy_targets();
  core::Status wait_healthy();

  AlbSettings s_;
  AwsClient& elbv2_;
  Sleeper sleep_;
};

}  // namespace intermission::adapters::aws
