#include "core/time.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace intermission::core {
namespace {

TEST(Time, Iso8601RoundTrip) {
  const auto t = parse_iso8601("2022-10-13T15:50:46.039Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(to_epoch_ms(*t), 1665676246039);
  EXPECT_EQ(format_iso8601(*t), "2022-10-13T15:50:46.039Z");
  EXPECT_EQ(to_epoch_ms(*parse_iso8601("2016-06-30T22:06:31Z")), 1467324391000);
  EXPECT_FALSE(parse_iso8601("2022-13-01T00:00:00Z").has_value());
  EXPECT_FALSE(parse_iso8601("2022-02-30T00:00:00Z").has_value());
  EXPECT_FALSE(parse_iso8601("2022-10-13T15:50:46+02:00").has_value());
}

TEST(Time, JavaDateAsCodeDeploySendsIt) {
  const auto t = parse_java_date("Thu Oct 13 15:50:45 UTC 2022");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_iso8601(*t), "2022-10-13T15:50:45.000Z");
  EXPECT_FALSE(parse_java_date("Fri Oct 13 15:50:45 UTC 2022").has_value()) << "wrong weekday";
  EXPECT_FALSE(parse_java_date("Thu Oct 13 15:50:45 PDT 2022").has_value()) << "zone";
  EXPECT_FALSE(parse_java_date("Thu Foo 13 15:50:45 UTC 2022").has_value());
}

TEST(Time, EpochSecondsString) {
  EXPECT_EQ(to_epoch_ms(*parse_epoch_seconds("1446744188.595")), 1446744188595);
  EXPECT_EQ(to_epoch_ms(*parse_epoch_seconds("1446744188")), 1446744188000);
  EXPECT_FALSE(parse_epoch_seconds("14467x").has_value());
  EXPECT_FALSE(parse_epoch_seconds("-5").has_value());
  EXPECT_FALSE(parse_any_time("yesterday").has_value());
}

TEST(Time, HttpDate) {
  EXPECT_EQ(format_http_date(*parse_iso8601("2022-10-13T15:50:46Z")),
            "Thu, 13 Oct 2022 15:50:46 GMT");
}

// RFC 9110 §5.6.7: recipients accept all three forms (its examples), the two-digit year of
// rfc850-date read as the latest past year with those digits when it would be more than 50
// years ahead.
TEST(Time, ParseHttpDateAllThreeForms) {
  const Time now = *parse_iso8601("2026-12-02T12:00:00Z");
  const Time expected = *parse_iso8601("1994-11-06T08:49:37Z");
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now), expected);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now), expected);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994", now), expected);
  EXPECT_EQ(parse_http_date("Tuesday, 06-Nov-29 08:49:37 GMT", now),
            *parse_iso8601("2029-11-06T08:49:37Z"))
      << "within 50 years ahead: this century";
  EXPECT_EQ(parse_http_date("Friday, 06-Nov-98 08:49:37 GMT", now),
            *parse_iso8601("1998-11-06T08:49:37Z"));
  const Time t = *parse_iso8601("2022-10-13T15:50:46Z");
  EXPECT_EQ(parse_http_date(format_http_date(t), now), t) << "reads what we write";
  for (const char* bad : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Mon, 06 Nov 1994 08:49:37 GMT",
                          "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 06 Xyz 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 GMT ", "Sunday, 06-Nov-1994 08:49:37 GMT",
                          "Sun Nov 06 08:49:37 1994x", "120"}) {
    EXPECT_FALSE(parse_http_date(bad, now).has_value()) << bad;
  }
}

TEST(Time, Durations) {
  EXPECT_EQ(parse_duration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("2d"), std::chrono::hours(48));
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  EXPECT_FALSE(parse_duration("30").has_value()) << "a unit is required";
  EXPECT_FALSE(parse_duration("0s").has_value()) << "parse_duration is for positive ones";
  EXPECT_FALSE(parse_duration("5x").has_value());
  EXPECT_FALSE(parse_duration("").has_value());
  EXPECT_FALSE(parse_duration("-5m").has_value());
  EXPECT_EQ(format_duration(std::chrono::minutes(90)), "1h30m");
  EXPECT_EQ(format_duration(Duration(1500)), "1s500ms");
}

TEST(Time, DurationsAreBoundedAndNeverOverflow) {
  EXPECT_EQ(parse_duration("36500d"), kLongestDuration);
  EXPECT_FALSE(parse_duration("36501d").has_value());
  EXPECT_FALSE(parse_duration("9999999d").has_value());
  // 2^40 days overflowed the signed multiply and came out as some other duration.
  EXPECT_FALSE(parse_duration("1099511627776d").has_value());
  EXPECT_FALSE(parse_duration("106751991167d").has_value());
  EXPECT_FALSE(parse_duration("99999999999999999999s").has_value());
  EXPECT_FALSE(parse_duration("36500d1ms").has_value()) << "the sum is bounded too";
}

TEST(Time, ReadDurationSaysWhatIsWrong) {
  EXPECT_EQ(*read_duration("0s"), Duration(0)) << "zero is a duration";
  EXPECT_EQ(*read_duration("1h30m"), std::chrono::minutes(90));
  auto far = read_duration("9999999d");
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.error().message.find("longer than 36500d"), std::string::npos)
      << far.error().message;
  auto bad = read_duration("30");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not a duration"), std::string::npos);
}

