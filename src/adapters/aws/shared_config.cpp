#include "adapters/aws/shared_config.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace intermission::adapters::aws {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "profile  x" -> "x"; "default" -> "default"; anything else -> nullopt (not a profile).
std::optional<std::string> config_profile_name(const std::string& section) {
  if (section == "default") return section;
  if (section.rfind("profile", 0) == 0 && section.size() > 7 &&
      std::isspace(static_cast<unsigned char>(section[7])) != 0) {
    return std::string(trim(std::string_view(section).substr(7)));
  }
  return std::nullopt;
}

}  // namespace

core::Result<IniFile> parse_ini(std::string_view text, const std::string& path) {
  IniFile file;
  file.path = path;
  std::map<std::string, IniValue>* section = nullptr;
  IniValue* last = nullptr;  // the value an indented line continues
  int line_no = 0;
  auto error = [&path, &line_no](const std::string& what) {
    return core::Error::config(path + ":" + std::to_string(line_no) + ": " + what);
  };
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view content = trim(line);
    if (content.empty()) continue;  // a blank line; it does not end a continued value
    if (content.front() == '#' || content.front() == ';') continue;
    if (std::isspace(static_cast<unsigned char>(line.front())) != 0 && last != nullptr) {
      last->value += "\n" + std::string(content);
      continue;
    }
    if (content.front() == '[') {
      if (content.back() != ']') return error("a section header must end with ']'");
      const std::string name(trim(content.substr(1, content.size() - 2)));
      if (name.empty()) return error("empty section name");
      if (file.sections.count(name) != 0) return error("section [" + name + "] appears twice");
      section = &file.sections[name];
      last = nullptr;
      continue;
    }
    const std::size_t delim = content.find_first_of("=:");
    if (delim == std::string_view::npos) {
      return error("expected '[section]' or 'key = value', got '" + std::string(content) + "'");
    }
    if (section == nullptr) return error("'key = value' before any [section]");
    const std::string key = lower(trim(content.substr(0, delim)));
    if (key.empty()) return error("a value without a key");
    if (section->count(key) != 0) return error("key '" + key + "' appears twice in its section");
    last = &(*section)[key];
    last->value = std::string(trim(content.substr(delim + 1)));
    last->where = path + ":" + std::to_string(line_no);
  }
  return file;
}

std::optional<Profile> find_profile(const IniFile& credentials, const IniFile& config,
                                    const std::string& name) {
  Profile p;
  p.name = name;
  bool found = false;
  // Config first, so that the credentials file's values replace it where both have a key.
  for (const auto& [section, values] : config.sections) {
    const auto profile = config_profile_name(section);
    if (!profile || *profile != name) continue;
    // "[profile default]" wins over "[default]" (the CLI reads both and prefers the former).
    if (section == "default" && config.sections.count("profile default") != 0) continue;
    for (const auto& [k, v] : values) {
      p.values[k] = v;
      p.from_credentials_file[k] = false;
    }
    found = true;
  }
  if (const auto it = credentials.sections.find(name); it != credentials.sections.end()) {
    for (const auto& [k, v] : it->second) {
      p.values[k] = v;
      p.from_credentials_file[k] = true;
    }
    found = true;
  }
  if (!found) return std::nullopt;
  return p;
}

namespace {

core::Result<IniFile> load_ini(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    IniFile empty;  // a missing file is an empty one, as in the CLI
    empty.path = path;
    return empty;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return core::Error::config(path + ": cannot be read");
  return parse_ini(buffer.str(), path);
}

std::string expand_home(const std::string& path, const Getenv& getenv) {
  if (path.rfind("~/", 0) != 0) return path;
  const auto home = getenv("HOME");
  return (home ? *home : std::string()) + path.substr(1);
}

}  // namespace

core::Result<SharedFiles> load_shared_files(const Getenv& getenv) {
  auto setting = [&getenv](const char* name, const char* fallback) {
    const auto v = getenv(name);
    return expand_home(v && !v->empty() ? *v : std::string(fallback), getenv);
  };
  SharedFiles files;
  auto credentials = load_ini(setting("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"));
  if (!credentials) return credentials.error();
  auto config = load_ini(setting("AWS_CONFIG_FILE", "~/.aws/config"));
  if (!config) return config.error();
  files.credentials = std::move(*credentials);
  files.config = std::move(*config);
  for (const char* name : {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"}) {
    if (const auto v = getenv(name); v && !v->empty()) {
      files.profile = *v;
      files.explicit_profile = true;
      break;
    }
  }
  return files;
}

std::string profile_region(const Getenv& getenv) {
  const auto files = load_shared_files(getenv);
  if (!files) return "";
  const auto p = find_profile(files->credentials, files->config, files->profile);
  if (!p) return "";
  const IniValue* region = p->find("region");
  return region != nullptr ? region->value : "";
}

}  // namespace intermission::adapters::aws
