#include "adapters/aws/shared_config.h"

#include <gtest/gtest.h>

namespace intermission::adapters::aws {
namespace {

TEST(SharedConfig, ParsesSectionsKeysCommentsAndContinuations) {
  const auto f = parse_ini(
      "# a comment\n"
      "[default]\n"
      "aws_access_key_id = AKID\n"
      "AWS_Secret_Access_Key=s3cr/et+==\n"
      "; another comment\n"
      "\n"
      "[profile dev]\r\n"
      "region: eu-west-1\r\n"
      "credential_process = /bin/get-creds --profile \"my dev\" # kept, as the CLI keeps it\n"
      "s3 =\n"
      "  addressing_style = path\n"
      "  signature_version = s3v4\n",
      "/home/me/.aws/config");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->sections.at("default").at("aws_access_key_id").value, "AKID");
  EXPECT_EQ(f->sections.at("default").at("aws_access_key_id").where, "/home/me/.aws/config:3");
  EXPECT_EQ(f->sections.at("default").at("aws_secret_access_key").value, "s3cr/et+==")
      << "keys are lower-cased, values keep their case and '='";
  EXPECT_EQ(f->sections.at("profile dev").at("region").value, "eu-west-1");
  EXPECT_EQ(f->sections.at("profile dev").at("credential_process").value,
            "/bin/get-creds --profile \"my dev\" # kept, as the CLI keeps it");
  EXPECT_EQ(f->sections.at("profile dev").at("s3").value,
            "\naddressing_style = path\nsignature_version = s3v4");
}

TEST(SharedConfig, ErrorsNameTheFileAndLine) {
  auto e = parse_ini("[default]\nregion = x\nthis is not ini\n", "/c");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(e.error().message.find("/c:3:"), std::string::npos) << e.error().message;
  e = parse_ini("region = x\n", "/c");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("/c:1: 'key = value' before any [section]"), std::string::npos)
      << e.error().message;
  e = parse_ini("[a]\nk=1\n[b]\n[a]\n", "/c");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("/c:4: section [a] appears twice"), std::string::npos);
  e = parse_ini("[a]\nk=1\nK = 2\n", "/c");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("/c:3: key 'k' appears twice"), std::string::npos);
  e = parse_ini("[a\n", "/c");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("/c:1:"), std::string::npos);
  EXPECT_TRUE(parse_ini("", "/c").ok());
}

TEST(SharedConfig, ProfilesFromBothFilesTheCredentialsFileWins) {
  const auto creds =
      parse_ini("[dev]\naws_access_key_id = FROM_CREDS\n[default]\nx = 1\n", "/creds");
  const auto config = parse_ini(
      "[default]\nregion = eu-west-1\n"
      "[profile dev]\naws_access_key_id = FROM_CONFIG\nregion = us-east-2\n"
      "[dev]\nregion = not-a-profile-in-config\n"
      "[sso-session x]\nsso_region = y\n",
      "/config");
  ASSERT_TRUE(creds.ok() && config.ok());
  const auto dev = find_profile(*creds, *config, "dev");
  ASSERT_TRUE(dev.has_value());
  EXPECT_EQ(dev->values.at("aws_access_key_id").value, "FROM_CREDS");
  EXPECT_TRUE(dev->from_credentials_file.at("aws_access_key_id"));
  EXPECT_EQ(dev->values.at("region").value, "us-east-2") << "[dev] in config is not a profile";
  EXPECT_EQ(dev->values.at("region").where, "/config:5");
  const auto def = find_profile(*creds, *config, "default");
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->values.at("region").value, "eu-west-1");
  EXPECT_FALSE(find_profile(*creds, *config, "x").has_value());
  EXPECT_FALSE(find_profile(*creds, *config, "sso-session x").has_value());
  // "[profile default]" is also the default profile, and wins over "[default]".
  const auto both = parse_ini("[default]\nregion = a\n[profile default]\nregion = b\n", "/c");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(find_profile(IniFile{}, *both, "default")->values.at("region").value, "b");
}

}  // namespace
}  // namespace intermission::adapters::aws
