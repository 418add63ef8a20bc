#include "core/text.h"

#include <gtest/gtest.h>

namespace intermission::core {
namespace {

TEST(Text, Utf8IsAcceptedAndEverythingElseIsFoundAtItsFirstBadByte) {
  for (const char* ok : {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x9a\xa7 works",
                         "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xef\xbf\xbd"}) {
    EXPECT_EQ(first_invalid_utf8(ok), std::nullopt) << ok;
  }
  EXPECT_EQ(first_invalid_utf8("caf\xe9 closed"), 3u) << "Latin-1";
  EXPECT_EQ(first_invalid_utf8("\xff"), 0u);
  EXPECT_EQ(first_invalid_utf8("ab\xc3"), 2u) << "cut short";
  EXPECT_EQ(first_invalid_utf8("\xe2\x82"), 0u) << "cut short";
  EXPECT_EQ(first_invalid_utf8("\xc0\xaf"), 0u) << "overlong";
  EXPECT_EQ(first_invalid_utf8("\xe0\x80\xaf"), 0u) << "overlong";
  EXPECT_EQ(first_invalid_utf8("\xf0\x80\x80\xaf"), 0u) << "overlong";
  EXPECT_EQ(first_invalid_utf8("\xed\xa0\x80"), 0u) << "a surrogate";
  EXPECT_EQ(first_invalid_utf8("\xf4\x90\x80\x80"), 0u) << "past U+10FFFF";
  EXPECT_EQ(first_invalid_utf8("\xf5\x80\x80\x80"), 0u);
  EXPECT_EQ(first_invalid_utf8("a\x80"), 1u) << "a continuation byte alone";
  EXPECT_EQ(first_invalid_utf8("\xc3\xa9\xe2\x28\xa1"), 2u) << "a bad continuation";
}

TEST(Text, EveryBadByteBecomesAReplacementCharacterAndTheRestIsKept) {
  EXPECT_EQ(to_valid_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(to_valid_utf8("caf\xe9 closed"), "caf\xef\xbf\xbd closed");
  EXPECT_EQ(to_valid_utf8("\xff\xfe"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(to_valid_utf8("a\xe2\x82"), "a\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(to_valid_utf8(""), "");
  for (const char* s : {"\xc0\xaf", "\xed\xa0\x80x", "ok\xf4\x90\x80\x80"}) {
    EXPECT_EQ(first_invalid_utf8(to_valid_utf8(s)), std::nullopt) << s;
  }
}

TEST(Text, TheRefusalNamesTheFieldAndTheByte) {
  EXPECT_TRUE(check_utf8("caf\xc3\xa9", "--reason").ok());
  const auto st = check_utf8("caf\xe9 closed", "--reason");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kRefused);
  EXPECT_NE(st.error().message.find("--reason is not valid UTF-8"), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("0xE9 at offset 3"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace intermission::core
