#include "adapters/haproxy/protocol.h"

namespace intermission::adapters::haproxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// The first whitespace-separated word of a map file line, or empty for blanks and comments.
std::string_view line_key(std::string_view line) {
  line = trim(line);
  if (line.empty() || line.front() == '#') return {};
  const std::size_t sp = line.find_first_of(" \t");
  return line.substr(0, sp);
}

core::Error reply_error(std::string_view reply, std::string_view map) {
  const std::string text(trim(reply));
  if (text.find("Unknown map identifier") != std::string::npos) {
    return core::Error::config("HAProxy has no map '" + std::string(map) +
                               "' loaded: use it in haproxy.cfg, e.g. `acl maint str(ENV),map(" +
                               std::string(map) + ") -m found` (see intermission haproxy-config)");
  }
  if (text.find("Permission denied") != std::string::npos ||
      text.find("permission denied") != std::string::npos) {
    return core::Error::permission("HAProxy refused: " + text +
                                   " (the stats socket needs `level operator` or `level admin`)");
  }
  if (text.find("Unknown command") != std::string::npos) {
    return core::Error::unavailable("HAProxy does not know the command (too old a version?): " +
                                    text.substr(0, text.find('\n')));
  }
  return core::Error::unavailable("HAProxy answered: " + text.substr(0, 200));
}

}  // namespace

bool safe_token(std::string_view token) {
  if (token.empty() || token.size() > 512) return false;
  for (const char c : token) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == ';' || c == '\\' || c == '"' || c == '\'' || c == '#') {
      return false;
    }
  }
  return true;
}

std::string show_map_command(std::string_view map) { return "show map " + std::string(map); }

std::string add_map_command(std::string_view map, std::string_view key, std::string_view value) {
  return "add map " + std::string(map) + " " + std::string(key) + " " + std::string(value);
}

std::string del_map_command(std::string_view map, std::string_view key) {
  return "del map " + std::string(map) + " " + std::string(key);
}

core::Status check_empty_reply(std::string_view reply, std::string_view map) {
  const std::string_view text = trim(reply);
  if (text.empty() || text == "Key not found.") return {};
  return reply_error(reply, map);
}

core::Result<std::vector<std::pair<std::string, std::string>>> parse_show_map(
    std::string_view reply, std::string_view map) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < reply.size()) {
    std::size_t end = reply.find('\n', pos);
    if (end == std::string_view::npos) end = reply.size();
    const std::string_view line = trim(reply.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty()) continue;
    // "<ptr> <key> <value>": the pointer is hex with 0x.
    if (line.rfind("0x", 0) != 0) return reply_error(reply, map);
    const std::size_t a = line.find(' ');
    if (a == std::string_view::npos) return reply_error(reply, map);
    const std::string_view rest = line.substr(a + 1);
    const std::size_t b = rest.find(' ');
    out.emplace_back(std::string(rest.substr(0, b)),
                     b == std::string_view::npos ? "" : std::string(rest.substr(b + 1)));
  }
  return out;
}

std::string map_file_with(std::string_view text, std::string_view key,
                          const std::optional<std::string>& value) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line_key(line) == key) continue;
    out += line;
    out += '\n';
  }
  if (value) out += std::string(key) + " " + *value + "\n";
  return out;
}

bool map_file_has(std::string_view text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (line_key(text.substr(pos, end - pos)) == key) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace intermission::adapters::haproxy
