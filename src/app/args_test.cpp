#include "app/args.h"

#include <gtest/gtest.h>

namespace intermission::app {
namespace {

const ArgSpec kSpec{{"--reason", "--for"}, {"--json"}, 1, 2};

TEST(Args, OptionsFlagsAndPositionals) {
  auto a = parse_args({"prod", "--reason", "db upgrade", "--for=30m", "--json"}, kSpec);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->positional, std::vector<std::string>{"prod"});
  EXPECT_EQ(a->option("--reason"), "db upgrade");
  EXPECT_EQ(a->option("--for"), "30m");
  EXPECT_TRUE(a->flag("--json"));
  EXPECT_FALSE(a->option("--who").has_value());
}

TEST(Args, MistakesAreReported) {
  EXPECT_NE(parse_args({"prod", "--colour", "x"}, kSpec).error().message.find("--colour"),
            std::string::npos);
  EXPECT_NE(parse_args({"prod", "--reason"}, kSpec).error().message.find("needs a value"),
            std::string::npos);
  EXPECT_NE(parse_args({"prod", "--json=1"}, kSpec).error().message.find("no value"),
            std::string::npos);
  EXPECT_FALSE(parse_args({}, kSpec).ok());
  EXPECT_FALSE(parse_args({"a", "b", "c"}, kSpec).ok());
  EXPECT_FALSE(parse_args({"-x"}, kSpec).ok());
}

TEST(Args, DashIsAPositionalAndDoubleDashEndsOptions) {
  auto a = parse_args({"-", "--", "--json"}, kSpec);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->positional, (std::vector<std::string>{"-", "--json"}));
  EXPECT_FALSE(a->flag("--json"));
}

}  // namespace
}  // namespace intermission::app
