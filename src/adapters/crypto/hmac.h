// HMAC-SHA256 and constant-time comparison for the daemon's webhook and tokens (OpenSSL).
#pragma once

#include <string>
#include <string_view>

namespace intermission::adapters {

// Lower-case hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// Equal contents, in time that does not depend on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace intermission::adapters
