#include "adapters/curl_io.h"

#include <algorithm>
#include <cctype>

namespace intermission::adapters {

std::size_t curl_append_body(char* data, std::size_t size, std::size_t n, void* body) {
  static_cast<std::string*>(body)->append(data, size * n);
  return size * n;
}

std::size_t curl_collect_header(char* data, std::size_t size, std::size_t n, void* headers) {
  auto* map = static_cast<std::map<std::string, std::string>*>(headers);
  std::string line(data, size * n);
  const std::size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    (*map)[name] = value;
  } else if (line.rfind("HTTP/", 0) == 0) {
    map->clear();
  }
  return size * n;
}

}  // namespace intermission::adapters
