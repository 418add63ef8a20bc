// The HAProxy runtime API as text: commands we send and how to read the replies (HAProxy
// doc/management.txt §9.3, tried on 2.6: see docs/backends.md). Pure; the transport is in
// runtime_client.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace intermission::adapters::haproxy {

// Map names, keys and values go into a command line, where whitespace, ';' and '\' have
// meaning. Only a safe subset is accepted (checked when the config is loaded).
bool safe_token(std::string_view token);

std::string show_map_command(std::string_view map);
std::string add_map_command(std::string_view map, std::string_view key, std::string_view value);
std::string del_map_command(std::string_view map, std::string_view key);
inline constexpr std::string_view kShowCliLevel = "show cli level";

// The reply of a command that answers an empty line on success (add map, del map): an Error
// with HAProxy's words otherwise. "Key not found." on `del map` is success (already gone).
core::Status check_empty_reply(std::string_view reply, std::string_view map);

// The entries of `show map <map>` ("<ptr> <key> <value>" lines), or the error it reported
// (map not loaded, permission).
core::Result<std::vector<std::pair<std::string, std::string>>> parse_show_map(
    std::string_view reply, std::string_view map);

// The map file's text with every line for `key` removed and, if `value` is given, one
// "key value" line appended. Comments and other keys are kept as they were.
std::string map_file_with(std::string_view text, std::string_view key,
                          const std::optional<std::string>& value);

// True when the map file's text has an entry for `key`.
bool map_file_has(std::string_view text, std::string_view key);

}  // namespace intermission::adapters::haproxy
