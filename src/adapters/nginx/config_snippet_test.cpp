#include "adapters/nginx/config_snippet.h"

#include <gtest/gtest.h>

#include <vector>

namespace intermission::adapters::nginx {
namespace {

SnippetOptions options() {
  SnippetOptions o;
  o.environment = "prod-eu";
  o.state_file = "/var/lib/intermission/nginx/prod-eu.on";
  o.bypass_cidrs = {"203.0.113.0/24", "2001:db8::/32"};
  o.bypass_secret = "0123abcd";
  o.exempt = {"/webhooks/", "/.well-known/acme-challenge/"};
  return o;
}

TEST(NginxSnippet, VariablesAreValidNginxNamesForAnyEnvironment) {
  EXPECT_EQ(variable_prefix("prod-eu.1"), "intermission_prod_eu_1");
  EXPECT_EQ(probe_path("prod-eu"), "/.intermission/prod-eu/state");
}

TEST(NginxSnippet, UnsafeTokensAreRefused) {
  EXPECT_TRUE(safe_token("/var/lib/x.on"));
  for (const std::string& bad : std::vector<std::string>{
           "", "a b", "a;b", "a{", "a}", "$x", "a\"b", "a'b", "a#b", "a\\b", std::string("a\nb")}) {
    EXPECT_FALSE(safe_token(bad)) << bad;
  }
}

TEST(NginxSnippet, ServerPartTestsTheStateFileAndPassesHealthExemptAndProbePaths) {
  const std::string s = nginx_server_part(options());
  EXPECT_NE(s.find("if (-f /var/lib/intermission/nginx/prod-eu.on) {"), std::string::npos);
  EXPECT_NE(s.find("if ($uri = /healthz) {"), std::string::npos);
  EXPECT_NE(s.find("if ($uri = /.intermission/prod-eu/state) {"), std::string::npos);
  // Exempt prefixes are matched literally: the dots are escaped.
  EXPECT_NE(s.find(R"(if ($uri ~ "^\/webhooks\/|^\/\.well-known\/acme-challenge\/") {)"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("error_page 503 @intermission_prod_eu;"), std::string::npos);
  EXPECT_NE(s.find("proxy_pass http://127.0.0.1:8081;"), std::string::npos);
  EXPECT_NE(s.find("add_header Retry-After 120 always;"), std::string::npos);
  // The probe is local only.
  EXPECT_NE(s.find("allow 127.0.0.1;"), std::string::npos);
  EXPECT_NE(s.find("deny all;"), std::string::npos);
}

TEST(NginxSnippet, HttpPartBypassesBySourceCookieAndHeader) {
  const std::string h = nginx_http_part(options());
  EXPECT_NE(h.find("geo $intermission_prod_eu_bypass_ip {"), std::string::npos);
  EXPECT_NE(h.find("2001:db8::/32 1;"), std::string::npos);
  EXPECT_NE(h.find("map $cookie_intermission_bypass $intermission_prod_eu_bypass_cookie {"),
            std::string::npos);
  EXPECT_NE(h.find("map $http_x_intermission_bypass $intermission_prod_eu_bypass_header {"),
            std::string::npos);
  SnippetOptions no_secret = options();
  no_secret.bypass_secret.clear();
  EXPECT_EQ(nginx_http_part(no_secret).find("$cookie_intermission_bypass"), std::string::npos);
}

TEST(NginxSnippet, FileModeServesThePageFromTheDirectoryWithoutAPageServer) {
  SnippetOptions o = options();
  o.page_dir = "/var/lib/intermission/nginx/prod-eu-page";
  o.asset_types = {{".css", "text/css; charset=utf-8"}, {".svg", "image/svg+xml"}};
  o.retry_after_seconds = 90;
  const std::string s = nginx_server_part(o);
  EXPECT_EQ(s.find("proxy_pass"), std::string::npos) << "no page server in this mode";
  // The page by Accept, through an internal redirect (which makes every method a GET).
  EXPECT_NE(s.find("error_page 503 /.intermission/prod-eu/$intermission_prod_eu_page;"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("location = /.intermission/prod-eu/page.html {\n        internal;\n"
                   "        alias /var/lib/intermission/nginx/prod-eu-page/page.html;"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("alias /var/lib/intermission/nginx/prod-eu-page/page.json;"), std::string::npos);
  EXPECT_NE(s.find("add_header Retry-After 90 always;"), std::string::npos);
  EXPECT_NE(s.find("add_header Cache-Control \"no-store\" always;"), std::string::npos);
  // The internal redirect runs the server's rewrite phase again: the page's own URIs pass.
  EXPECT_NE(s.find("if ($uri = /.intermission/prod-eu/page.html) {"), std::string::npos);
  EXPECT_NE(s.find("if ($uri = /.intermission/prod-eu/page.json) {"), std::string::npos);
  // Assets: served by nginx under the prefix, with the page server's types.
  EXPECT_NE(s.find("location ^~ /_intermission/ {"), std::string::npos);
  EXPECT_NE(s.find("alias /var/lib/intermission/nginx/prod-eu-page/assets/;"), std::string::npos);
  EXPECT_NE(s.find("\"text/css; charset=utf-8\" css;"), std::string::npos) << s;
  EXPECT_NE(s.find(R"(if ($uri ~ "^\/_intermission\/|^\/webhooks\/|)"), std::string::npos) << s;
  // A missing page file falls back to nginx's own page.
  EXPECT_NE(s.find("error_page 403 404 =503 @intermission_prod_eu_fallback;"), std::string::npos);
  const std::string h = nginx_http_part(o);
  EXPECT_NE(h.find("map $http_accept $intermission_prod_eu_page {"), std::string::npos) << h;
  EXPECT_NE(h.find("page.json;"), std::string::npos);
}

TEST(NginxSnippet, ProxyModeHasNoPageFilesOrAcceptMap) {
  const SnippetOptions o = options();
  EXPECT_EQ(nginx_server_part(o).find("page.html"), std::string::npos);
  EXPECT_EQ(nginx_http_part(o).find("$http_accept"), std::string::npos);
}

}  // namespace
}  // namespace intermission::adapters::nginx
