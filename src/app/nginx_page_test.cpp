#include "app/nginx_page.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "page/response.h"

namespace intermission::app {
namespace {

namespace fs = std::filesystem;

const core::Time kNow = *core::parse_iso8601("2026-11-27T10:00:00Z");

TEST(NginxPage, TheFilesAreThePageServersBodiesWithAFixedRetryAfter) {
  adapters::nginx::PageSource source;
  source.retry_after = std::chrono::seconds(90);
  const core::SetSwitch step{true, "database upgrade", kNow + std::chrono::minutes(30)};
  auto files = build_nginx_page(source, step, kNow);
  ASSERT_TRUE(files.ok()) << files.error().message;
  page::PageOptions o;
  o.reason = "database upgrade";
  o.until = step.until;
  o.default_retry_after = std::chrono::seconds(90);
  o.fixed_retry_after = true;
  EXPECT_EQ(files->html, page::page_bodies(o, kNow).html);
  EXPECT_NE(files->html.find("database upgrade"), std::string::npos);
  EXPECT_NE(files->html.find("10:30 UTC"), std::string::npos);
  EXPECT_NE(files->json.find(R"("retry_after":90)"), std::string::npos) << files->json;
  EXPECT_TRUE(files->assets.empty());
}

TEST(NginxPage, TemplateAndAssetsAreReadAtEveryCall) {
  char tmpl[] = "/tmp/intermission-nginx-page-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  fs::create_directories(dir + "/assets/img");
  std::ofstream(dir + "/page.html") << "<h1>{{reason}}</h1>";
  std::ofstream(dir + "/assets/site.css") << "body{}";
  std::ofstream(dir + "/assets/img/logo.svg") << "<svg/>";
  adapters::nginx::PageSource source{dir + "/page.html", dir + "/assets",
                                     std::chrono::seconds(120)};
  auto files = build_nginx_page(source, core::SetSwitch{true, "a & b", std::nullopt}, kNow);
  ASSERT_TRUE(files.ok()) << files.error().message;
  EXPECT_EQ(files->html, "<h1>a &amp; b</h1>");
  EXPECT_EQ(files->assets.at("site.css"), "body{}");
  EXPECT_EQ(files->assets.at("img/logo.svg"), "<svg/>");
  std::ofstream(dir + "/page.html") << "<h2>{{reason}}</h2>";
  files = build_nginx_page(source, core::SetSwitch{true, "x", std::nullopt}, kNow);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->html, "<h2>x</h2>");
  fs::remove(dir + "/page.html");
  files = build_nginx_page(source, core::SetSwitch{true, "x", std::nullopt}, kNow);
  ASSERT_FALSE(files.ok());
  EXPECT_NE(files.error().message.find(dir + "/page.html"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace intermission::app
