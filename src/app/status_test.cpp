#include "app/status.h"

#include <gtest/gtest.h>

namespace intermission::app {
namespace {

core::AuditEntry line(const std::string& kind, const std::string& message) {
  core::AuditEntry a;
  a.environment = "prod";
  a.kind = kind;
  a.message = message;
  return a;
}

std::vector<std::string> messages(const std::vector<core::AuditEntry>& audit) {
  std::vector<std::string> out;
  for (const auto& a : audit) out.push_back(a.message);
  return out;
}

TEST(StatusRecent, LeavesDeliveredNoticesOutAndKeepsTheNewestOldestFirst) {
  const std::vector<core::AuditEntry> audit = {
      line("hold", "h1"),         line("switched", "s1"),      line("notified", "n1"),
      line("notified", "n2"),     line("notify-failed", "f1"), line("lifted", "l1"),
      line("switched", "s2"),     line("notified", "n3"),      line("notify-dropped", "d1"),
  };
  EXPECT_EQ(messages(status_recent(audit, 4)),
            (std::vector<std::string>{"f1", "l1", "s2", "d1"}));
  EXPECT_EQ(messages(status_recent(audit, 100)),
            (std::vector<std::string>{"h1", "s1", "f1", "l1", "s2", "d1"}));
  EXPECT_TRUE(status_recent({}, 10).empty());
  EXPECT_TRUE(status_recent(audit, 0).empty());
}

// One environment whose ledger cannot be read does not hide the others.
TEST(Status, AnUnreadableEnvironmentIsShownAsSuchBesideTheOthers) {
  core::EnvironmentConfig prod, staging;
  prod.name = "prod";
  staging.name = "staging";
  std::vector<EnvironmentStatus> envs(2);
  envs[0].config = &prod;
  envs[0].error = "stored state is not JSON: syntax error";
  envs[1].config = &staging;
  envs[1].backend = "log";
  const core::Time now = core::from_epoch_ms(0);
  const std::string text = status_text(envs, now);
  EXPECT_NE(text.find("prod: unreadable: stored state is not JSON"), std::string::npos) << text;
  EXPECT_NE(text.find("staging: maintenance off"), std::string::npos) << text;
  const auto doc = status_json(envs, now);
  const auto& list = doc.at("environments").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list.at(0).at("error").as_string(), "stored state is not JSON: syntax error");
  EXPECT_FALSE(list.at(1).at("on").as_bool());
}

}  // namespace
}  // namespace intermission::app
