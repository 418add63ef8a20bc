// HMAC-SHA256 and constant-time comparison for the daemon's webhook and tokens (OpenSSL).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace intermission::adapters {

// Lower-case hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// Lower-case hex of HMAC-<algorithm>(key, data) for "sha224", "sha256", "sha384" or "sha512"
// (the names Flux's X-Signature uses); nullopt for any other name.
std::optional<std::string> hmac_hex(std::string_view algorithm, std::string_view key,
                                    std::string_view data);

// Equal contents, in time that does not depend on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace intermission::adapters
