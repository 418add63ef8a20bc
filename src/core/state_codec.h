// The JSON form of EnvState and AuditEntry, shared by every store and by `status --json`.
// Pure.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "core/ledger.h"
#include "core/result.h"

namespace intermission::core {

// The state without its version (the store keeps the version beside it). Text fields are
// written byte for byte, whether or not they are UTF-8.
std::string encode_state(const EnvState& state);
// Fails with kInvalidInput when `text` is not a state this version wrote. Accepts everything
// encode_state writes, text that is not UTF-8 included.
Result<EnvState> decode_state(std::string_view text, std::string environment,
                              std::int64_t version);

// The largest encoded state a store writes. DynamoDB keeps an item up to 400 KB, names and
// key included; this leaves a margin for them, and SQLite keeps to the same bound so that a
// ledger that works locally also works in AWS.
inline constexpr std::size_t kMaxEncodedStateBytes = 384 * 1024;
// Fails with kInvalidInput, saying what is large, when `encoded` (encode_state(state)) is
// over kMaxEncodedStateBytes. Stores call it before writing.
Status check_state_size(const EnvState& state, std::string_view encoded);

boost::json::value to_json(const DeploymentRecord& record);
boost::json::value to_json(const AuditEntry& entry);
boost::json::value to_json(const Window& window);

}  // namespace intermission::core
