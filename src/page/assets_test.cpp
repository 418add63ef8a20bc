#include "page/assets.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace intermission::page {
namespace {

namespace fs = std::filesystem;

class AssetsTest : public ::testing::Test {
 protected:
  AssetsTest() {
    root_ = fs::temp_directory_path() / ("intermission-assets-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "public" / "img");
    fs::create_directories(root_ / "secret");
    write(root_ / "public" / "site.css", "body{color:red}");
    write(root_ / "public" / "img" / "logo.svg", "<svg/>");
    write(root_ / "secret" / "passwords.txt", "hunter2");
    fs::create_symlink(root_ / "secret" / "passwords.txt", root_ / "public" / "link.txt");
    fs::create_directory_symlink(root_ / "secret", root_ / "public" / "linkdir");
  }
  ~AssetsTest() override { fs::remove_all(root_); }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  fs::path root_;
};

TEST_F(AssetsTest, LoadsRegularFilesOnlyAndNeverFollowsSymlinks) {
  auto assets = load_assets((root_ / "public").string());
  ASSERT_TRUE(assets.ok()) << assets.error().message;
  EXPECT_EQ(assets->size(), 2u);
  EXPECT_EQ(assets->at("site.css").body, "body{color:red}");
  EXPECT_EQ(assets->at("site.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(assets->at("img/logo.svg").content_type, "image/svg+xml");
  EXPECT_FALSE(assets->contains("link.txt"));
  EXPECT_FALSE(assets->contains("linkdir/passwords.txt"));
  // And served through the response set, nothing outside is reachable.
  PageOptions o;
  o.assets = *assets;
  const ResponseSet s(o, core::from_epoch_ms(0));
  for (auto t : {"/_intermission/link.txt", "/_intermission/linkdir/passwords.txt",
                 "/_intermission/../secret/passwords.txt",
                 "/_intermission/%2e%2e/secret/passwords.txt"}) {
    EXPECT_EQ(s.respond({"GET", t, "", true}).find("hunter2"), std::string::npos) << t;
  }
}

TEST_F(AssetsTest, MissingFolderIsAnError) {
  EXPECT_FALSE(load_assets((root_ / "nope").string()).ok());
}

TEST(ContentType, ByExtension) {
  EXPECT_EQ(content_type_for("a.WOFF2"), "font/woff2");
  EXPECT_EQ(content_type_for("a.png"), "image/png");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
}

}  // namespace
}  // namespace intermission::page
