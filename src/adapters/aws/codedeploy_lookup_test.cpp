#include "adapters/aws/codedeploy_lookup.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "testing/fakes.h"

namespace intermission::adapters::aws {
namespace {

TEST(CodeDeployLookup, ReadsTheCliExampleOutput) {
  // The AWS CLI's documented get-deployment output (the API's wire form).
  const auto reply =
      boost::json::parse(testing::read_fixture("aws/codedeploy-get-deployment-output.cli-example.json"));
  const std::string id(reply.at("deploymentInfo").at("deploymentId").as_string());
  auto info = parse_get_deployment(reply, id);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->id, id);
  ASSERT_TRUE(info->status.has_value());
  EXPECT_EQ(*info->status, core::DeploymentStatus::kSucceeded);
  EXPECT_EQ(info->creator, "user");
}

TEST(CodeDeployLookup, RollbackAndAutoscalingCreator) {
  const auto reply = boost::json::parse(R"({"deploymentInfo":{"deploymentId":"d-2",
      "status":"InProgress","creator":"autoscaling",
      "rollbackInfo":{"rollbackTriggeringDeploymentId":"d-1"}}})");
  auto info = parse_get_deployment(reply, "d-2");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->creator, "autoscaling");
  EXPECT_EQ(info->rollback_of, "d-1");
  EXPECT_EQ(*info->status, core::DeploymentStatus::kInProgress);
  EXPECT_FALSE(parse_get_deployment(boost::json::parse("{}"), "d-2").ok());
}

}  // namespace
}  // namespace intermission::adapters::aws
