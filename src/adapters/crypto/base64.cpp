#include "adapters/crypto/base64.h"

#include <openssl/evp.h>

namespace intermission::adapters {

std::string base64_encode(const std::string& bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(const std::string& text, bool ignore_whitespace) {
  std::string in;
  if (ignore_whitespace) {
    for (const char c : text) {
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') in.push_back(c);
    }
  } else {
    in = text;
  }
  if (in.empty()) return std::string();
  if (in.size() % 4 != 0) return std::nullopt;
  // EVP_DecodeBlock takes '=' only at the end; it is checked here as well so that "QQ=A" is
  // refused rather than read as data after padding.
  const std::size_t first_pad = in.find('=');
  if (first_pad != std::string::npos && first_pad < in.size() - 2) return std::nullopt;
  if (first_pad == in.size() - 2 && in.back() != '=') return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  const std::size_t pad = first_pad == std::string::npos ? 0 : in.size() - first_pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

}  // namespace intermission::adapters
