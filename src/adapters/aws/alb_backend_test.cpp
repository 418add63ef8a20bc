#include "adapters/aws/alb_backend.h"

#include <gtest/gtest.h>

namespace intermission::adapters::aws {
namespace {

TEST(AlbBudget, CountsCharactersAsTheApiDoes) {
  EXPECT_EQ(api_characters("abc"), 3u);
  EXPECT_EQ(api_characters("caf\xc3\xa9"), 4u) << "é is one character, two bytes";
  EXPECT_EQ(api_characters("\xe2\x82\xac"), 1u) << "€";
  EXPECT_EQ(api_characters("\xf0\x9f\x9a\xa7"), 2u) << "🚧 is two UTF-16 units";
  EXPECT_EQ(api_characters("\xff\xfe"), 2u) << "invalid bytes count one each";
  EXPECT_LE(api_characters(default_alb_page()), kFixedResponseLimit);
  EXPECT_NE(default_alb_page().find("data-intermission=maintenance"), std::string::npos);
}

AlbSettings settings() {
  AlbSettings s;
  s.environment = "prod";
  s.listeners = {"arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/web/1/2"};
  return s;
}

const std::vector<core::RuleAction> kForward = {{"forward", "", "", "", {{"arn:tg/app", 1}}, {}}};

TEST(AlbRules, MaintenanceMatchesEverythingOrTheHosts) {
  auto s = settings();
  auto rules = wanted_rules(s, kForward);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].role, "maintenance");
  EXPECT_EQ(rules[0].conditions[0].field, "path-pattern");
  EXPECT_EQ(rules[0].actions[0].type, "fixed-response");
  EXPECT_EQ(rules[0].actions[0].status_code, "503");
  s.hosts = {"shop.example.com"};
  s.mode = "target-group";
  s.target_group = "arn:tg/maintenance";
  rules = wanted_rules(s, kForward);
  EXPECT_EQ(rules[0].conditions[0].field, "host-header");
  EXPECT_EQ(rules[0].actions[0].type, "forward");
  EXPECT_EQ(rules[0].actions[0].target_groups[0].first, "arn:tg/maintenance");
}

TEST(AlbRules, BypassCidrsAreSplitToFitFiveValuesPerRule) {
  auto s = settings();
  s.hosts = {"a.example.com", "b.example.com"};  // 2 values of each rule go to the scope
  s.bypass_cidrs = {"10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16",
                    "10.5.0.0/16", "10.6.0.0/16"};
  s.bypass_secret = "s3cret";
  const auto rules = wanted_rules(s, kForward);
  ASSERT_EQ(rules.size(), 6u);  // 3 CIDR rules (3+3+1), header, cookie, maintenance
  for (const auto& r : rules) {
    std::size_t values = 0;
    for (const auto& c : r.conditions) values += c.values.size();
    EXPECT_LE(values, kConditionValuesPerRule) << r.role;
  }
  EXPECT_EQ(rules[0].conditions[1].values.size(), 3u);
  EXPECT_EQ(rules[2].conditions[1].values.size(), 1u);
  EXPECT_EQ(rules[3].conditions[1].header_name, "X-Intermission-Bypass");
  EXPECT_EQ(rules[4].conditions[1].values[0], "*intermission_bypass=s3cret*");
  EXPECT_EQ(rules[4].actions[0].target_groups[0].first, "arn:tg/app") << "forwards as usual";
  EXPECT_EQ(rules.back().role, "maintenance");
}

std::vector<core::OwnedRule> as_owned(const std::vector<core::RuleSpec>& rules,
                                      const std::vector<int>& priorities) {
  std::vector<core::OwnedRule> out;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    out.push_back(
        {"arn:" + rules[i].role, rules[i].role, priorities[i], core::fingerprint(rules[i])});
  }
  return out;
}

TEST(AlbRules, PrioritiesAreFoundNeverAssumed) {
  auto s = settings();
  s.bypass_secret = "x";
  auto rules = wanted_rules(s, kForward);
  allocate_priorities(rules, {}, {1, 2, 5});
  EXPECT_EQ(rules[0].priority, 3);  // bypass-header
  EXPECT_EQ(rules[1].priority, 4);  // bypass-cookie
  EXPECT_EQ(rules[2].priority, 6);  // maintenance, below its bypass rules
  // Our existing rules keep their priorities...
  auto owned = as_owned(rules, {10, 11, 12});
  allocate_priorities(rules, owned, {1, 2, 5});
  EXPECT_EQ(rules[0].priority, 10);
  EXPECT_EQ(rules[2].priority, 12);
  // ...but the maintenance rule moves below a bypass rule that sits under it, to a priority
  // nobody holds.
  owned[0].priority = 13;
  allocate_priorities(rules, owned, {1, 2, 5});
  EXPECT_EQ(rules[0].priority, 13);
  EXPECT_EQ(rules[2].priority, 14);
}

