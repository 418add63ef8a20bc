#include "adapters/backend/log_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace intermission::adapters {

LogBackend::LogBackend(std::string path, std::string environment, const core::Clock& clock,
                       core::Duration delay)
    : path_(std::move(path)), environment_(std::move(environment)), clock_(clock), delay_(delay) {}

std::string LogBackend::describe() const { return "log " + path_; }

core::Result<core::Observation> LogBackend::observe() {
  std::ifstream in(path_);
  core::SwitchObservation seen{false, "no step logged yet"};
  if (!in) {
    if (errno == ENOENT) return core::Observation{seen};
    return core::Error::unavailable("read " + path_ + ": " + std::strerror(errno));
  }
  std::string line;
  while (std::getline(in, line)) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) continue;  // a torn or foreign line is not our state
    const auto& o = v.get_object();
    const auto* env = o.if_contains("environment");
    const auto* on = o.if_contains("on");
    if (env == nullptr || !env->is_string() || env->get_string() != environment_) continue;
    if (on == nullptr || !on->is_bool()) continue;
    seen.on = on->get_bool();
    seen.detail = "last logged step: " + line;
  }
  return core::Observation{seen};
}

core::Status LogBackend::apply(const core::Step& step) {
  const auto* sw = std::get_if<core::SetSwitch>(&step);
  if (sw == nullptr) return core::Error::internal("log backend got a step it cannot apply");
  if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
  boost::json::object o{{"time", core::format_iso8601(clock_.now())},
                        {"environment", environment_},
                        {"step", core::describe(step)},
                        {"on", sw->on},
                        {"reason", sw->reason}};
  if (sw->until) o["until"] = core::format_iso8601(*sw->until);
  const std::string line = boost::json::serialize(o) + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return core::Error::unavailable("open " + path_ + ": " + std::strerror(errno));
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int write_errno = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) {
    return core::Error::unavailable("write " + path_ + ": " + std::strerror(write_errno));
  }
  return {};
}

}  // namespace intermission::adapters
