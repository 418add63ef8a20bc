#include "adapters/haproxy/protocol.h"

#include <gtest/gtest.h>

namespace intermission::adapters::haproxy {
namespace {

// Replies as HAProxy 2.6.12 sent them (captured on loopback, see docs/backends.md).
constexpr std::string_view kMap = "/etc/haproxy/maintenance.map";

TEST(HaproxyProtocol, ShowMapEntries) {
  auto e = parse_show_map("0x560f29ad9270 prod on\n0x560f29ad9310 staging on\n\n", kMap);
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 2u);
  EXPECT_EQ((*e)[0], (std::pair<std::string, std::string>{"prod", "on"}));
  EXPECT_TRUE(parse_show_map("\n", kMap)->empty());
}

TEST(HaproxyProtocol, ShowMapErrors) {
  auto missing = parse_show_map("Unknown map identifier. Please use #<id> or <file>.\n\n", kMap);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(missing.error().message.find("map(/etc/haproxy/maintenance.map)"), std::string::npos);
  auto denied = parse_show_map("Permission denied\n\n", kMap);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, core::ErrorCode::kPermission);
  EXPECT_NE(denied.error().message.find("level admin"), std::string::npos);
}

TEST(HaproxyProtocol, EmptyReplyIsSuccessAndKeyNotFoundIsGone) {
  EXPECT_TRUE(check_empty_reply("\n", kMap).ok());
  EXPECT_TRUE(check_empty_reply("Key not found.\n\n", kMap).ok());
  EXPECT_FALSE(check_empty_reply("Unknown map identifier. Please use #<id> or <file>.\n\n", kMap)
                   .ok());
  EXPECT_FALSE(check_empty_reply("Unknown command, but maybe ...\n\n", kMap).ok());
}

TEST(HaproxyProtocol, Commands) {
  EXPECT_EQ(add_map_command(kMap, "prod", "on"), "add map /etc/haproxy/maintenance.map prod on");
  EXPECT_EQ(del_map_command(kMap, "prod"), "del map /etc/haproxy/maintenance.map prod");
  EXPECT_TRUE(safe_token("/etc/haproxy/maintenance.map"));
  for (auto bad : {"", "a b", "a;b", "a\nb", "a\\b", "#1"}) EXPECT_FALSE(safe_token(bad)) << bad;
}

TEST(HaproxyProtocol, MapFileEdits) {
  const std::string text = "# maintenance switches\nstaging on\nprod on\nprod on\n\n";
  EXPECT_TRUE(map_file_has(text, "prod"));
  EXPECT_FALSE(map_file_has(text, "pro"));
  EXPECT_FALSE(map_file_has("# prod on\n", "prod"));
  EXPECT_EQ(map_file_with(text, "prod", std::nullopt), "# maintenance switches\nstaging on\n\n");
  EXPECT_EQ(map_file_with(text, "prod", "on"), "# maintenance switches\nstaging on\n\nprod on\n");
  EXPECT_EQ(map_file_with("", "prod", "on"), "prod on\n");
}

}  // namespace
}  // namespace intermission::adapters::haproxy
