#include "adapters/log/json_logger.h"

#include <boost/json.hpp>
#include <chrono>

namespace intermission::adapters {

void JsonLogger::log(core::LogLevel level, std::string_view message,
                     const core::LogFields& fields) {
  if (level < min_level_) return;
  boost::json::object o{{"time", core::format_iso8601(clock_.now())},
                        {"level", core::to_string(level)},
                        {"message", message}};
  for (const auto& [k, v] : fields) o[k] = v;
  const std::string line = boost::json::serialize(o) + "\n";
  const std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

std::optional<core::LogLevel> parse_log_level(std::string_view text) {
  for (auto l : {core::LogLevel::kDebug, core::LogLevel::kInfo, core::LogLevel::kWarn,
                 core::LogLevel::kError}) {
    if (core::to_string(l) == text) return l;
  }
  return std::nullopt;
}

core::Time SystemClock::now() const {
  return std::chrono::time_point_cast<core::Duration>(std::chrono::system_clock::now());
}

}  // namespace intermission::adapters
