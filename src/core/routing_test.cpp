#include "core/routing.h"

#include <gtest/gtest.h>

namespace intermission::core {
namespace {

TEST(Glob, ExactStarQuestionAndEscape) {
  EXPECT_TRUE(glob_match("shop", "shop"));
  EXPECT_FALSE(glob_match("shop", "shop2"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("prod-*", "prod-web"));
  EXPECT_FALSE(glob_match("prod-*", "staging-web"));
  EXPECT_TRUE(glob_match("web-?", "web-1"));
  EXPECT_FALSE(glob_match("web-?", "web-10"));
  EXPECT_TRUE(glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(glob_match("a\\*b", "axb"));
}

TEST(Glob, EarlierStarsTakeAsLittleAsTheyCan) {
  std::vector<std::string> caps;
  ASSERT_TRUE(glob_match("*-*", "prod-web-blue", &caps));
  EXPECT_EQ(caps, (std::vector<std::string>{"prod", "web-blue"}));
  EXPECT_FALSE(glob_match("*-*", "nodash", &caps));
}

TEST(Routing, OldRecipePrefixBeforeTheFirstDash) {
  const std::vector<Route> routes = {{"*", "*-*", "{1}", {}}};
  EXPECT_EQ(route_deployment(routes, "shop", "prod-web-1")->environment, "prod");
  EXPECT_EQ(route_deployment(routes, "shop", "staging-api")->environment, "staging");
  EXPECT_FALSE(route_deployment(routes, "shop", "nodash").has_value());
}

TEST(Routing, FirstMatchWinsAndPlaceholdersExpand) {
  const std::vector<Route> routes = {{"Portal", "Acceptance", "acceptance", {}},
                                     {"shop-*", "*-*", "{2}-{1}", {}},
                                     {"*", "*", "default", {}}};
  EXPECT_EQ(route_deployment(routes, "Portal", "Acceptance")->environment, "acceptance");
  const auto m = route_deployment(routes, "shop-eu", "blue-green");
  EXPECT_EQ(m->environment, "green-blue");
  EXPECT_EQ(m->route_index, 1u);
  EXPECT_EQ(route_deployment(routes, "other", "x")->environment, "default");
}

TEST(Routing, BadTemplatesAreReported) {
  EXPECT_EQ(check_route({"*", "*-*", "{1}", {}}), "");
  EXPECT_EQ(check_route({"*", "*", "{application}-{group}", {}}), "");
  EXPECT_NE(check_route({"*", "*-*", "{3}", {}}).find("{3}"), std::string::npos);
  EXPECT_NE(check_route({"a", "b", "{app}", {}}).find("{app}"), std::string::npos);
  EXPECT_NE(check_route({"a", "b", "{1", {}}).find("'{' without '}'"), std::string::npos);
  EXPECT_NE(check_route({"a", "b", "", {}}).find("empty"), std::string::npos);
}

}  // namespace
}  // namespace intermission::core
