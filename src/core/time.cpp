#include "core/time.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <variant>

namespace intermission::core {
namespace {

using std::chrono::day;
using std::chrono::month;
using std::chrono::year;

// Reads exactly `width` decimal digits at `pos`.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t width) {
  if (pos + width > s.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<Time> make_time(int y, int mo, int d, int h, int mi, int se, int ms) {
  const std::chrono::year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                                        day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 60 || ms > 999) return std::nullopt;
  const Time t = Time(std::chrono::sys_days(ymd)) + std::chrono::hours(h) +
                 std::chrono::minutes(mi) + std::chrono::seconds(se) + Duration(ms);
  if (!within_bounds(t)) return std::nullopt;  // a leap second on the last day of 9999
  return t;
}

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kWeekdays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};

// "Jan" -> 1 ... "Dec" -> 12; 0 for anything else.
int month_number(std::string_view name) {
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (name == kMonths[i]) return static_cast<int>(i) + 1;
  }
  return 0;
}

struct Civil {
  int y, mo, d, h, mi, s, ms;
  unsigned weekday;
};

Civil civil(Time t) {
  t = std::clamp(t, kEarliestTime, kLatestTime);
  const auto days = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss<Duration> hms{t - days};
  return {static_cast<int>(ymd.year()),
          static_cast<int>(static_cast<unsigned>(ymd.month())),
          static_cast<int>(static_cast<unsigned>(ymd.day())),
          static_cast<int>(hms.hours().count()),
          static_cast<int>(hms.minutes().count()),
          static_cast<int>(hms.seconds().count()),
          static_cast<int>(hms.subseconds().count()),
          std::chrono::weekday(days).c_encoding()};
}

}  // namespace

namespace {

// The fields of YYYY-MM-DDTHH:MM:SS[.fff...] and what follows them (the zone), not yet
// checked as a date; or why the text is not of that shape.
struct IsoParts {
  int y, mo, d, h, mi, se, ms;
  std::string_view zone;
};
std::variant<IsoParts, const char*> iso_parts(std::string_view s) {
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return "YYYY-MM-DDTHH:MM:SS, years up to 9999";
  }
  const auto y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2), h = digits(s, 11, 2),
             mi = digits(s, 14, 2), se = digits(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return "YYYY-MM-DDTHH:MM:SS";
  std::size_t pos = 19;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int scale = 100;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      ms += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return "a '.' with no digits after it";
  }
  return IsoParts{*y, *mo, *d, *h, *mi, *se, ms, s.substr(pos)};
}

}  // namespace

std::optional<Time> parse_iso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff...][Z|+00:00]
  const auto parts = iso_parts(s);
  const auto* p = std::get_if<IsoParts>(&parts);
  if (p == nullptr) return std::nullopt;
  const std::string_view zone = p->zone;
  if (!(zone.empty() || zone == "Z" || zone == "z" || zone == "+00:00" || zone == "-00:00")) {
    return std::nullopt;
  }
  return make_time(p->y, p->mo, p->d, p->h, p->mi, p->se, p->ms);
}

Result<Time> read_operator_time(std::string_view s) {
  const std::string quoted = "'" + std::string(s) + "'";
  const auto not_a_time = [&quoted](const std::string& why) {
    return Error::invalid_input(quoted +
                                " is not a time like 2026-01-31T18:00:00Z (UTC) or "
                                "2026-01-31T19:00:00+01:00 (with the offset from UTC): " +
                                why);
  };
  const auto parts = iso_parts(s);
  if (const auto* why = std::get_if<const char*>(&parts)) return not_a_time(*why);
  const auto& [y, mo, d, h, mi, se, ms, zone] = std::get<IsoParts>(parts);
  if (zone.empty()) {
    return Error::invalid_input(quoted + " has no zone: add Z for UTC (" + std::string(s) +
                                "Z) or your offset from UTC (" + std::string(s) + "+01:00)");
  }
  Duration offset{0};
  if (zone != "Z" && zone != "z") {
    const auto oh = digits(zone, 1, 2), om = digits(zone, 4, 2);
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':' || !oh || !om ||
        *oh > 23 || *om > 59) {
      return not_a_time("the zone is Z or +HH:MM / -HH:MM");
    }
    offset = std::chrono::hours(*oh) + std::chrono::minutes(*om);
    if (zone[0] == '-') offset = -offset;
  }
  const bool leap = se == 60;
  const auto local = make_time(y, mo, d, h, mi, leap ? 59 : se, ms);
  if (!local || se > 60) return not_a_time("no such date and time (years up to 9999)");
  Time t = *local - offset;
  if (leap) {
    // Only the last second of a UTC day can be a leap second.
    const auto day_start = std::chrono::floor<std::chrono::days>(t);
    if (t - day_start <
        std::chrono::hours(23) + std::chrono::minutes(59) + std::chrono::seconds(59)) {
      return not_a_time("second 60 exists only as a leap second, at 23:59:60 UTC");
    }
    t += std::chrono::seconds(1);
  }
  if (!within_bounds(t)) return not_a_time("past the year 9999 (years up to 9999)");
  return t;
}

