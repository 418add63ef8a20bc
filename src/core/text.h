// Text that people give us (an operator's reason, who they are, an environment's name) is
// stored, shown on the page and sent to chat: it must be UTF-8. The check every front end and
// the core use where such text comes in. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace intermission::core {

// The offset of the first byte that does not belong to a well-formed UTF-8 sequence (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or nullopt when `text` is UTF-8.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

// `text` with every byte that does not belong to a well-formed sequence replaced by U+FFFD
// (the replacement character): UTF-8 that keeps every valid character of `text`.
std::string to_valid_utf8(std::string_view text);

// kRefused naming `field` ("--reason", "'who'", "$USER") and the byte when `text` is not
// UTF-8 (a Latin-1 "café" is "caf\xe9"); ok otherwise.
Status check_utf8(std::string_view text, std::string_view field);

}  // namespace intermission::core
