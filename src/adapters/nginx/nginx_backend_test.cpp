#include "adapters/nginx/nginx_backend.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

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

  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // A renderer that records what it was asked for; the real one (app/nginx_page) builds the
  // page server's bodies.
  void use_page_files() {
    settings_.page_dir = dir_ + "/page";
    fs::create_directory(settings_.page_dir);
    settings_.render_page = [this](const core::SetSwitch& step) -> core::Result<PageFiles> {
      rendered_.push_back(step.reason);
      if (step.reason == "fail") return core::Error::config("page template unreadable");
      return PageFiles{"<p>" + step.reason + "</p>",
                       "{\"message\":\"" + step.reason + "\"}",
                       {{"site.css", "body{}"}, {"img/logo.svg", "<svg/>"}}};
    };
  }

  std::string dir_;
  NginxSettings settings_;
  std::vector<std::string> rendered_;
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

TEST_F(NginxBackendTest, FileModeWritesThePageBeforeTheStateFile) {
  use_page_files();
  NginxBackend b(settings_);
  ASSERT_TRUE(b.apply(core::SetSwitch{true, "database upgrade", std::nullopt}).ok());
  EXPECT_EQ(read(settings_.page_dir + "/page.html"), "<p>database upgrade</p>");
  EXPECT_EQ(read(settings_.page_dir + "/page.json"), R"({"message":"database upgrade"})");
  EXPECT_EQ(read(settings_.page_dir + "/assets/site.css"), "body{}");
  EXPECT_EQ(read(settings_.page_dir + "/assets/img/logo.svg"), "<svg/>");
  EXPECT_TRUE(observed_on(b));
  // Mode 0644 and 0755: nginx's worker user reads them.
  EXPECT_EQ(fs::status(settings_.page_dir + "/page.html").permissions() & fs::perms::others_read,
            fs::perms::others_read);
  // A new page replaces the old one (no temporary file left behind); off leaves the files.
  ASSERT_TRUE(b.apply(core::SetSwitch{true, "new reason", std::nullopt}).ok());
  EXPECT_EQ(read(settings_.page_dir + "/page.html"), "<p>new reason</p>");
  ASSERT_TRUE(b.apply(core::SetSwitch{false, "", std::nullopt}).ok());
  EXPECT_FALSE(observed_on(b));
  EXPECT_EQ(rendered_, (std::vector<std::string>{"database upgrade", "new reason"}))
      << "off renders nothing";
  for (const auto& e : fs::recursive_directory_iterator(settings_.page_dir)) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

TEST_F(NginxBackendTest, APageThatCannotBeMadeLeavesMaintenanceOff) {
  use_page_files();
  NginxBackend b(settings_);
  auto st = b.apply(core::SetSwitch{true, "fail", std::nullopt});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("page template unreadable"), std::string::npos)
      << st.error().message;
  EXPECT_FALSE(fs::exists(settings_.state_file)) << "no state file without a page";
}

TEST_F(NginxBackendTest, AnUnwritablePageDirectoryIsAClearErrorAndNothingChanges) {
  use_page_files();
  settings_.page_dir = dir_ + "/missing";
  NginxBackend b(settings_);
  auto st = b.apply(core::SetSwitch{true, "x", std::nullopt});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("install -d -m 755 " + dir_ + "/missing"), std::string::npos)
      << st.error().message;
  EXPECT_FALSE(fs::exists(settings_.state_file));
}

}  // namespace
}  // namespace intermission::adapters::nginx
