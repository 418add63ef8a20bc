#include "adapters/nginx/nginx_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "adapters/aws/http_client.h"
#include "adapters/unique_fd.h"

namespace intermission::adapters::nginx {
namespace {

core::Error file_error(const std::string& what, const std::string& path) {
  return core::Error::unavailable(what + " " + path + ": " + std::strerror(errno));
}

// Writes `text` to `path` as one atomic step: a temporary file beside it, fsync, rename. A
// reader (nginx) sees the old file or the new one, never a part.
core::Status write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.fd < 0) return file_error("create", tmp);
    if (::fchmod(fd.fd, 0644) != 0 ||  // whatever the umask: nginx's workers read it
        ::write(fd.fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(fd.fd) != 0) {
      const core::Error e = file_error("write", tmp);
      ::unlink(tmp.c_str());
      return e;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const core::Error e = file_error("rename into", path);
    ::unlink(tmp.c_str());
    return e;
  }
  return {};
}

}  // namespace

NginxBackend::NginxBackend(NginxSettings settings) : s_(std::move(settings)) {}

std::string NginxBackend::describe() const {
  return "nginx state file " + s_.state_file +
         (s_.page_dir.empty() ? "" : ", page files in " + s_.page_dir) +
         (s_.probe.empty() ? "" : " (probe " + s_.probe + ")");
}

core::Result<bool> NginxBackend::file_on() const {
  struct stat st {};
  if (::stat(s_.state_file.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return file_error("stat", s_.state_file);
}

core::Result<bool> NginxBackend::nginx_on() const {
  aws::HttpClient http(aws::HttpTimeouts{s_.probe_timeout, s_.probe_timeout});
  auto r = http.request("GET", s_.probe, {}, "");
  if (!r) {
    return r.error().with_context("nginx probe " + s_.probe + " (is nginx running?)");
  }
  if (r->status == 200 && (r->body == "on\n" || r->body == "off\n")) return r->body == "on\n";
  return core::Error::unavailable(
      "nginx probe " + s_.probe + " answered " + std::to_string(r->status) +
      ", not on/off: nginx does not have intermission's lines for '" + s_.environment +
      "' (print them with `intermission nginx-config " + s_.environment + "`)");
}

core::Result<core::Observation> NginxBackend::observe() {
  auto file = file_on();
  if (!file) return file.error();
  core::SwitchObservation o;
  o.on = *file;
  o.persisted = true;
  o.detail = std::string("state file ") + (*file ? "present" : "absent");
  if (!s_.probe.empty()) {
    auto live = nginx_on();
    if (!live) return live.error();
    if (*live != *file) {
      return core::Error::unavailable(
          "nginx sees maintenance " + std::string(*live ? "on" : "off") + " but " + s_.state_file +
          " is " + (*file ? "present" : "absent") +
          ": does nginx's `if (-f ...)` name this file, and can its worker user search the "
          "directory?");
    }
    o.detail += ", nginx agrees";
  }
  return core::Observation{o};
}

core::Status NginxBackend::write(bool on, const core::SetSwitch& step) const {
  if (!on) {
    if (::unlink(s_.state_file.c_str()) != 0 && errno != ENOENT) {
      return file_error("remove", s_.state_file);
    }
    return {};
  }
  // For people looking at the file; nginx only tests that it exists.
  boost::json::object what{{"environment", s_.environment}, {"reason", step.reason}};
  if (step.until) what["until"] = core::format_iso8601(*step.until);
  return write_atomically(s_.state_file, boost::json::serialize(what) + "\n");
}

core::Status NginxBackend::write_page(const core::SetSwitch& step) const {
  if (!s_.render_page) return core::Error::internal("nginx page_dir without a page renderer");
  auto files = s_.render_page(step);
  if (!files) return files.error().with_context("the nginx page for " + s_.environment);
  std::error_code ec;
  if (!std::filesystem::is_directory(s_.page_dir, ec)) {
    return core::Error::unavailable("the nginx page directory " + s_.page_dir +
                                    " does not exist (create it, searchable by nginx's worker "
                                    "user: install -d -m 755 " +
                                    s_.page_dir + ")");
  }
  // Assets first, the page last: a page never names an asset that is not there yet.
  for (const auto& [rel, body] : files->assets) {
    const std::string path = s_.page_dir + "/assets/" + rel;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec)
      return core::Error::unavailable("create the directory of " + path + ": " + ec.message());
    for (auto d = std::filesystem::path(path).parent_path(); d.string().size() > s_.page_dir.size();
         d = d.parent_path()) {
      ::chmod(d.c_str(), 0755);  // searchable by nginx's worker user, whatever the umask
    }
    if (auto st = write_atomically(path, body); !st) return st;
  }
  if (auto st = write_atomically(s_.page_dir + "/page.json", files->json); !st) return st;
  return write_atomically(s_.page_dir + "/page.html", files->html);
}

core::Status NginxBackend::apply(const core::Step& step) {
  const auto* sw = std::get_if<core::SetSwitch>(&step);
  if (sw == nullptr) return core::Error::internal("nginx backend got a step it cannot apply");
  auto was = file_on();
  if (!was) return was.error();
  // The page before the state file: nginx never serves maintenance without its page, and a
  // crash in between leaves maintenance off, which the next run finishes.
  if (sw->on && !s_.page_dir.empty()) {
    if (auto st = write_page(*sw); !st) return st;
  }
  if (auto st = write(sw->on, *sw); !st) return st;
  if (s_.probe.empty()) return {};
  auto live = nginx_on();
  if (live && *live == sw->on) return {};
  // nginx does not follow: put the file back as it was, so nothing changed.
  (void)write(*was, *sw);
  if (!live) return live.error().with_context("the switch was undone");
  return core::Error::unavailable("nginx did not follow " + s_.state_file +
                                  " (the switch was undone): does nginx's `if (-f ...)` name "
                                  "this file, and can its worker user search the directory?");
}

}  // namespace intermission::adapters::nginx
