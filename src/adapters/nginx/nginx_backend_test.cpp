#include "adapters/nginx/nginx_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace intermission::adapters::nginx {
namespace {

namespace fs = std::filesystem;

class NginxBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/intermission-nginx-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    settings_.environment = "prod";
    settings_.state_file = dir_ + "/prod.on";
  }
  void TearDown() override { fs::remove_all(dir_); }

  bool observed_on(NginxBackend& b) {
    auto o = b.observe();
    EXPECT_TRUE(o.ok()) << (o.ok() ? "" : o.error().message);
    return std::get<core::SwitchObservation>(*o).on;
  }

  std::string dir_;
  NginxSettings settings_;
};

TEST_F(NginxBackendTest, OnWritesTheStateFileAndOffRemovesIt) {
  NginxBackend b(settings_);
  EXPECT_FALSE(observed_on(b));
  ASSERT_TRUE(b.apply(core::SetSwitch{true, "database upgrade", std::nullopt}).ok());
  EXPECT_TRUE(observed_on(b));
  std::ifstream in(settings_.state_file);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("database upgrade"), std::string::npos);
  ASSERT_TRUE(b.apply(core::SetSwitch{true, "again", std::nullopt}).ok()) << "idempotent";
  ASSERT_TRUE(b.apply(core::SetSwitch{false, "", std::nullopt}).ok());
  EXPECT_FALSE(observed_on(b));
  ASSERT_TRUE(b.apply(core::SetSwitch{false, "", std::nullopt}).ok()) << "idempotent";
  for (const auto& e : fs::directory_iterator(dir_)) ADD_FAILURE() << "left behind: " << e.path();
}

TEST_F(NginxBackendTest, AMissingDirectoryIsAClearError) {
  settings_.state_file = dir_ + "/missing/prod.on";
  NginxBackend b(settings_);
  auto st = b.apply(core::SetSwitch{true, "", std::nullopt});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(dir_ + "/missing/prod.on"), std::string::npos)
      << st.error().message;
}

TEST_F(NginxBackendTest, ANginxThatDoesNotAnswerTheProbeUndoesTheSwitch) {
  settings_.probe = "http://127.0.0.1:1/.intermission/prod/state";  // nothing listens there
  settings_.probe_timeout = std::chrono::milliseconds(500);
  NginxBackend b(settings_);
  auto st = b.apply(core::SetSwitch{true, "", std::nullopt});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("undone"), std::string::npos) << st.error().message;
  EXPECT_FALSE(fs::exists(settings_.state_file)) << "nothing changed";
  EXPECT_FALSE(b.observe().ok()) << "observe names the probe failure";
}

}  // namespace
}  // namespace intermission::adapters::nginx
