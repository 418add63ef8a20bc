#include "app/serve_secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace intermission::app {
namespace {

namespace fs = std::filesystem;

const std::string kGood = "0123456789abcdef0123456789abcdef";  // exactly the minimum

class SecretsTest : public ::testing::Test {
 protected:
  SecretsTest() {
    dir_ = fs::temp_directory_path() / ("intermission-secrets-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "creds");
  }
  ~SecretsTest() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  GetEnv getenv() {
    return [this](const std::string& k) -> std::optional<std::string> {
      const auto it = env_.find(k);
      return it == env_.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  }
  SecretSource source(const std::string& file = "") const {
    return {"operator token", file, "operator-token", "INTERMISSION_OPERATOR_TOKEN"};
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(SecretsTest, NothingConfiguredIsOffWithoutAProblem) {
  const auto s = load_secret(source(), getenv());
  EXPECT_TRUE(s.value.empty());
  EXPECT_TRUE(s.problem.empty());
}

TEST_F(SecretsTest, FileValueIsTrimmed) {
  const auto s = load_secret(source(write("token", kGood + "\n")), getenv());
  EXPECT_EQ(s.value, kGood);
  EXPECT_TRUE(s.problem.empty()) << s.problem;
}

TEST_F(SecretsTest, MissingFileIsAProblemAndDoesNotFallBackToTheEnvironment) {
  env_["INTERMISSION_OPERATOR_TOKEN"] = kGood;
  const auto s = load_secret(source((dir_ / "absent").string()), getenv());
  EXPECT_TRUE(s.value.empty());
  EXPECT_NE(s.problem.find("cannot be read"), std::string::npos) << s.problem;
  EXPECT_NE(s.problem.find("absent"), std::string::npos) << s.problem;
}

TEST_F(SecretsTest, UnreadableFileIsAProblem) {
  const std::string path = write("token", kGood);
  // Root reads a file of mode 0: then a path through a file stands in (ENOTDIR).
  const bool root = ::geteuid() == 0;
  if (!root) ::chmod(path.c_str(), 0);
  const auto s = load_secret(source(root ? path + "/token" : path), getenv());
  EXPECT_TRUE(s.value.empty());
  EXPECT_NE(s.problem.find(root ? "Not a directory" : "Permission denied"), std::string::npos)
      << s.problem;
  EXPECT_NE(s.problem.find("cannot be read"), std::string::npos) << s.problem;
  env_["INTERMISSION_OPERATOR_TOKEN"] = kGood;
  EXPECT_TRUE(load_secret(source(root ? path + "/token" : path), getenv()).value.empty())
      << "a configured file that cannot be read never falls back to the environment";
}

TEST_F(SecretsTest, ShortSecretIsRefusedAndTheMinimumIsSaid) {
  env_["INTERMISSION_OPERATOR_TOKEN"] = kGood.substr(1);  // 31 characters
  const auto s = load_secret(source(), getenv());
  EXPECT_TRUE(s.value.empty());
  EXPECT_NE(s.problem.find("is 31 characters long; at least 32"), std::string::npos) << s.problem;
  EXPECT_NE(s.problem.find("$INTERMISSION_OPERATOR_TOKEN"), std::string::npos) << s.problem;
  const auto empty_file = load_secret(source(write("empty", "\n")), getenv());
  EXPECT_TRUE(empty_file.value.empty());
  EXPECT_FALSE(empty_file.problem.empty());
}

TEST_F(SecretsTest, SystemdCredentialComesBeforeTheEnvironment) {
  write("creds/operator-token", kGood + "\n");
  env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
  env_["INTERMISSION_OPERATOR_TOKEN"] = "env-token-env-token-env-token-env-token";
  const auto s = load_secret(source(), getenv());
  EXPECT_EQ(s.value, kGood);
  EXPECT_EQ(s.origin, "systemd credential operator-token");
}

TEST_F(SecretsTest, AbsentCredentialFallsBackToTheEnvironment) {
  env_["CREDENTIALS_DIRECTORY"] = (dir_ / "creds").string();
  env_["INTERMISSION_OPERATOR_TOKEN"] = kGood;
  const auto s = load_secret(source(), getenv());
  EXPECT_EQ(s.value, kGood);
  EXPECT_EQ(s.origin, "$INTERMISSION_OPERATOR_TOKEN");
}

}  // namespace
}  // namespace intermission::app
