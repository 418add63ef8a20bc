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
    EXPECT_EQ(s.respond({"GET", t, "", true, {}}).find("hunter2"), std::string::npos) << t;
  }
}

TEST_F(AssetsTest, MissingFolderIsAnError) {
  EXPECT_FALSE(load_assets((root_ / "nope").string()).ok());
}

TEST_F(AssetsTest, PageFolderWithTranslations) {
  const fs::path d = root_ / "pages";
  fs::create_directories(d);
  write(d / "maintenance.html", "<p>{{reason}}</p>");
  write(d / "maintenance.de.html", "<p lang=de>{{reason}}</p>");
  write(d / "maintenance.pt-BR.html", "<p lang=pt>{{reason}}</p>");
  write(d / "message.txt", "Back soon.\n");
  write(d / "message.de.txt", "Gleich zurück.\r\n");
  write(d / "site.css", "ignored");
  auto f = load_page_dir(d.string(), "en");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->html_template, "<p>{{reason}}</p>");
  EXPECT_EQ(f->default_reason, "Back soon.");
  ASSERT_EQ(f->translations.size(), 2u);
  EXPECT_EQ(f->translations[0].tag, "de");
  EXPECT_EQ(f->translations[0].default_reason, "Gleich zurück.");
  EXPECT_EQ(f->translations[1].tag, "pt-BR");
  EXPECT_EQ(f->translations[1].default_reason, "");
}

TEST_F(AssetsTest, PageFolderRefusesBadNamesNamingTheFile) {
  const fs::path d = root_ / "bad";
  auto refused = [&](const std::string& name, const std::string& why) {
    fs::remove_all(d);
    fs::create_directories(d);
    write(d / "maintenance.html", "x");
    write(d / "maintenance.de.html", "x");
    write(d / name, "x");
    auto f = load_page_dir(d.string(), "en");
    ASSERT_FALSE(f.ok()) << name;
    EXPECT_NE(f.error().message.find(name), std::string::npos) << f.error().message;
    EXPECT_NE(f.error().message.find(why), std::string::npos) << f.error().message;
  };
  refused("maintenance.de_DE.html", "not a language tag");
  refused("maintenance..html", "is not named");
  refused("maintenance.html.bak", "is not named");
  refused("maintenance.DE.html", "twice");
  refused("maintenance.en.html", "default language");
  refused("message.fr.txt", "no page");
  refused("message.x y.txt", "not a language tag");
  fs::remove_all(d);
  fs::create_directories(d);
  write(d / "maintenance.de.html", "x");
  auto none = load_page_dir(d.string(), "en");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no maintenance.html"), std::string::npos);
  EXPECT_FALSE(load_page_dir(d.string(), "e n").ok());
  EXPECT_FALSE(load_page_dir((root_ / "nope").string(), "en").ok());
}

TEST_F(AssetsTest, PageFolderHasAtMostMaxLanguages) {
  const fs::path d = root_ / "many";
  fs::create_directories(d);
  write(d / "maintenance.html", "x");
  for (std::size_t i = 1; i < kMaxLanguages; ++i) {
    write(d / ("maintenance.l" + std::string(1, static_cast<char>('a' + i / 26)) +
               std::string(1, static_cast<char>('a' + i % 26)) + ".html"),
          "x");
  }
  auto f = load_page_dir(d.string(), "en");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->translations.size() + 1, kMaxLanguages);
  write(d / "maintenance.zz.html", "x");
  auto over = load_page_dir(d.string(), "en");
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("maintenance.zz.html"), std::string::npos);
  EXPECT_NE(over.error().message.find("more than 32 languages"), std::string::npos);
}

TEST(ContentType, ByExtension) {
  EXPECT_EQ(content_type_for("a.WOFF2"), "font/woff2");
  EXPECT_EQ(content_type_for("a.png"), "image/png");
  EXPECT_EQ(content_type_for("README"), "application/octet-stream");
}

}  // namespace
}  // namespace intermission::page