std::optional<Time> parse_java_date(std::string_view s) {
  // EEE MMM dd HH:mm:ss zzz yyyy  ->  "Thu Oct 13 15:50:45 UTC 2022"
  if (s.size() != 28 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' ||
      s[23] != ' ' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const int mo = month_number(s.substr(4, 3));
  const std::string_view zone = s.substr(20, 3);
  if (mo == 0 || (zone != "UTC" && zone != "GMT")) return std::nullopt;
  const auto d = digits(s, 8, 2), h = digits(s, 11, 2), mi = digits(s, 14, 2),
             se = digits(s, 17, 2), y = digits(s, 24, 4);
  if (!d || !h || !mi || !se || !y) return std::nullopt;
  auto t = make_time(*y, mo, *d, *h, *mi, *se, 0);
  if (!t) return std::nullopt;
  // The weekday must agree with the date, or the text is not what it claims to be.
  if (kWeekdays[civil(*t).weekday] != s.substr(0, 3)) return std::nullopt;
  return t;
}

namespace {

constexpr std::array<std::string_view, 7> kLongWeekdays = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

// "08:49:37" at `pos`, then the date checked against the day name.
std::optional<Time> http_time(std::string_view s, std::size_t pos, int y, int mo,
                              std::optional<int> d, std::string_view weekday,
                              const std::array<std::string_view, 7>& names) {
  if (pos + 8 > s.size() || s[pos + 2] != ':' || s[pos + 5] != ':') return std::nullopt;
  const auto h = digits(s, pos, 2), mi = digits(s, pos + 3, 2), se = digits(s, pos + 6, 2);
  if (mo == 0 || !d || !h || !mi || !se) return std::nullopt;
  const auto t = make_time(y, mo, *d, *h, *mi, *se, 0);
  if (!t || names[civil(*t).weekday] != weekday) return std::nullopt;
  return t;
}

}  // namespace

std::optional<Time> parse_http_date(std::string_view s, Time now) {
  if (s.size() == 29 && s.substr(3, 2) == ", " && s.substr(25) == " GMT" && s[7] == ' ' &&
      s[11] == ' ' && s[16] == ' ' && s[19] != ' ') {
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    const auto y = digits(s, 12, 4);
    if (!y) return std::nullopt;
    return http_time(s, 17, *y, month_number(s.substr(8, 3)), digits(s, 5, 2), s.substr(0, 3),
                     kWeekdays);
  }
  if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {
    // asctime-date: "Sun Nov  6 08:49:37 1994" (the day as 2DIGIT or SP 1DIGIT)
    const auto y = digits(s, 20, 4);
    const auto d = s[8] == ' ' ? digits(s, 9, 1) : digits(s, 8, 2);
    if (!y) return std::nullopt;
    return http_time(s, 11, *y, month_number(s.substr(4, 3)), d, s.substr(0, 3), kWeekdays);
  }
  // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
  const std::size_t comma = s.find(", ");
  if (comma == std::string_view::npos || s.size() != comma + 24) return std::nullopt;
  const std::string_view rest = s.substr(comma + 2);
  if (rest[2] != '-' || rest[6] != '-' || rest[9] != ' ' || rest.substr(18) != " GMT") {
    return std::nullopt;
  }
  const auto yy = digits(rest, 7, 2);
  if (!yy) return std::nullopt;
  const int this_year = civil(now).y;
  int y = this_year - this_year % 100 + *yy;
  if (y > this_year + 50) y -= 100;
  return http_time(rest, 10, y, month_number(rest.substr(3, 3)), digits(rest, 0, 2),
                   s.substr(0, comma), kLongWeekdays);
}

std::optional<Time> parse_epoch_seconds(std::string_view s) {
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  if (whole.empty() || whole.size() > 15) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
  if (ec != std::errc() || ptr != whole.data() + whole.size() || seconds < 0) return std::nullopt;
  std::int64_t ms = 0;
  if (dot != std::string_view::npos) {
    const std::string_view frac = s.substr(dot + 1);
    if (frac.empty()) return std::nullopt;
    std::int64_t scale = 100;
    for (const char c : frac) {
      if (c < '0' || c > '9') return std::nullopt;
      ms += (c - '0') * scale;
      scale /= 10;
    }
  }
  if (seconds > to_epoch_ms(kLatestTime) / 1000) return std::nullopt;
  return from_epoch_ms(seconds * 1000 + ms);
}

std::optional<Time> parse_any_time(std::string_view s) {
  if (auto t = parse_iso8601(s)) return t;
  if (auto t = parse_java_date(s)) return t;
  return parse_epoch_seconds(s);
}

std::string format_iso8601(Time t) {
  const Civil c = civil(t);
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.y, c.mo, c.d,
                c.h, c.mi, c.s, c.ms);
  return buf.data();
}