TEST(Time, TimesBeyondYear9999AreRefused) {
  EXPECT_EQ(format_iso8601(kLatestTime), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(parse_iso8601("9999-12-31T23:59:59.999Z"), kLatestTime);
  // An operator `until` of 10^12 seconds is the year 33658.
  EXPECT_FALSE(parse_epoch_seconds("1000000000000").has_value());
  EXPECT_FALSE(parse_epoch_seconds("253402300800").has_value()) << "10000-01-01";
  EXPECT_EQ(parse_epoch_seconds("253402300799.999"), kLatestTime);
  EXPECT_TRUE(within_bounds(kLatestTime));
  EXPECT_FALSE(within_bounds(kLatestTime + Duration(1)));
  EXPECT_FALSE(within_bounds(kEarliestTime - Duration(1)));
  EXPECT_EQ(add_bounded(kLatestTime - Duration(5), std::chrono::hours(1)), kLatestTime);
}

// What an operator types: a zone is required (a time without one was taken as UTC, shifting an
// operator's local time by their offset without a word), an offset is applied, and second 60
// exists only as a leap second, at 23:59:60 UTC, read as the next second.
TEST(Time, OperatorTimesNeedAZoneAndAReal60thSecond) {
  const auto at = [](std::string_view text) { return read_operator_time(text); };
  EXPECT_EQ(at("2026-01-31T18:00:00Z").value(), *parse_iso8601("2026-01-31T18:00:00Z"));
  EXPECT_EQ(at("2026-01-31T18:00:00.250z").value(), *parse_iso8601("2026-01-31T18:00:00.250Z"));
  EXPECT_EQ(at("2026-01-31T19:00:00+01:00").value(), *parse_iso8601("2026-01-31T18:00:00Z"));
  EXPECT_EQ(at("2026-01-31T12:30:00-05:30").value(), *parse_iso8601("2026-01-31T18:00:00Z"));
  EXPECT_EQ(at("2026-02-01T00:30:00+06:30").value(), *parse_iso8601("2026-01-31T18:00:00Z"));
  EXPECT_EQ(at("2026-01-31T18:00:00-00:00").value(), *parse_iso8601("2026-01-31T18:00:00Z"));
  const auto local = at("2026-01-31T18:00:00");
  ASSERT_FALSE(local.ok());
  EXPECT_NE(local.error().message.find("no zone"), std::string::npos) << local.error().message;
  for (const char* bad :
       {"2026-01-31T18:00:00+0100", "2026-01-31T18:00:00+24:00", "2026-01-31T18:00:00+01:60",
        "2026-01-31T18:00:00 UTC", "2026-01-31 18:00:00Z", "2026-02-30T18:00:00Z", "tomorrow",
        "10000-01-01T00:00:00Z", "9999-12-31T23:59:60Z"}) {
    EXPECT_FALSE(at(bad).ok()) << bad;
  }
  EXPECT_NE(at("10000-01-01T00:00:00Z").error().message.find("years up to 9999"),
            std::string::npos);
  // 12:00:60 is no time at all (it became 12:01:00); 23:59:60 UTC is a leap second.
  const auto sixty = at("2026-06-01T12:00:60Z");
  ASSERT_FALSE(sixty.ok());
  EXPECT_NE(sixty.error().message.find("23:59:60"), std::string::npos) << sixty.error().message;
  EXPECT_EQ(at("2016-12-31T23:59:60Z").value(), *parse_iso8601("2017-01-01T00:00:00Z"));
  EXPECT_EQ(at("2017-01-01T00:59:60+01:00").value(), *parse_iso8601("2017-01-01T00:00:00Z"));
  EXPECT_FALSE(at("2016-12-31T23:59:60+01:00").ok()) << "22:59:60 UTC";
  EXPECT_EQ(at("9999-12-31T23:59:59.999Z").value(), kLatestTime);
}

// The writer saturates at the bounds and the reader accepts every time inside them: a stored
// time can always be read back.
TEST(Time, EveryTimeTheWriterProducesTheReaderAccepts) {
  std::mt19937_64 random(20261202);
  const std::int64_t lo = to_epoch_ms(kEarliestTime);
  const std::int64_t hi = to_epoch_ms(kLatestTime);
  std::uniform_int_distribution<std::int64_t> inside(lo, hi);
  std::uniform_int_distribution<std::int64_t> anywhere(lo * 4, hi * 4);
  std::vector<std::int64_t> samples = {lo, hi, 0, -1, 1, hi - 1, lo + 1, 951782400000};
  for (int i = 0; i < 20000; ++i) samples.push_back(inside(random));
  for (const std::int64_t ms : samples) {
    const Time t = from_epoch_ms(ms);
    const std::string text = format_iso8601(t);
    ASSERT_EQ(parse_iso8601(text), t) << ms << " -> " << text;
  }
  for (int i = 0; i < 20000; ++i) {
    const Time t = from_epoch_ms(anywhere(random));
    const std::string text = format_iso8601(t);
    const auto back = parse_iso8601(text);
    ASSERT_TRUE(back.has_value()) << to_epoch_ms(t) << " -> " << text;
    EXPECT_EQ(*back, within_bounds(t) ? t : (t < kEarliestTime ? kEarliestTime : kLatestTime));
    ASSERT_FALSE(format_http_date(t).empty());
  }
  for (const Time t : {Time::min(), Time::max()}) {
    EXPECT_TRUE(parse_iso8601(format_iso8601(t)).has_value());
  }
}

}  // namespace
}  // namespace intermission::core
