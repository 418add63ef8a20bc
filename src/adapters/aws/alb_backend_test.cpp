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

const std::vector<core::RuleAction> kForward = {{"forward", "", "", "", {{"arn:tg/app", 1}}}};

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

TEST(AlbRules, PrioritiesAreFoundNeverAssumed) {
  auto s = settings();
  s.bypass_secret = "x";
  auto rules = wanted_rules(s, kForward);
  allocate_priorities(rules, {}, {1, 2, 5});
  EXPECT_EQ(rules[0].priority, 3);  // bypass-header
  EXPECT_EQ(rules[1].priority, 4);  // bypass-cookie
  EXPECT_EQ(rules[2].priority, 6);  // maintenance, below its bypass rules
  // Our existing rules keep their priorities...
  std::vector<core::OwnedRule> owned = {{"a", "bypass-header", 10, ""},
                                        {"b", "bypass-cookie", 11, ""},
                                        {"c", "maintenance", 12, ""}};
  allocate_priorities(rules, owned, {1, 2, 5});
  EXPECT_EQ(rules[2].priority, 12);
  // ...unless that would put a bypass rule below the maintenance rule.
  owned[0].priority = 13;
  allocate_priorities(rules, owned, {1, 2, 5});
  EXPECT_EQ(rules[0].priority, 3);
  EXPECT_EQ(rules[2].priority, 6);
}

}  // namespace
}  // namespace intermission::adapters::aws