std::string format_http_date(Time t) {
  const Civil c = civil(t);
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                std::string(kWeekdays[c.weekday]).c_str(), c.d,
                std::string(kMonths[static_cast<std::size_t>(c.mo - 1)]).c_str(), c.y, c.h, c.mi,
                c.s);
  return buf.data();
}

Result<Duration> read_duration(std::string_view s) {
  const std::string quoted = "'" + std::string(s) + "'";
  const auto not_a_duration = [&quoted] {
    return Error::invalid_input(
        quoted + " is not a duration (a number with a unit: 90s, 5m, 2h, 1h30m, 1d)");
  };
  const auto too_long = [&quoted] {
    return Error::invalid_input(quoted + " is longer than " + format_duration(kLongestDuration) +
                                ", the longest duration accepted");
  };
  if (s.empty()) return not_a_duration();
  std::int64_t total = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    if (s[pos] < '0' || s[pos] > '9') return not_a_duration();
    std::int64_t n = 0;
    const auto [ptr, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), n);
    if (ec == std::errc::result_out_of_range) return too_long();
    if (ec != std::errc()) return not_a_duration();
    pos = static_cast<std::size_t>(ptr - s.data());
    std::int64_t unit = 0;
    if (s.substr(pos, 2) == "ms") {
      unit = 1;
      pos += 2;
    } else if (pos < s.size()) {
      switch (s[pos]) {
        case 's': unit = 1000; break;
        case 'm': unit = 60'000; break;
        case 'h': unit = 3'600'000; break;
        case 'd': unit = 86'400'000; break;
        default: return not_a_duration();
      }
      ++pos;
    } else {
      return not_a_duration();  // a number without a unit
    }
    // Both checks before the arithmetic: n * unit and the sum stay far from overflow.
    const std::int64_t room = kLongestDuration.count() - total;
    if (n > room / unit) return too_long();
    total += n * unit;
  }
  return Duration(total);
}

std::optional<Duration> parse_duration(std::string_view s) {
  auto d = read_duration(s);
  if (!d || d->count() <= 0) return std::nullopt;
  return *d;
}

Time add_bounded(Time t, Duration d) {
  t = std::clamp(t, kEarliestTime, kLatestTime);
  // The bounds are far inside the range of Time: clamping d keeps the sum inside it too.
  const Duration span = kLatestTime - kEarliestTime;
  return std::clamp(t + std::clamp(d, -span, span), kEarliestTime, kLatestTime);
}

std::string format_duration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  constexpr std::array<std::pair<std::int64_t, std::string_view>, 5> kUnits = {
      {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}}};
  for (const auto& [size, name] : kUnits) {
    if (ms >= size) {
      out += std::to_string(ms / size);
      out += name;
      ms %= size;
    }
  }
  return out;
}

}  // namespace intermission::core
