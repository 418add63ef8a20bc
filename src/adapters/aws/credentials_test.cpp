#include "adapters/aws/credentials.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "testing/fakes.h"

namespace intermission::adapters::aws {
namespace {

TEST(Credentials, FromTheEnvironmentWithSessionToken) {
  std::map<std::string, std::string> env{{"AWS_ACCESS_KEY_ID", "AKID"},
                                         {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                                         {"AWS_SESSION_TOKEN", "TOKEN"}};
  testing::ManualClock clock;
  CredentialsProvider p(
      [&env](const std::string& k) -> std::optional<std::string> {
        auto it = env.find(k);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      clock);
  auto c = p.get();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "AKID");
  EXPECT_EQ(c->session_token, "TOKEN");
  EXPECT_EQ(c->source, "environment");
  env.erase("AWS_SECRET_ACCESS_KEY");
  CredentialsProvider half(
      [&env](const std::string& k) -> std::optional<std::string> {
        auto it = env.find(k);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      clock);
  EXPECT_EQ(half.get().error().code, core::ErrorCode::kConfig);
}

TEST(Credentials, ContainerAndInstanceMetadataJson) {
  auto c = parse_credentials_json(R"({"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t",
                                      "Expiration":"2026-11-27T18:00:00Z"})",
                                  "container");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(core::format_iso8601(*c->expiration), "2026-11-27T18:00:00.000Z");
  EXPECT_FALSE(parse_credentials_json("{}", "container").ok());
  EXPECT_FALSE(parse_credentials_json("nope", "container").ok());
}

TEST(Credentials, ProcessOutputVersion1) {
  auto c = parse_process_output(R"({"Version": 1, "AccessKeyId": "ASIA2", "SecretAccessKey": "s",
                                    "SessionToken": "t", "Expiration": "2026-11-27T18:00:00Z"})",
                                "credential_process at /c:3", "profile dev");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "ASIA2");
  EXPECT_EQ(c->session_token, "t");
  EXPECT_EQ(core::format_iso8601(*c->expiration), "2026-11-27T18:00:00.000Z");
  c = parse_process_output(R"({"Version": 1, "AccessKeyId": "AKIA", "SecretAccessKey": "s"})", "w",
                           "p");
  ASSERT_TRUE(c.ok()) << "long-lived: no token, no expiration";
  EXPECT_FALSE(c->expiration.has_value());
  for (const char* bad : {R"({"AccessKeyId": "a", "SecretAccessKey": "s"})",
                          R"({"Version": 2, "AccessKeyId": "a", "SecretAccessKey": "s"})",
                          R"({"Version": "1", "AccessKeyId": "a", "SecretAccessKey": "s"})",
                          R"({"Version": 1, "SecretAccessKey": "s"})",
                          R"({"Version": 1, "AccessKeyId": "a", "SecretAccessKey": 5})",
                          R"({"Version": 1, "AccessKeyId": "a", "SecretAccessKey": "s",
                              "Expiration": "tomorrow"})",
                          "not json", "[]"}) {
    auto e = parse_process_output(bad, "credential_process at /home/me/.aws/config:7", "p");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.error().message.rfind("credential_process at /home/me/.aws/config:7: ", 0), 0U)
        << e.error().message;
  }
}

TEST(Credentials, StsReplies) {
  const std::string xml =
      R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/r/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <SessionToken>FQoG/+==</SessionToken>
      <SecretAccessKey>secret</SecretAccessKey>
      <Expiration>2026-12-02T03:00:00Z</Expiration>
      <AccessKeyId>ASIAWEB</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>)";
  auto c = parse_sts_credentials(xml, "AssumeRoleWithWebIdentity", "web-identity");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "ASIAWEB");
  EXPECT_EQ(c->session_token, "FQoG/+==");
  EXPECT_EQ(core::format_iso8601(*c->expiration), "2026-12-02T03:00:00.000Z");
  EXPECT_FALSE(parse_sts_credentials(xml, "AssumeRole", "x").ok()) << "another action's reply";
  EXPECT_FALSE(parse_sts_credentials("<x/>", "AssumeRole", "x").ok());
  EXPECT_FALSE(parse_sts_credentials("nope", "AssumeRole", "x").ok());
}

