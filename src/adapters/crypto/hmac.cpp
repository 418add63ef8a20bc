#include "adapters/crypto/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace intermission::adapters {

namespace {

std::string hex_hmac(const EVP_MD* md_type, std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md_type, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  return hex_hmac(EVP_sha256(), key, data);
}

std::optional<std::string> hmac_hex(std::string_view algorithm, std::string_view key,
                                    std::string_view data) {
  if (algorithm == "sha224") return hex_hmac(EVP_sha224(), key, data);
  if (algorithm == "sha256") return hex_hmac(EVP_sha256(), key, data);
  if (algorithm == "sha384") return hex_hmac(EVP_sha384(), key, data);
  if (algorithm == "sha512") return hex_hmac(EVP_sha512(), key, data);
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace intermission::adapters
