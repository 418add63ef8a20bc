#include "core/sns.h"

#include <gtest/gtest.h>

#include "testing/fakes.h"

namespace intermission::core {
namespace {

TEST(Sns, ParsesTheHttpFixturesAndBuildsTheirStringToSign) {
  std::string http = testing::read_fixture("aws/sns-http-notification.http");
  auto m = parse_sns_message(http.substr(http.find("\n{") + 1));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->type, "Notification");
  EXPECT_EQ(m->subject, "My First Message");
  EXPECT_EQ(*sns_string_to_sign(*m),
            "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
            "Subject\nMy First Message\nTimestamp\n2012-05-02T00:54:06.655Z\n"
            "TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n");
  http = testing::read_fixture("aws/sns-http-subscription-confirmation.http");
  auto c = parse_sns_message(http.substr(http.find("\n{") + 1));
  ASSERT_TRUE(c.ok());
  const std::string s = *sns_string_to_sign(*c);
  EXPECT_EQ(s.rfind("Message\nYou have chosen to subscribe", 0), 0u);
  EXPECT_NE(s.find("\nSubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"),
            std::string::npos);
  EXPECT_NE(s.find("\nToken\n2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a"),
            std::string::npos);
  EXPECT_EQ(s.find("Subject"), std::string::npos);
}

TEST(Sns, LambdaSpellingAndNullSubject) {
  auto m = parse_sns_message(testing::read_fixture("aws/lambda-sns-codedeploy-created-2016.json"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->signing_cert_url,
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-b95095beb82e8f6a046b3aafc7f4149a.pem");
  auto n = parse_sns_message(R"({"Type":"Notification","MessageId":"m","TopicArn":"t","Subject":null,"Message":"x"})");
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->subject.has_value()) << "a null Subject is not signed";
  EXPECT_FALSE(parse_sns_message("[]").ok());
  EXPECT_FALSE(parse_sns_message(R"({"Type":"Notification"})").ok());
}

TEST(Sns, SigningCertUrlIsPinnedToTheTopicsRegion) {
  const std::string topic = "arn:aws:sns:us-west-2:123456789012:MyTopic";
  EXPECT_TRUE(check_signing_cert_url(
                  "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
                  topic)
                  .ok());
  for (const char* bad : {
           "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
           "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",  // other region
           "https://sns.s3-us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
           "https://sns.us-west-2.amazonaws.com.evil.com/SimpleNotificationService-abc.pem",
           "https://s3.amazonaws.com/sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
           "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-abc.pem",
           "https://evil@sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
           "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
           "https://sns.us-west-2.amazonaws.com/../SimpleNotificationService-abc.pem",
           "https://sns.us-west-2.amazonaws.com/x/SimpleNotificationService-abc.pem",
           "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-xyz.pem",
           "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-.pem",
           "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem#f",
           ""}) {
    EXPECT_FALSE(check_signing_cert_url(bad, topic).ok()) << bad;
  }
  EXPECT_TRUE(check_signing_cert_url(
                  "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
                  "arn:aws-cn:sns:cn-north-1:1:t")
                  .ok());
  EXPECT_FALSE(check_signing_cert_url("https://sns.x.amazonaws.com/SimpleNotificationService-a.pem",
                                      "not-an-arn")
                   .ok());
}

TEST(Sns, RegionsMustLookLikeRegions) {
  for (const char* good : {"us-west-2", "cn-north-1", "us-gov-west-1", "ap-southeast-5", "il-central-1"}) {
    EXPECT_TRUE(is_region_name(good)) << good;
  }
  for (const char* bad : {"s3", "s3-us-west-2", "us-west", "west-2", "us--2", "US-west-2", "us-west-2a",
                          "us-west-2.evil", "", "u-west-2"}) {
    EXPECT_FALSE(is_region_name(bad)) << bad;
  }
  // Without an allow-list, a "region" like s3 would pin sns.s3.amazonaws.com: an S3 bucket.
  EXPECT_FALSE(check_signing_cert_url("https://sns.s3.amazonaws.com/SimpleNotificationService-abc.pem",
                                      "arn:aws:sns:s3:123456789012:t")
                   .ok());
  EXPECT_FALSE(sns_topic_region("arn:aws:sns:s3-us-west-2:1:t").has_value());
}

TEST(Sns, SigningCertificateNamesFollowTheSdks) {
  EXPECT_EQ(sns_signing_cert_names("us-west-2"),
            (std::vector<std::string>{"sns.amazonaws.com", "sns-signing.us-west-2.amazonaws.com"}));
  EXPECT_EQ(sns_signing_cert_names("cn-northwest-1"),
            std::vector<std::string>{"sns-cn-northwest-1.amazonaws.com.cn"});
  EXPECT_EQ(sns_signing_cert_names("us-gov-east-1"),
            std::vector<std::string>{"sns-us-gov-west-1.amazonaws.com"});
}

TEST(Sns, SubscribeUrlIsTheTopicsEndpointInChinaToo) {
  EXPECT_TRUE(check_subscribe_url("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=1",
                                  "arn:aws:sns:us-west-2:1:t")
                  .ok());
  EXPECT_TRUE(check_subscribe_url("https://sns.cn-north-1.amazonaws.com.cn/?Action=ConfirmSubscription&Token=1",
                                  "arn:aws-cn:sns:cn-north-1:1:t")
                  .ok());
  for (const char* bad : {"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=1",
                          "https://sns.us-west-2.amazonaws.com.evil/?Action=ConfirmSubscription&T=1",
                          "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=1",
                          "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&Token=1"}) {
    EXPECT_FALSE(check_subscribe_url(bad, "arn:aws:sns:us-west-2:1:t").ok()) << bad;
  }
}

TEST(Sns, TimestampWindow) {
  SnsMessage m;
  const Time now = *parse_iso8601("2026-12-02T12:00:00Z");
  m.timestamp = "2026-12-02T11:10:00.000Z";
  EXPECT_TRUE(check_sns_timestamp(m, now).ok());
  m.timestamp = "2026-12-02T12:04:00.000Z";
  EXPECT_TRUE(check_sns_timestamp(m, now).ok()) << "a little clock skew";
  m.timestamp = "2026-12-02T12:06:00.000Z";
  EXPECT_FALSE(check_sns_timestamp(m, now).ok()) << "the future";
  m.timestamp = "2026-12-02T10:50:00.000Z";
  EXPECT_FALSE(check_sns_timestamp(m, now).ok()) << "older than an hour";
  m.timestamp = "soon";
  EXPECT_FALSE(check_sns_timestamp(m, now).ok());
}

TEST(Sns, OneMessagePerBodyAndEachRecordOnItsOwn) {
  const std::string rec = R"({"Sns":{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"x"}})";
  EXPECT_TRUE(parse_sns_message("{\"Records\":[" + rec + "]}").ok());
  EXPECT_FALSE(parse_sns_message("{\"Records\":[" + rec + "," + rec + "]}").ok())
      << "a verified record must not carry others along";
  auto all = parse_sns_messages("{\"Records\":[" + rec + "," + rec + "]}");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  EXPECT_TRUE((*all)[1].lambda);
  EXPECT_FALSE(parse_sns_messages("{\"Records\":[" + rec + R"(,{"operator":{}}]})").ok());
  EXPECT_FALSE(parse_sns_messages(R"({"Records":[]})").ok());
}

}  // namespace
}  // namespace intermission::core
