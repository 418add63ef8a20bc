// The JSON form of EnvState and AuditEntry, shared by every store and by `status --json`.
// Pure.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "core/ledger.h"
#include "core/result.h"

namespace intermission::core {

// The state without its version (the store keeps the version beside it). Always UTF-8: a byte
// of a text field that is not (text an older version let in) is written as U+FFFD.
std::string encode_state(const EnvState& state);
// Fails with kInvalidInput when `text` is not a state this version wrote. Accepts everything
// encode_state writes, and states older versions wrote with text that is not UTF-8 (those
// bytes are read as U+FFFD).
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
