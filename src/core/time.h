// Time in the core: a value type (milliseconds since the Unix epoch, UTC), pure parsers and
// formatters for the date shapes AWS sends, and the Clock interface through which the
// current time comes in. The core never reads the system clock itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace intermission::core {

using Duration = std::chrono::milliseconds;
using Time = std::chrono::sys_time<Duration>;

// Milliseconds since the epoch <-> Time, for storage.
inline std::int64_t to_epoch_ms(Time t) { return t.time_since_epoch().count(); }
inline Time from_epoch_ms(std::int64_t ms) { return Time(Duration(ms)); }

// "2022-10-13T15:50:46.039Z" (fraction and 'Z' optional; "+00:00" accepted).
std::optional<Time> parse_iso8601(std::string_view text);
// Java Date.toString() as CodeDeploy sends it: "Thu Oct 13 15:50:45 UTC 2022". Only the zones
// UTC and GMT are accepted: any other zone is ambiguous in that format.
std::optional<Time> parse_java_date(std::string_view text);
// Epoch seconds with an optional fraction, as in "1446744188.595".
std::optional<Time> parse_epoch_seconds(std::string_view text);
// Any of the three shapes above.
std::optional<Time> parse_any_time(std::string_view text);

// "2022-10-13T15:50:46.039Z" (milliseconds always present).
std::string format_iso8601(Time t);
// "Thu, 13 Oct 2022 15:50:46 GMT" (RFC 9110 IMF-fixdate, for HTTP headers).
std::string format_http_date(Time t);

// Durations in config and on the command line: "90s", "5m", "2h", "1h30m", "1d", "250ms".
// A bare number is rejected (the unit must be explicit). Zero and negative are rejected.
std::optional<Duration> parse_duration(std::string_view text);
// The inverse, shortest exact form: 5400000 ms -> "1h30m".
std::string format_duration(Duration d);

// Where the current time comes from. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Time now() const = 0;
};

}  // namespace intermission::core
