// Logging from the core: a sink interface, so that the core writes no bytes itself.
// The adapter writes one JSON object per line (CloudWatch reads them as structured).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace intermission::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
std::string_view to_string(LogLevel level);

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Implementations must be thread-safe.
class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view message, const LogFields& fields) = 0;

  void info(std::string_view m, const LogFields& f = {}) { log(LogLevel::kInfo, m, f); }
  void warn(std::string_view m, const LogFields& f = {}) { log(LogLevel::kWarn, m, f); }
  void error(std::string_view m, const LogFields& f = {}) { log(LogLevel::kError, m, f); }
};

}  // namespace intermission::core
