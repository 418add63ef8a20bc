// Logs one JSON object per line: {"time","level","message",...fields}. CloudWatch Logs and
// journald both read these as structured records.
#pragma once

#include <cstdio>
#include <mutex>

#include "core/log.h"
#include "core/time.h"

namespace intermission::adapters {

class JsonLogger final : public core::Logger {
 public:
  // `out` and `clock` must outlive the logger. Lines below `min_level` are dropped.
  JsonLogger(std::FILE* out, const core::Clock& clock, core::LogLevel min_level)
      : out_(out), clock_(clock), min_level_(min_level) {}
  void log(core::LogLevel level, std::string_view message, const core::LogFields& fields) override;

 private:
  std::FILE* out_;
  const core::Clock& clock_;
  core::LogLevel min_level_;
  std::mutex mu_;
};

// "debug", "info", "warn", "error" -> level.
std::optional<core::LogLevel> parse_log_level(std::string_view text);

// The system's real-time clock.
class SystemClock final : public core::Clock {
 public:
  core::Time now() const override;
};

}  // namespace intermission::adapters
