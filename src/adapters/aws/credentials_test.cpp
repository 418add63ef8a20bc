#include "adapters/aws/credentials.h"

#include <gtest/gtest.h>

#include <map>

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

}  // namespace
}  // namespace intermission::adapters::aws
