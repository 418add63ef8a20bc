#include "app/notifications.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

namespace intermission::app {
namespace {

GetEnv env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

core::NotificationTarget target(const std::string& name, const std::string& type) {
  core::NotificationTarget t;
  t.name = name;
  t.type = type;
  return t;
}

TEST(LoadNotifyTargets, ReadsUrlsAndSecretsAndLeavesUnusableTargetsOutWithAReason) {
  const std::string file = ::testing::TempDir() + "/notify-url";
  std::ofstream(file) << "https://hooks.example.com/services/T/B/X\n";
  core::NotificationsConfig c;
  auto a = target("a", "slack");
  a.url_file = file;
  a.events = {"switched-on"};
  auto b = target("b", "webhook");
  b.url = "http://127.0.0.1:9/x";
  b.secret_env = "B_SECRET";
  b.environments = {"prod"};
  auto unset = target("c", "slack");
  unset.url_env = "C_URL";
  auto bad = target("d", "slack");
  bad.url_env = "D_URL";
  auto weak = target("e", "webhook");
  weak.url = "http://127.0.0.1:9/x";
  weak.secret_env = "E_SECRET";
  auto missing = target("f", "slack");
  missing.url_file = ::testing::TempDir() + "/no-such-file";
  c.targets = {a, b, unset, bad, weak, missing};
  const auto loaded = load_notify_targets(c, env_of({{"B_SECRET", std::string(40, 'k')},
                                                     {"D_URL", "ftp://secret-host/path"},
                                                     {"E_SECRET", "short"}}));
  ASSERT_EQ(loaded.targets.size(), 2u);
  EXPECT_EQ(loaded.targets[0].url, "https://hooks.example.com/services/T/B/X");
  EXPECT_EQ(loaded.targets[0].kinds, std::set<core::NoticeKind>{core::NoticeKind::kSwitchedOn});
  EXPECT_EQ(loaded.targets[1].type, adapters::NotifyTarget::Type::kWebhook);
  EXPECT_EQ(loaded.targets[1].secret, std::string(40, 'k'));
  EXPECT_EQ(loaded.targets[1].environments, std::set<std::string>{"prod"});
  ASSERT_EQ(loaded.problems.size(), 4u);
  EXPECT_EQ(loaded.problems[0], "notifications.targets[2] (c): $C_URL is not set");
  EXPECT_EQ(loaded.problems[1],
            "notifications.targets[3] (d): $D_URL is not an http:// or https:// URL");
  EXPECT_EQ(loaded.problems[1].find("secret-host"), std::string::npos) << "the URL is a secret";
  EXPECT_NE(loaded.problems[2].find("at least 32"), std::string::npos) << loaded.problems[2];
  EXPECT_NE(loaded.problems[3].find("cannot be read"), std::string::npos) << loaded.problems[3];
  std::remove(file.c_str());
}

TEST(DeliveryAudit, SaysWhatWentWhereAndHowItEnded) {
  adapters::DeliveryReport r;
  r.result = adapters::DeliveryReport::Result::kFailed;
  r.target = "ops";
  r.notice.kind = core::NoticeKind::kSwitchedOff;
  r.notice.environment = "prod";
  r.attempts = 5;
  r.detail = "HTTP 503";
  const core::Time now = core::from_epoch_ms(1'700'000'000'000);
  auto a = delivery_audit(r, now);
  EXPECT_EQ(a.kind, "notify-failed");
  EXPECT_EQ(a.environment, "prod");
  EXPECT_EQ(a.time, now);
  EXPECT_EQ(a.message, "switched-off to ops: failed after 5 attempts (HTTP 503)");
  r.result = adapters::DeliveryReport::Result::kDelivered;
  r.attempts = 1;
  r.detail = "HTTP 200";
  EXPECT_EQ(delivery_audit(r, now).kind, "notified");
  EXPECT_EQ(delivery_audit(r, now).message,
            "switched-off to ops: delivered after 1 attempt (HTTP 200)");
  r.result = adapters::DeliveryReport::Result::kDropped;
  EXPECT_EQ(delivery_audit(r, now).kind, "notify-dropped");
}

}  // namespace
}  // namespace intermission::app
