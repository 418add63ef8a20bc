// Standard base64 (RFC 4648 §4) on OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock: SNS
// signatures, kubeconfig *-data fields, exec plugin cluster info.
#pragma once

#include <optional>
#include <string>

namespace intermission::adapters {

std::string base64_encode(const std::string& bytes);

// The bytes, or nullopt when `text` is not base64 (wrong length, a character outside the
// alphabet, data after padding). With `ignore_whitespace`, spaces and line breaks anywhere are
// skipped first (a kubeconfig value folded by YAML); otherwise they are an error.
std::optional<std::string> base64_decode(const std::string& text, bool ignore_whitespace = false);

}  // namespace intermission::adapters
