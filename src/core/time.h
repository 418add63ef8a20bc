// Time in the core: a value type (milliseconds since the Unix epoch, UTC), pure parsers and
// formatters for the date shapes AWS sends, and the Clock interface through which the
// current time comes in. The core never reads the system clock itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace intermission::core {

using Duration = std::chrono::milliseconds;
using Time = std::chrono::sys_time<Duration>;

// The times intermission reads and writes: years 0000 to 9999, the range of the four-digit
// year every stored time uses. Anything later is refused where it comes in (a parser, an
// operator's `until`); a sum that would leave the range stops at its edge.
inline constexpr Time kEarliestTime{Duration(-62'167'219'200'000)};  // 0000-01-01T00:00:00Z
inline constexpr Time kLatestTime{Duration(253'402'300'799'999)};    // 9999-12-31T23:59:59.999Z
// The longest duration accepted anywhere (100 years of days): far beyond any hold or timeout,
// and far below where `now + duration` could overflow.
inline constexpr Duration kLongestDuration{std::chrono::hours(24 * 36500)};

inline bool within_bounds(Time t) { return kEarliestTime <= t && t <= kLatestTime; }
// t + d, kept within [kEarliestTime, kLatestTime] and free of overflow for any d.
Time add_bounded(Time t, Duration d);

// Milliseconds since the epoch <-> Time, for storage.
inline std::int64_t to_epoch_ms(Time t) { return t.time_since_epoch().count(); }
inline Time from_epoch_ms(std::int64_t ms) { return Time(Duration(ms)); }

// Every parser below returns only times within_bounds().
// "2022-10-13T15:50:46.039Z" (fraction and 'Z' optional; "+00:00" accepted).
std::optional<Time> parse_iso8601(std::string_view text);
// A time an operator gives (--at, --until, the API's and an operator event's until), stricter
// than parse_iso8601, which reads what AWS and our stores write: "2026-01-31T18:00:00Z" or with
// the offset from UTC, "2026-01-31T19:00:00+01:00" (converted to UTC); a time without a zone
// is refused rather than guessed. Second 60 only at 23:59:60 UTC, a leap second, read as the
// next second (00:00:00: our times, like POSIX's and AWS's, have no leap seconds, and that is
// the instant the operator means, to within the second). kInvalidInput with the accepted
// shapes otherwise.
Result<Time> read_operator_time(std::string_view text);
// Java Date.toString() as CodeDeploy sends it: "Thu Oct 13 15:50:45 UTC 2022". Only the zones
// UTC and GMT are accepted: any other zone is ambiguous in that format.
std::optional<Time> parse_java_date(std::string_view text);
// Epoch seconds with an optional fraction, as in "1446744188.595".
std::optional<Time> parse_epoch_seconds(std::string_view text);
// Any of the three shapes above.
std::optional<Time> parse_any_time(std::string_view text);
// An HTTP-date in any of RFC 9110 §5.6.7's three forms: "Sun, 06 Nov 1994 08:49:37 GMT"
// (IMF-fixdate), "Sunday, 06-Nov-94 08:49:37 GMT" (rfc850-date: its two-digit year is the
// latest that is not more than 50 years after `now`) and "Sun Nov  6 08:49:37 1994" (asctime).
// The day name must agree with the date.
std::optional<Time> parse_http_date(std::string_view text, Time now);

// "2022-10-13T15:50:46.039Z" (milliseconds always present). A time outside the bounds is
// written as the bound it passed, so parse_iso8601 accepts everything this writes.
std::string format_iso8601(Time t);
// "Thu, 13 Oct 2022 15:50:46 GMT" (RFC 9110 IMF-fixdate, for HTTP headers; bounded the same).
std::string format_http_date(Time t);

// Durations in config and on the command line: "90s", "5m", "2h", "1h30m", "1d", "250ms".
// A bare number is rejected (the unit must be explicit). Zero, negative and anything longer
// than kLongestDuration are rejected; nothing overflows.
std::optional<Duration> parse_duration(std::string_view text);
// The same grammar with a reason when it fails, for people; zero is accepted (callers that
// need a positive duration say so in their own words).
Result<Duration> read_duration(std::string_view text);
// The inverse, shortest exact form: 5400000 ms -> "1h30m".
std::string format_duration(Duration d);

// Where the current time comes from. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Time now() const = 0;
};

// Waiting, for the few pauses the core decides on (the backoff between compare-and-set
// attempts); the core itself never sleeps. Implementations must be thread-safe.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void sleep_for(Duration d) = 0;
};

}  // namespace intermission::core
