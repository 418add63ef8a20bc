// The ALB backend: maintenance is a listener rule (on one or more listeners of one ALB) that
// answers every request, or the configured hosts, with a fixed 503 page or forwards them to a
// maintenance target group; bypass rules above it (source CIDRs, a secret header or cookie)
// do what the listener does by default (its whole default action list, authentication
// included). In target-group mode a warm-up rule that no real request matches forwards to the
// maintenance group first, so that the ALB health-checks it (an unused group's targets are
// never checked: aws-behaviour.md §7), and users are sent there only once a target is healthy.
// Rules are replaced make-before-break. Every rule it creates carries tags
// (intermission:environment, :role, :fingerprint), so off deletes exactly those, found on the
// live listener — a lost state file cannot orphan a rule — and nothing else is touched
// (aws-facts.md §7).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/aws/aws_client.h"
#include "core/backend.h"

namespace intermission::adapters::aws {

// ALB fixed-response bodies are at most this many characters.
inline constexpr std::size_t kFixedResponseLimit = 1024;
// ALB allows this many condition values in one rule (all conditions together), and this many
// in one condition ("up to three comparison strings per condition and up to five per rule",
// ELB user guide, Listener rules for your Application Load Balancer).
inline constexpr std::size_t kConditionValuesPerRule = 5;
inline constexpr std::size_t kConditionValuesPerCondition = 3;
// ...and this many wildcards (* or ?) in one rule, and this many characters in an http-header
// value (aws-behaviour.md §8).
inline constexpr std::size_t kWildcardsPerRule = 5;
inline constexpr std::size_t kHeaderValueLimit = 128;
// Rules per listener unless the account's quota was raised (aws-behaviour.md §8).
inline constexpr std::size_t kDefaultRulesPerListener = 100;
// The header of the warm-up rule; its value is a random per-environment secret.
inline constexpr const char* kWarmUpHeader = "X-Intermission-Warm-Up";

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
  std::string bypass_secret;  // header X-Intermission-Bypass or cookie intermission_bypass
  std::string page;           // fixed-response body
  std::string status_code = "503";
  std::chrono::milliseconds health_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds poll_interval{std::chrono::seconds(5)};
  std::function<std::optional<std::chrono::steady_clock::time_point>()> deadline;
  std::size_t max_rules = kDefaultRulesPerListener;  // the account's rules-per-listener quota
  // The client secret of an authenticate-oidc default action, which ELBv2 never returns: bypass
  // rules need it to copy the authentication. Empty: bypass rules on such a listener are refused.
  std::string oidc_client_secret;
  // A fresh random token (the warm-up rule's header value). Called only when no warm-up rule
  // exists yet; must be set in target-group mode.
  std::function<std::string()> random_token;
};

// The rules maintenance needs on a listener whose default actions are `default_actions` (for
// the bypass rules to copy), before priorities are allocated; in target-group mode a warm-up
// rule matching header kWarmUpHeader = `warm_up_secret` comes first, and `fallback` (the group
// has no healthy target while maintenance is on) makes the maintenance rule answer with the
// built-in page instead of forwarding. Pure.
std::vector<core::RuleSpec> wanted_rules(const AlbSettings& s,
                                         const std::vector<core::RuleAction>& default_actions,
                                         const std::string& warm_up_secret = "",
                                         bool fallback = false);

// Gives each wanted rule a priority. A rule that is already there (an owned rule with the same
// role and fingerprint) keeps its priority; any other gets the lowest priority that no rule,
// ours or not, holds now — so a replacement never needs the priority of the rule it replaces,
// which is deleted only after it exists. The maintenance rule sits below (a higher number
// than) every bypass rule. `taken` are the priorities of rules that are not ours. Pure.
void allocate_priorities(std::vector<core::RuleSpec>& wanted,
                         const std::vector<core::OwnedRule>& owned, const std::vector<int>& taken);

// Why the API would refuse this rule (condition values, wildcards, header value length, page
// length: aws-behaviour.md §8), or empty. Pure.
std::string rule_problem(const core::RuleSpec& rule);

// 32 random hex digits (std::random_device): the default AlbSettings::random_token.
std::string random_token();

// How many of `l.desired` are not on the listener yet (each one a CreateRule). Pure.
std::size_t rules_to_create(const core::AlbListener& l);

class AlbBackend final : public core::Backend {
 public:
  // `elbv2` (an ELBv2 client) and `sleeper` must outlive the backend.
  AlbBackend(AlbSettings settings, AwsClient& elbv2, Sleeper sleeper);

  core::Result<core::Observation> observe() override;
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  core::Result<core::AlbListener> observe_listener(const std::string& arn, std::string& notes);
  core::Result<int> healthy_targets(std::string* detail);
  core::Status wait_healthy();

  AlbSettings s_;
  AwsClient& elbv2_;
  Sleeper sleep_;
  // Why rules must not be created now (a limit the switch would break, an authentication the
  // bypass rules cannot copy), found by the last observe(); empty when they may. Checked before
  // every CreateRule, so a switch that cannot finish does not start.
  std::string blocked_;
  // Target-group mode, found by the last observe(): maintenance is on and the group has no
  // healthy target, so the maintenance rule answers with the built-in page for now.
  bool fallback_ = false;
  // Rule tags by rule ARN, as read at `read`. A rule's tags are given when it is created (ours
  // by CreateRule, atomically) and its ARN is never reused, so the backend re-reads them only
  // after kTagCacheAge: each step observes every listener again, and on a listener with many
  // rules DescribeTags would otherwise be most of the calls (ELBv2 throttles Describe calls).
  struct CachedTags {
    std::map<std::string, std::string> tags;
    std::chrono::steady_clock::time_point read;
  };
  std::map<std::string, CachedTags> tag_cache_;
};

inline constexpr std::chrono::seconds kTagCacheAge{60};

}  // namespace intermission::adapters::aws
