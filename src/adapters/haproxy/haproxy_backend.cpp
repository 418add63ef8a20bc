#include "adapters/haproxy/haproxy_backend.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "adapters/haproxy/protocol.h"
#include "adapters/unique_fd.h"

namespace intermission::adapters::haproxy {
namespace {

core::Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::string();
    return core::Error::unavailable("read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

core::Error file_error(const std::string& what, const std::string& path) {
  return core::Error::unavailable(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

HaproxyBackend::HaproxyBackend(HaproxySettings settings)
    : s_(std::move(settings)), client_(s_.socket, s_.timeout) {}

std::string HaproxyBackend::describe() const {
  return "haproxy " + s_.socket + " map " + s_.map + " key " + s_.key;
}

core::Result<bool> HaproxyBackend::live_on() const {
  auto level = client_.command(std::string(kShowCliLevel));
  if (!level) return level.error();
  std::string lvl = *level;
  lvl.erase(lvl.find_last_not_of(" \r\n") + 1);
  if (lvl != "operator" && lvl != "admin") {  // map commands need operator (doc: management.txt)
    return core::Error::permission("HAProxy runtime API " + s_.socket + " has level '" + lvl +
                                   "'; switching maps needs `level operator` on its stats socket");
  }
  admin_level_ = lvl == "admin";
  auto reply = client_.command(show_map_command(s_.map));
  if (!reply) return reply.error();
  auto entries = parse_show_map(*reply, s_.map);
  if (!entries) return entries.error();
  for (const auto& [k, v] : *entries) {
    if (k == s_.key) return true;
  }
  return false;
}

core::Result<core::Observation> HaproxyBackend::observe() {
  auto on = live_on();
  if (!on) return on.error();
  auto text = read_text(s_.map);
  if (!text) return text.error();
  const bool file_on = map_file_has(*text, s_.key);
  core::SwitchObservation o;
  o.on = *on;
  o.persisted = file_on == *on;
  o.detail = std::string("live entry ") + (*on ? "present" : "absent") + ", map file " +
             (file_on ? "has it" : "does not have it");
  if (admin_level_) {
    // It works, but whoever reaches the socket holds the whole runtime API.
    o.detail +=
        "; the socket is at level admin, more than switching needs: give intermission "
        "its own with level operator (intermission haproxy-config)";
  }
  return core::Observation{o};
}

core::Status HaproxyBackend::apply(const core::Step& step) {
  const auto* sw = std::get_if<core::SetSwitch>(&step);
  if (sw == nullptr) return core::Error::internal("haproxy backend got a step it cannot apply");
  auto on = live_on();
  if (!on) return on.error();
  // The map file first: a reload that begins between the two writes reads the file, and must
  // find the new state there, or it would revert the runtime change once it takes over
  // (haproxy-facts.md). A failure after the file write is repaired by the next convergence,
  // which sees the runtime disagree with the file.
  if (auto st = write_file(sw->on); !st) return st;
  if (sw->on && !*on) {
    auto reply = client_.command(add_map_command(s_.map, s_.key, s_.value));
    if (!reply) return reply.error();
    if (auto st = check_empty_reply(*reply, s_.map); !st) return st;
  } else if (!sw->on && *on) {
    auto reply = client_.command(del_map_command(s_.map, s_.key));
    if (!reply) return reply.error();
    if (auto st = check_empty_reply(*reply, s_.map); !st) return st;
  }
  return {};
}

// Rewrites the map file under an exclusive lock (other environments share the file), through
// a temporary file and rename, so HAProxy never reads half a file.
core::Status HaproxyBackend::write_file(bool on) const {
  const std::string lock_path = s_.map + ".lock";
  UniqueFd lock{::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (lock.fd < 0) return file_error("open lock", lock_path);
  if (::flock(lock.fd, LOCK_EX) != 0) return file_error("lock", lock_path);
  auto text = read_text(s_.map);
  if (!text) return text.error();
  const std::string next =
      map_file_with(*text, s_.key, on ? std::optional<std::string>(s_.value) : std::nullopt);
  if (next == *text) return {};
  const std::string tmp = s_.map + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd out{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (out.fd < 0) return file_error("create", tmp);
    std::size_t done = 0;
    while (done < next.size()) {
      const ssize_t n = ::write(out.fd, next.data() + done, next.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const core::Error e = file_error("write", tmp);
        ::unlink(tmp.c_str());
        return e;
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(out.fd) != 0) {
      const core::Error e = file_error("fsync", tmp);
      ::unlink(tmp.c_str());
      return e;
    }
  }
  if (::rename(tmp.c_str(), s_.map.c_str()) != 0) {
    const core::Error e = file_error("rename " + tmp + " to", s_.map);
    ::unlink(tmp.c_str());
    return e;
  }
  return {};
}

}  // namespace intermission::adapters::haproxy
