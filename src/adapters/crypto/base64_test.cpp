#include "adapters/crypto/base64.h"

#include <gtest/gtest.h>

namespace intermission::adapters {
namespace {

// RFC 4648 §10 test vectors.
TEST(Base64, TheRfcVectorsRoundTrip) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64_encode(bytes), text);
    EXPECT_EQ(base64_decode(text), std::optional<std::string>(bytes)) << text;
  }
  const std::string binary("\x00\xff\x10\x80", 4);
  EXPECT_EQ(base64_decode(base64_encode(binary)), binary);
}

TEST(Base64, WhatIsNotBase64IsRefused) {
  for (const char* bad : {"Zg=", "Zg==Zg==", "Z===", "QQ=A", "Zm9*", "Zm9v\n"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

TEST(Base64, WhitespaceIsSkippedOnlyWhenAsked) {
  EXPECT_EQ(base64_decode("Zm9v\nYmFy\n", true), std::optional<std::string>("foobar"));
  EXPECT_EQ(base64_decode(" Zm 9v ", true), std::optional<std::string>("foo"));
  EXPECT_FALSE(base64_decode("Zm9v YmFy"));
}

}  // namespace
}  // namespace intermission::adapters
