#include "page/assets.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace intermission::page {

namespace fs = std::filesystem;

const std::map<std::string, std::string>& known_content_types() {
  static const std::map<std::string, std::string> kTypes = {
      {".css", "text/css; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
      {".html", "text/html; charset=utf-8"}, {".txt", "text/plain; charset=utf-8"},
      {".json", "application/json"},        {".svg", "image/svg+xml"},
      {".png", "image/png"},                {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},              {".gif", "image/gif"},
      {".webp", "image/webp"},              {".avif", "image/avif"},
      {".ico", "image/x-icon"},             {".woff", "font/woff"},
      {".woff2", "font/woff2"},             {".ttf", "font/ttf"},
      {".otf", "font/otf"}};
  return kTypes;
}

std::string content_type_for(const std::string& name) {
  const auto& kTypes = known_content_types();
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

core::Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error::unavailable("read " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

core::Result<std::map<std::string, Asset>> load_assets(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return core::Error::config("assets folder " + dir + " is not a directory");
  }
  std::map<std::string, Asset> out;
  std::size_t total = 0;
  // The iterator does not follow directory symlinks by default; file symlinks are skipped.
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto status = it->symlink_status(ec);
    if (ec || !fs::is_regular_file(status)) continue;
    const std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    if (ec || rel.empty() || rel.find("..") != std::string::npos) continue;
    auto body = read_file(it->path().string());
    if (!body) return body.error();
    total += body->size();
    if (total > kMaxAssetBytes) {
      return core::Error::config("assets in " + dir + " exceed " +
                                 std::to_string(kMaxAssetBytes >> 20) + " MiB");
    }
    out[rel] = Asset{content_type_for(rel), std::move(*body)};
  }
  if (ec) return core::Error::unavailable("read assets folder " + dir + ": " + ec.message());
  return out;
}

}  // namespace intermission::page