// The cache: refreshed ahead of expiry; a failed refresh keeps credentials that are still
// valid (with a warning), never expired ones. The source is a credential_process whose
// command the test rewrites.
TEST(Credentials, ValidCachedCredentialsSurviveAFailedRefreshExpiredOnesDoNot) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("intermission-creds-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto config = (dir / "config").string();
  auto write_config = [&config](const std::string& command) {
    std::ofstream(config) << "[default]\ncredential_process = " << command << "\n";
  };
  // Valid for 4 minutes: inside the 5-minute refresh margin from the start.
  write_config(
      R"(printf '{"Version":1,"AccessKeyId":"ASIA1","SecretAccessKey":"s","SessionToken":"t","Expiration":"2023-11-14T22:17:20Z"}')");
  std::map<std::string, std::string> env{{"AWS_CONFIG_FILE", config},
                                         {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                                         {"AWS_EC2_METADATA_DISABLED", "true"}};
  testing::ManualClock clock(core::from_epoch_ms(1'700'000'000'000));  // 2023-11-14T22:13:20Z
  testing::RecordingLogger log;
  CredentialsProvider p(
      [&env](const std::string& k) -> std::optional<std::string> {
        auto it = env.find(k);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      clock, &log);
  auto c = p.get();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "ASIA1");
  EXPECT_EQ(c->source, "profile default credential_process");
  write_config("exit 3");
  clock.advance(std::chrono::minutes(1));
  c = p.get();
  ASSERT_TRUE(c.ok()) << "still valid for 3 minutes: " << c.error().message;
  EXPECT_EQ(c->access_key, "ASIA1");
  EXPECT_TRUE(log.contains(core::LogLevel::kWarn, "refresh failed"));
  clock.advance(std::chrono::minutes(3) + std::chrono::seconds(1));  // past the expiration
  c = p.get();
  ASSERT_FALSE(c.ok()) << "expired credentials are never used";
  EXPECT_NE(c.error().message.find("expired at 2023-11-14T22:17:20.000Z"), std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("exited with status 3"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find(config + ":2"), std::string::npos) << c.error().message;
  // The source works again: new credentials at once.
  write_config(R"(printf '{"Version":1,"AccessKeyId":"ASIA2","SecretAccessKey":"s"}')");
  c = p.get();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "ASIA2");
  std::filesystem::remove_all(dir);
}

// The CLI waits for a credential_process for ever; a daemon that did would stop switching. A
// helper that hangs is killed at the timeout, and one that fails says why in the error.
TEST(Credentials, AHangingCredentialProcessIsKilledAndAFailingOneSaysWhy) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("intermission-hang-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto config = (dir / "config").string();
  std::map<std::string, std::string> env{{"AWS_CONFIG_FILE", config},
                                         {"AWS_SHARED_CREDENTIALS_FILE", "/dev/null"},
                                         {"AWS_EC2_METADATA_DISABLED", "true"}};
  testing::ManualClock clock;
  testing::RecordingLogger log;
  auto provider = [&] {
    auto p = std::make_unique<CredentialsProvider>(
        [&env](const std::string& k) -> std::optional<std::string> {
          auto it = env.find(k);
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        clock, &log);
    p->process_timeout(std::chrono::milliseconds(300));
    return p;
  };
  std::ofstream(config) << "[default]\ncredential_process = sleep 30\n";
  const auto t0 = std::chrono::steady_clock::now();
  auto c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_NE(c.error().message.find("'sleep 30' did not finish within 300 ms"), std::string::npos)
      << c.error().message;
  std::ofstream(config)
      << "[default]\ncredential_process = echo 'SSO session expired' >&2; exit 1\n";
  c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("exited with status 1: SSO session expired"), std::string::npos)
      << c.error().message;
  EXPECT_TRUE(log.contains(core::LogLevel::kWarn, "credential_process stderr"));
  std::filesystem::remove_all(dir);
}

TEST(Credentials, ProfilesStaticKeysAndMistakesNamed) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("intermission-profiles-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto creds = (dir / "credentials").string();
  const auto config = (dir / "config").string();
  std::ofstream(creds) << "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = "
                          "d\n[half]\naws_access_key_id = AKIDHALF\n";
  std::ofstream(config) << "[profile dev]\naws_access_key_id = AKIDDEV\n"
                           "aws_secret_access_key = s\naws_session_token = tok\n"
                           "[profile only-region]\nregion = eu-west-3\n"
                           "[profile sso]\nsso_session = corp\nsso_account_id = 111122223333\n";
  std::map<std::string, std::string> env{{"AWS_CONFIG_FILE", config},
                                         {"AWS_SHARED_CREDENTIALS_FILE", creds},
                                         {"AWS_EC2_METADATA_DISABLED", "true"}};
  testing::ManualClock clock;
  auto provider = [&env, &clock]() {
    return std::make_unique<CredentialsProvider>(
        [&env](const std::string& k) -> std::optional<std::string> {
          auto it = env.find(k);
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        clock);
  };
  auto c = provider()->get();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "AKIDDEFAULT");
  env["AWS_PROFILE"] = "dev";
  c = provider()->get();
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->access_key, "AKIDDEV");
  EXPECT_EQ(c->session_token, "tok");
  EXPECT_EQ(c->source, "profile dev");
  env["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env["AWS_SECRET_ACCESS_KEY"] = "e";
  EXPECT_EQ(provider()->get()->access_key, "AKIDENV") << "the environment comes first";
  env.erase("AWS_ACCESS_KEY_ID");
  env.erase("AWS_SECRET_ACCESS_KEY");
  env["AWS_PROFILE"] = "half";
  c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(creds + ":5"), std::string::npos) << c.error().message;
  env["AWS_PROFILE"] = "nope";
  c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("'nope'"), std::string::npos) << c.error().message;
  env["AWS_PROFILE"] = "sso";
  c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(config + ":8: profile sso uses IAM Identity Center (SSO)"),
            std::string::npos)
      << c.error().message;
  env["AWS_PROFILE"] = "only-region";  // nothing about credentials: on to the next source
  c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("no AWS credentials"), std::string::npos) << c.error().message;
  EXPECT_EQ(profile_region([&env](const std::string& k) -> std::optional<std::string> {
              auto it = env.find(k);
              if (it == env.end()) return std::nullopt;
              return it->second;
            }),
            "eu-west-3");
  std::ofstream(config) << "[profile dev]\nnot ini\n";
  env["AWS_PROFILE"] = "dev";
  c = provider()->get();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(config + ":2:"), std::string::npos) << c.error().message;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace intermission::adapters::aws
