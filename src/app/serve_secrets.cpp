#include "app/serve_secrets.h"

#include <sys/stat.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace intermission::app {
namespace {

struct FileText {
  bool exists = false;
  std::string text;
  std::string error;  // set when it exists (or was named) but cannot be read
};

FileText read_file(const std::string& path) {
  FileText out;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    out.error = std::strerror(errno);
    return out;
  }
  out.exists = true;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error = std::strerror(errno != 0 ? errno : EACCES);
    return out;
  }
  std::ostringstream s;
  s << in.rdbuf();
  out.text = s.str();
  return out;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  return text;
}

LoadedSecret checked(const SecretSource& source, std::string origin, const std::string& text) {
  LoadedSecret out;
  out.origin = std::move(origin);
  const std::string value = trimmed(text);
  if (value.size() < kMinSecretLength) {
    out.problem = "the " + source.what + " from " + out.origin + " is " +
                  std::to_string(value.size()) + " characters long; at least " +
                  std::to_string(kMinSecretLength) +
                  " are required (make one with: openssl rand -hex 32)";
    return out;
  }
  out.value = value;
  return out;
}

// A secret read from a file (named by `origin` in messages): its problem if unreadable.
LoadedSecret from_file(const SecretSource& source, const std::string& origin, const FileText& f) {
  if (!f.error.empty()) {
    LoadedSecret out;
    out.origin = origin;
    out.problem = "the " + source.what + " " + origin + " cannot be read: " + f.error;
    return out;
  }
  return checked(source, origin, f.text);
}

}  // namespace

LoadedSecret load_secret(const SecretSource& source, const GetEnv& getenv) {
  if (!source.file.empty()) {
    return from_file(source, "file " + source.file, read_file(source.file));
  }
  if (!source.credential.empty()) {
    if (const auto dir = getenv("CREDENTIALS_DIRECTORY"); dir && !dir->empty()) {
      const std::string path = *dir + "/" + source.credential;
      const FileText f = read_file(path);
      if (f.exists) return from_file(source, "systemd credential " + source.credential, f);
    }
  }
  if (!source.env_var.empty()) {
    if (const auto v = getenv(source.env_var); v && !v->empty()) {
      return checked(source, "$" + source.env_var, *v);
    }
  }
  return {};
}

}  // namespace intermission::app
