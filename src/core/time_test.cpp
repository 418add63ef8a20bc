#include "core/time.h"

#include <gtest/gtest.h>

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

TEST(Time, Durations) {
  EXPECT_EQ(parse_duration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("2d"), std::chrono::hours(48));
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  EXPECT_FALSE(parse_duration("30").has_value()) << "a unit is required";
  EXPECT_FALSE(parse_duration("0s").has_value());
  EXPECT_FALSE(parse_duration("5x").has_value());
  EXPECT_FALSE(parse_duration("").has_value());
  EXPECT_FALSE(parse_duration("-5m").has_value());
  EXPECT_EQ(format_duration(std::chrono::minutes(90)), "1h30m");
  EXPECT_EQ(format_duration(Duration(1500)), "1s500ms");
}

}  // namespace
}  // namespace intermission::core
