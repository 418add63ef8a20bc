#include "core/text.h"

#include <cstdio>
#include <string>

namespace intermission::core {

std::optional<std::size_t> first_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  const auto byte = [&s](std::size_t at) { return static_cast<unsigned char>(s[at]); };
  while (i < s.size()) {
    const unsigned char b = byte(i);
    if (b < 0x80) {
      ++i;
      continue;
    }
    // The length of the sequence and the range its second byte must be in (RFC 3629 §4), which
    // rules out overlong forms (C0, C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF) and code
    // points past U+10FFFF (F4 90-BF, F5-FF).
    std::size_t length = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      length = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      length = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      length = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + length > s.size()) return i;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  auto bad = first_invalid_utf8(text);
  if (!bad) return std::string(text);
  while (bad) {
    out.append(text.substr(0, *bad));
    out.append("\xEF\xBF\xBD");
    text.remove_prefix(*bad + 1);
    bad = first_invalid_utf8(text);
  }
  out.append(text);
  return out;
}

Status check_utf8(std::string_view text, std::string_view field) {
  const auto at = first_invalid_utf8(text);
  if (!at) return {};
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[*at]));
  return Error::refused(std::string(field) + " is not valid UTF-8 (byte " + hex + " at offset " +
                        std::to_string(*at) + "; a Latin-1 terminal or file?): give it as UTF-8");
}

}  // namespace intermission::core
