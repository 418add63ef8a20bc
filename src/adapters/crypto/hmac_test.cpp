#include "adapters/crypto/hmac.h"

#include <gtest/gtest.h>

namespace intermission::adapters {
namespace {

// docs.github.com, "Validating webhook deliveries": the X-Hub-Signature-256 test vector.
TEST(Hmac, GitHubsDocumentedVector) {
  EXPECT_EQ("sha256=" + hmac_sha256_hex("It's a Secret to Everybody", "Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

// RFC 4231 test case 2, for each algorithm Flux's X-Signature may name.
TEST(Hmac, Rfc4231VectorsForEachNamedAlgorithm) {
  const std::string key = "Jefe", data = "what do ya want for nothing?";
  EXPECT_EQ(hmac_hex("sha224", key, data),
            "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44");
  EXPECT_EQ(hmac_hex("sha256", key, data),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hmac_hex("sha384", key, data),
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239"
            "ecfab21649");
  EXPECT_EQ(hmac_hex("sha512", key, data),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f"
            "65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
  EXPECT_EQ(hmac_hex("sha1", key, data), std::nullopt);
  EXPECT_EQ(hmac_hex("SHA256", key, data), std::nullopt);
}

}  // namespace
}  // namespace intermission::adapters
