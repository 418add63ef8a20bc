#include "adapters/aws/aws_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <thread>

#include "testing/fakes.h"

namespace intermission::adapters::aws {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// An AWS client of a loopback port nothing listens on (every attempt fails at once, and is
// retried), with credentials from the environment: no network, no instance metadata.
class AwsClientDeadlineTest : public ::testing::Test {
 protected:
  AwsClient client(RetryPolicy retry, Sleeper sleeper, DeadlineSource deadlines) {
    return AwsClient(elb_service(), "eu-west-1", "http://127.0.0.1:1/", credentials_, log_, retry,
                     std::move(sleeper), std::move(deadlines));
  }

  std::map<std::string, std::string> env_{{"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
                                          {"AWS_SECRET_ACCESS_KEY", "secret"},
                                          {"AWS_EC2_METADATA_DISABLED", "true"}};
  testing::ManualClock clock_;
  testing::RecordingLogger log_;
  CredentialsProvider credentials_{[this](const std::string& k) -> std::optional<std::string> {
                                     const auto it = env_.find(k);
                                     if (it == env_.end()) return std::nullopt;
                                     return it->second;
                                   },
                                   clock_};
};

TEST_F(AwsClientDeadlineTest, NoAttemptOnceTheDeadlineIsNear) {
  int sleeps = 0;
  auto c = client(
      {}, [&](milliseconds) { ++sleeps; },
      [] {
        return CallDeadlines{Clock::now() - milliseconds(1), std::nullopt};
      });
  const auto r = c.query("DescribeInstanceHealth", {{"LoadBalancerName", "web-lb"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("stopped before the invocation's deadline"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(sleeps, 0);
}

// The lease release (kCleanup) is still made after the work's deadline, until its own.
TEST_F(AwsClientDeadlineTest, CleanupCallsKeepToTheLaterDeadline) {
  RetryPolicy once;
  once.max_attempts = 1;
  auto c = client(
      once, [](milliseconds) {},
      [] {
        return CallDeadlines{Clock::now() - milliseconds(1), Clock::now() + milliseconds(5000)};
      });
  const auto r = c.query("DescribeInstanceHealth", {}, CallKind::kCleanup);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().code, core::ErrorCode::kTimeout) << "attempted: " << r.error().message;
  EXPECT_EQ(r.error().message.find("invocation's deadline"), std::string::npos);
}

// Retries under a deadline: no backoff sleep that would pass it, and the call returns in time.
TEST_F(AwsClientDeadlineTest, RetriesStopBeforeTheDeadline) {
  RetryPolicy retry;
  retry.max_attempts = 1000;
  retry.base = milliseconds(50);
  retry.cap = milliseconds(200);
  const auto deadline = Clock::now() + milliseconds(700);
  std::vector<milliseconds> sleeps;
  auto c = client(
      retry,
      [&](milliseconds d) {
        EXPECT_LE(Clock::now() + d, deadline) << "a sleep past the deadline";
        sleeps.push_back(d);
        std::this_thread::sleep_for(d);
      },
      [deadline] {
        return CallDeadlines{deadline, std::nullopt};
      });
  const auto r = c.query("DescribeInstanceHealth", {});
  EXPECT_LE(Clock::now(), deadline);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kTimeout) << r.error().message;
  EXPECT_NE(r.error().message.find("last error"), std::string::npos) << r.error().message;
  EXPECT_FALSE(sleeps.empty());
}

// Credentials that cannot be had for a moment (the container agent, IMDS or STS not
// answering) are tried again with the call's backoff, as the SDKs retry their credential
// fetches, instead of failing the call on the first miss.
TEST_F(AwsClientDeadlineTest, ACredentialFetchThatFailsIsRetried) {
  env_ = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/credentials"},
          {"AWS_EC2_METADATA_DISABLED", "true"}};
  RetryPolicy retry;
  retry.max_attempts = 3;
  int sleeps = 0;
  auto c = client(
      retry, [&](milliseconds) { ++sleeps; },
      [] {
        return CallDeadlines{std::nullopt, std::nullopt};
      });
  const auto r = c.query("DescribeInstanceHealth", {});
  ASSERT_FALSE(r);
  EXPECT_EQ(sleeps, 2) << r.error().message;
  EXPECT_NE(r.error().message.find("after 3 attempts"), std::string::npos) << r.error().message;
  // Credentials that are not there at all are not waited for.
  env_ = {{"AWS_EC2_METADATA_DISABLED", "true"},
          {"AWS_CONFIG_FILE", "/nonexistent"},
          {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}};
  sleeps = 0;
  auto d = client(
      retry, [&](milliseconds) { ++sleeps; },
      [] {
        return CallDeadlines{std::nullopt, std::nullopt};
      });
  EXPECT_FALSE(d.query("DescribeInstanceHealth", {}));
  EXPECT_EQ(sleeps, 0);
}

TEST(HttpClientDeadline, NothingIsSentWithNoTimeLeft) {
  HttpClient http;
  const auto r = http.request("POST", "http://127.0.0.1:1/", {}, "x", std::nullopt,
                              Clock::now() - milliseconds(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, core::ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("no time left"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace intermission::adapters::aws
