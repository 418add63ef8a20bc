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

}  // namespace
}  // namespace intermission::adapters::nginx
