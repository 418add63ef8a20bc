#include "core/state_codec.h"

#include <gtest/gtest.h>

namespace intermission::core {
namespace {

TEST(StateCodec, RoundTripKeepsEverything) {
  EnvState s;
  s.environment = "prod";
  DeploymentRecord r;
  r.id = "d-1";
  r.application = "shop";
  r.deployment_group = "prod-web";
  r.status = DeploymentStatus::kFailed;
  r.creator = "user";
  r.rollback_of = "d-0";
  r.first_seen = from_epoch_ms(1000);
  r.last_seen = from_epoch_ms(2000);
  r.ended_at = from_epoch_ms(2000);
  r.expired = false;
  r.dismissed = true;
  s.deployments.emplace(r.id, r);
  DeploymentRecord hook = r;
  hook.id = "build-7";
  hook.codedeploy = false;
  s.deployments.emplace(hook.id, hook);
  s.hold = Hold{true, "db \"upgrade\"\n", "alice", from_epoch_ms(3000), from_epoch_ms(9000)};
  s.applied = Applied{true, from_epoch_ms(3000), "why"};
  s.recent_message_ids = {"a", "b"};
  const std::string text = encode_state(s);
  auto back = decode_state(text, "prod", 7);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->version, 7);
  EXPECT_EQ(encode_state(*back), text);
  EXPECT_EQ(back->deployments.at("d-1").rollback_of, "d-0");
  EXPECT_TRUE(back->deployments.at("d-1").codedeploy);
  EXPECT_FALSE(back->deployments.at("build-7").codedeploy);
  EXPECT_EQ(back->hold->reason, "db \"upgrade\"\n");
}

TEST(StateCodec, ARecordStoredBeforeItsSourceWasKeptIsCodeDeploys) {
  EnvState s;
  s.environment = "prod";
  DeploymentRecord r;
  r.id = "d-1";
  r.first_seen = from_epoch_ms(1000);
  r.last_seen = from_epoch_ms(1000);
  s.deployments.emplace(r.id, r);
  std::string text = encode_state(s);
  const std::string field = R"("codedeploy":true,)";
  const auto at = text.find(field);
  ASSERT_NE(at, std::string::npos) << text;
  text.erase(at, field.size());
  auto back = decode_state(text, "prod", 1);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->deployments.at("d-1").codedeploy);
}

TEST(StateCodec, RejectsWhatItDidNotWrite) {
  EXPECT_FALSE(decode_state("nope", "e", 1).ok());
  EXPECT_FALSE(decode_state("{}", "e", 1).ok());
  EXPECT_FALSE(decode_state(R"({"format":2,"deployments":[]})", "e", 1).ok());
  EXPECT_FALSE(decode_state(R"({"format":1,"deployments":[{"id":5}]})", "e", 1).ok());
  EXPECT_TRUE(decode_state(R"({"format":1,"deployments":[]})", "e", 1).ok());
}

// Earlier versions wrote a five-digit year for a far-future hold and could not read it back,
// which wedged the environment; such a state loads, with the hold ending at the last time.
TEST(StateCodec, AStateWedgedByAFiveDigitYearLoadsAgain) {
  auto s = decode_state(
      R"({"format":1,"deployments":[],"hold":{"on":true,"reason":"r","who":"w",)"
      R"("since":"2026-01-01T00:00:00.000Z","until":"33658-09-27T01:46:40.000Z"}})",
      "e", 1);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->hold->until, kLatestTime);
  EXPECT_FALSE(decode_state(
                   R"({"format":1,"deployments":[],"hold":{"on":true,"reason":"r","who":"w",)"
                   R"("since":"2026-01-01T00:00:00.000Z","until":"3365x-09-27T01:46:40.000Z"}})",
                   "e", 1)
                   .ok());
}

}  // namespace
}  // namespace intermission::core
