#include "app/lambda_command.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "testing/fakes.h"

namespace intermission::app {
namespace {

using namespace intermission::testing;  // NOLINT

// A CodeDeploy trigger message as SNS hands it to Lambda.
std::string sns_event(const std::string& deployment_id, const std::string& status) {
  const boost::json::object message{{"applicationName", "shop"},
                                    {"deploymentGroupName", "prod-web"},
                                    {"deploymentId", deployment_id},
                                    {"status", status},
                                    {"eventTriggerName", "intermission"},
                                    {"createTime", "2026-11-27T10:00:00.000Z"}};
  const boost::json::object sns{{"Type", "Notification"},
                                {"MessageId", deployment_id + "-" + status},
                                {"TopicArn", "arn:aws:sns:eu-west-1:123456789012:deploys"},
                                {"Message", boost::json::serialize(message)},
                                {"Timestamp", "2026-11-27T10:00:00.000Z"}};
  return boost::json::serialize(boost::json::object{
      {"Records", boost::json::array{boost::json::object{{"EventSource", "aws:sns"},
                                                         {"Sns", sns}}}}});
}

class LambdaInvocationTest : public ::testing::Test {
 protected:
  LambdaInvocationTest() {
    config_.file = "test.yaml";
    core::EnvironmentConfig prod;
    prod.name = "prod";
    prod.backend.type = "fake";
    config_.environments["prod"] = prod;
    config_.routes = {{"*", "*-*", "{1}", {}}};
  }

  InvocationResult invoke(const std::string& event, bool deadline_passed = false) {
    core::Controller c(config_, {store_, backends_, clock_, log_, nullptr, "lambda"});
    return handle_invocation(c, event, log_, [deadline_passed] { return deadline_passed; });
  }

  core::Config config_;
  MemoryStore store_;
  FakeBackendFactory backends_;
  ManualClock clock_;
  RecordingLogger log_;
};

TEST_F(LambdaInvocationTest, EventIsHandledAndSummarised) {
  const auto r = invoke(sns_event("d-1", "CREATED"));
  ASSERT_TRUE(r.ok) << r.error_message;
  const auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body.at("status").as_string(), "done");
  const auto& result = body.at("results").as_array().at(0).as_object();
  EXPECT_EQ(result.at("environment").as_string(), "prod");
  EXPECT_TRUE(result.at("on").as_bool());
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(LambdaInvocationTest, UnparseableEventIsAcknowledgedNotRetried) {
  const auto r = invoke("{not json");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(boost::json::parse(r.body).at("status").as_string(), "ignored");
  EXPECT_EQ(store_.writes, 0);
}

// An operator command the core refuses (here an until in the past) is an error the invoker
// sees, typed Intermission.Refused, and nothing of the invocation is acted on: not even the
// items before it.
TEST_F(LambdaInvocationTest, ARefusedOperatorCommandIsAnErrorAndNothingIsDone) {
  const auto r = invoke(R"([{"operator":{"environment":"prod","action":"on"}},
      {"operator":{"environment":"prod","action":"on","until":"2001-01-01T00:00:00Z"}}])");
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error_type, "Intermission.Refused");
  EXPECT_NE(r.error_message.find("in the past"), std::string::npos) << r.error_message;
  EXPECT_EQ(store_.writes, 0);
  EXPECT_FALSE(backends_.switches["prod"].on);
}

TEST_F(LambdaInvocationTest, BackendFailureIsAnErrorTypedByItsCode) {
  backends_.switches["prod"].fail_next_applies = 1;
  const auto r = invoke(sns_event("d-1", "CREATED"));
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error_type, "Intermission.Unavailable");
  EXPECT_NE(r.error_message.find("injected failure"), std::string::npos) << r.error_message;
  EXPECT_TRUE(store_.load("prod")->deployments.contains("d-1"))
      << "the event is recorded; the retry finishes the switch";
}