TEST(AlbRules, AReplacementNeverTakesThePriorityOfTheRuleItReplaces) {
  auto s = settings();
  s.bypass_secret = "x";
  auto rules = wanted_rules(s, kForward);
  auto owned = as_owned(rules, {1, 2, 3});
  owned[2].fingerprint = "an old page";  // the page changed
  allocate_priorities(rules, owned, {});
  EXPECT_EQ(rules[0].priority, 1);
  EXPECT_EQ(rules[1].priority, 2);
  EXPECT_EQ(rules[2].priority, 4) << "3 is still held by the old maintenance rule";
  owned[0].fingerprint = "an old secret";  // the secret changed: both bypass rules anew
  owned[1].fingerprint = "an old secret";
  owned[2].fingerprint = core::fingerprint(rules[2]);
  allocate_priorities(rules, owned, {4});
  EXPECT_EQ(rules[0].priority, 5);
  EXPECT_EQ(rules[1].priority, 6);
  EXPECT_EQ(rules[2].priority, 7) << "below the new bypass rules";
}

TEST(AlbRules, TargetGroupModeWarmsTheGroupUpWithARuleNoRequestMatches) {
  auto s = settings();
  s.mode = "target-group";
  s.target_group = "arn:tg/maintenance";
  auto rules = wanted_rules(s, kForward, "0123456789abcdef0123456789abcdef");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].role, core::kWarmUpRole);
  ASSERT_EQ(rules[0].conditions.size(), 1u);
  EXPECT_EQ(rules[0].conditions[0].field, "http-header");
  EXPECT_EQ(rules[0].conditions[0].header_name, kWarmUpHeader);
  EXPECT_EQ(rules[0].conditions[0].values[0], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(rules[0].actions[0].target_groups[0].first, "arn:tg/maintenance");
  EXPECT_EQ(wanted_rules(s, kForward).size(), 1u) << "no secret, no warm-up rule";
  // The group lost its last healthy target during maintenance: the ALB answers itself.
  rules = wanted_rules(s, kForward, "0123456789abcdef0123456789abcdef", true);
  EXPECT_EQ(rules[0].actions[0].target_groups[0].first, "arn:tg/maintenance") << "still warm";
  EXPECT_EQ(rules[1].actions[0].type, "fixed-response");
  EXPECT_EQ(rules[1].actions[0].body, default_alb_page());
  const std::string a = random_token();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, random_token());
}

TEST(AlbRules, BypassRulesCopyTheWholeDefaultActionAuthenticationIncluded) {
  auto s = settings();
  s.bypass_cidrs = {"10.0.0.0/8"};
  std::vector<core::RuleAction> defaults = {
      {"authenticate-cognito", "", "", "", {}, {{"UserPoolArn", "arn:pool"}}}, kForward[0]};
  const auto rules = wanted_rules(s, defaults);
  ASSERT_EQ(rules[0].actions.size(), 2u);
  EXPECT_EQ(rules[0].actions[0].type, "authenticate-cognito");
  EXPECT_EQ(rules[0].actions[1].type, "forward");
}

TEST(AlbRules, LimitsTheApiWouldRefuseAreFoundFirst) {
  auto s = settings();
  s.hosts = {"*.a.*", "*.b.*", "??.c"};
  auto rules = wanted_rules(s, kForward);
  EXPECT_NE(rule_problem(rules.back()).find("6 wildcards; an ALB rule takes at most 5"),
            std::string::npos)
      << rule_problem(rules.back());
  s.hosts = {};
  s.bypass_secret = std::string(107, 'k');
  rules = wanted_rules(s, kForward);
  EXPECT_EQ(rule_problem(rules[0]), "") << "the header rule's value is 107 characters";
  EXPECT_NE(rule_problem(rules[1]).find("at most 128"), std::string::npos) << "the cookie's is 129";
  s.page = std::string(1025, 'x');
  EXPECT_NE(rule_problem(wanted_rules(s, kForward).back()).find("1024"), std::string::npos);
}

}  // namespace
}  // namespace intermission::adapters::aws
