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

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The message file's text without the line end an editor leaves.
std::string message_text(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

core::Result<PageFolder> load_page_dir(const std::string& dir, const std::string& default_language) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return core::Error::config("page folder " + dir + " is not a directory");
  }
  if (!valid_language_tag(default_language)) {
    return core::Error::config("the default language '" + default_language +
                               "' is not a language tag like en or pt-BR");
  }
  PageFolder out;
  bool have_default = false;
  std::map<std::string, std::pair<std::size_t, std::string>> by_tag;  // lower tag -> index, file
  std::map<std::string, std::pair<std::string, std::string>> messages;  // lower tag -> file, text
  std::size_t total = 0;
  std::vector<fs::path> names;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec)) {
    names.push_back(it->path());
  }
  if (ec) return core::Error::unavailable("read page folder " + dir + ": " + ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& path : names) {
    const std::string name = path.filename().string();
    const bool page = name.rfind("maintenance.", 0) == 0;
    const bool message = name.rfind("message.", 0) == 0;
    if (!page && !message) continue;
    const std::string file = path.string();
    const std::string ext = page ? ".html" : ".txt";
    const std::string stem = page ? "maintenance" : "message";
    const bool is_default = name == stem + ext;
    std::string tag;
    if (!is_default) {
      if (name.size() <= stem.size() + 1 + ext.size() ||
          name.compare(name.size() - ext.size(), ext.size(), ext) != 0) {
        return core::Error::config("page folder: " + file + " is not named " + stem + ext +
                                   " or " + stem + ".<language>" + ext);
      }
      tag = name.substr(stem.size() + 1, name.size() - stem.size() - 1 - ext.size());
      if (!valid_language_tag(tag)) {
        return core::Error::config("page folder: " + file + ": '" + tag +
                                   "' is not a language tag like de or pt-BR");
      }
      if (lower(tag) == lower(default_language)) {
        return core::Error::config("page folder: " + file + " is in the default language (" +
                                   default_language + "): put it in " + stem + ext);
      }
    }
    if (!fs::is_regular_file(path, ec)) {
      return core::Error::config("page folder: " + file + " is not a regular file");
    }
    auto text = read_file(file);
    if (!text) return text.error();
    total += text->size();
    if (total > kMaxAssetBytes) {
      return core::Error::config("page folder " + dir + " exceeds " +
                                 std::to_string(kMaxAssetBytes >> 20) + " MiB");
    }
    if (message) {
      const std::string key = is_default ? std::string() : lower(tag);
      if (!messages.emplace(key, std::pair{file, message_text(std::move(*text))}).second) {
        return core::Error::config("page folder: " + file + " names a language twice");
      }
      continue;
    }
    if (is_default) {
      out.html_template = std::move(*text);
      have_default = true;
      continue;
    }
    if (const auto [it, added] = by_tag.try_emplace(lower(tag), out.translations.size(), file);
        !added) {
      return core::Error::config("page folder: " + it->second.second + " and " + file +
                                 " are the same language twice");
    }
    if (out.translations.size() + 1 >= kMaxLanguages) {
      return core::Error::config("page folder: " + file + ": more than " +
                                 std::to_string(kMaxLanguages) + " languages");
    }
    out.translations.push_back({tag, std::move(*text), {}});
  }
  if (!have_default) return core::Error::config("page folder " + dir + " has no maintenance.html");
  for (auto& [key, message] : messages) {
    auto& [file, text] = message;
    if (key.empty()) {
      out.default_reason = std::move(text);
      continue;
    }
    const auto it = by_tag.find(key);
    if (it == by_tag.end()) {
      return core::Error::config("page folder: " + file + " has no page of its language (maintenance." +
                                 fs::path(file).stem().extension().string().substr(1) + ".html)");
    }
    out.translations[it->second.first].default_reason = std::move(text);
  }
  return out;
}

}  // namespace intermission::page