// A wait stopped by the invocation's deadline: the event is recorded, the switch is left to
// the next invocation or tick, and Lambda is not asked to retry (that would only repeat it).
TEST_F(LambdaInvocationTest, FailureAfterTheDeadlineIsDeferredNotRetried) {
  backends_.switches["prod"].fail_next_applies = 1;
  const auto r = invoke(sns_event("d-1", "CREATED"), true);
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(boost::json::parse(r.body).at("status").as_string(), "deferred");
  EXPECT_TRUE(store_.load("prod")->deployments.contains("d-1"));
  EXPECT_FALSE(backends_.switches["prod"].on);
  EXPECT_TRUE(log_.contains(core::LogLevel::kWarn, "stopped before the invocation's deadline"));
}

// The deadline stopped the recording itself (the store throttled for the whole invocation):
// the input is not in the ledger, so acknowledging it would lose it. Lambda must retry it.
TEST_F(LambdaInvocationTest, AnInputNotRecordedByTheDeadlineIsRetriedNeverAcknowledged) {
  store_.failures_to_inject = 1;
  const auto r = invoke(sns_event("d-1", "CREATED"), true);
  ASSERT_FALSE(r.ok) << r.body;
  EXPECT_EQ(r.error_type, "Intermission.Unavailable");
  EXPECT_FALSE(store_.load("prod")->deployments.contains("d-1"));
  const auto retried = invoke(sns_event("d-1", "CREATED"));
  ASSERT_TRUE(retried.ok) << retried.error_message;
  EXPECT_TRUE(backends_.switches["prod"].on) << "the retry records it and switches";
}

// The deadline stopped the switch: the response says so, and what became of the lease.
TEST_F(LambdaInvocationTest, DeadlineStopSaysWhatBecameOfTheLease) {
  backends_.switches["prod"].fail_next_applies = 1;
  core::Controller c(config_, {store_, backends_, clock_, log_, nullptr, "lambda"});
  bool asked = false;
  const auto r = handle_invocation(
      c, sns_event("d-1", "CREATED"), log_, [] { return true; },
      [&] {
        asked = true;
        return give_back_leases(store_, config_, "lambda", clock_.now());
      });
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_TRUE(asked);
  const auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body.at("status").as_string(), "deferred");
  const std::string error(body.at("error").as_string());
  EXPECT_NE(error.find("injected failure"), std::string::npos) << error;
  // The controller gave its lease back when the switch failed: nothing is left held.
  EXPECT_NE(error.find("held no switching lease"), std::string::npos) << error;
  EXPECT_FALSE(*store_.lease("prod"));
  EXPECT_TRUE(log_.contains(core::LogLevel::kWarn, "held no switching lease"));
}

TEST_F(LambdaInvocationTest, GiveBackLeasesReleasesOnlyOurs) {
  core::EnvironmentConfig staging;
  staging.name = "staging";
  staging.backend.type = "fake";
  config_.environments["staging"] = staging;
  const core::Time now = clock_.now();
  ASSERT_TRUE(store_.acquire_lease("prod", "lambda", now, now + std::chrono::minutes(5)));
  ASSERT_TRUE(store_.acquire_lease("staging", "daemon", now, now + std::chrono::minutes(5)));
  EXPECT_EQ(give_back_leases(store_, config_, "lambda", now), "gave the switching lease of prod back");
  EXPECT_FALSE(*store_.lease("prod"));
  EXPECT_EQ((*store_.lease("staging"))->holder, "daemon");
  EXPECT_EQ(give_back_leases(store_, config_, "lambda", now), "held no switching lease");
}

TEST(LambdaErrorType, IsTheCodeInPascalCase) {
  EXPECT_EQ(lambda_error_type(core::ErrorCode::kUnavailable), "Intermission.Unavailable");
  EXPECT_EQ(lambda_error_type(core::ErrorCode::kNotFound), "Intermission.NotFound");
  EXPECT_EQ(lambda_error_type(core::ErrorCode::kInvalidInput), "Intermission.InvalidInput");
}

}  // namespace
}  // namespace intermission::app
