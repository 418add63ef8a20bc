// SNS messages as the HTTP endpoint and Lambda receive them: parsing, the exact string SNS
// signs, and the pinned SigningCertURL check that must pass before any certificate is fetched
// (aws-facts.md §3). Pure; the cryptography is in adapters/sns.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace intermission::core {

struct SnsMessage {
  std::string type;  // Notification | SubscriptionConfirmation | UnsubscribeConfirmation
  std::string message_id;
  std::string topic_arn;
  std::optional<std::string> subject;  // signed only when present
  std::string message;
  std::string timestamp;
  std::string signature_version;
  std::string signature;
  std::string signing_cert_url;
  std::string subscribe_url;
  std::string unsubscribe_url;
  std::string token;
  bool lambda = false;  // read from a Lambda event's record (not signed; where it came from)
};

// Reads the one SNS message of a body: an HTTP delivery (SigningCertURL) or a Lambda event
// with exactly one record (Records[0].Sns, SigningCertUrl). kInvalidInput when it is not one,
// or when a Lambda event holds more than one record: whoever verifies a body must act on
// nothing but the message it verified (a verified record beside unsigned ones is refused).
Result<SnsMessage> parse_sns_message(std::string_view body);

// Every SNS message of a body: the one of an HTTP delivery, or each record of a Lambda event
// (each to be verified on its own). kInvalidInput when a record holds no SNS message.
Result<std::vector<SnsMessage>> parse_sns_messages(std::string_view body);

// "Key\nValue\n" for the signed keys of the message's type, in SNS's order.
Result<std::string> sns_string_to_sign(const SnsMessage& m);

// Whether `region` has the shape of an AWS region name: two letters, one or more words, a
// number ("us-west-2", "cn-north-1", "us-gov-west-1"). "s3", "s3-us-west-2" are not: their
// sns.<region>.amazonaws.com host is an S3 bucket, which anyone can fill.
bool is_region_name(std::string_view region);

// The region of an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), if it is one and the
// region has the shape of a region name.
std::optional<std::string> sns_topic_region(std::string_view topic_arn);

// The DNS suffix of a region's partition: "amazonaws.com.cn" for cn-*, else "amazonaws.com".
std::string sns_dns_suffix(std::string_view region);

// The names an SNS signing certificate for `region` may be issued to (its SAN dNSName, or its
// CN when it has no SAN), as the AWS SDK for Java v2 expects them (SnsHostProvider):
// sns.amazonaws.com in most regions, sns-signing.<region>.amazonaws.com in opt-in regions,
// sns-<region>.amazonaws.com.cn in China, sns-us-gov-west-1.amazonaws.com in GovCloud.
std::vector<std::string> sns_signing_cert_names(std::string_view region);

// The certificate URL must be exactly https://sns.<region of the topic>.amazonaws.com
// (.com.cn in China) /SimpleNotificationService-<hex>.pem: no other host (not even
// sns.s3-<region>.amazonaws.com, which the AWS SDKs' regex accepts), no port, user, query or
// fragment. The looser checks of some SDKs let anyone forge "SNS" messages.
Status check_signing_cert_url(std::string_view url, std::string_view topic_arn);

// "SimpleNotificationService-<hex>.pem" of a URL that passed the check.
std::string signing_cert_file_name(std::string_view url);

// A SubscribeURL we may visit: https://sns.<region of the topic>.<suffix>/?Action=
// ConfirmSubscription&... on the topic's own regional endpoint (.com.cn in China).
Status check_subscribe_url(std::string_view url, std::string_view topic_arn);

// How old an SNS message may be when it arrives (SNS retries an HTTP delivery for at most an
// hour), and how far its Timestamp may be ahead of our clock.
inline constexpr Duration kSnsMaxAge = std::chrono::hours(1);
inline constexpr Duration kSnsMaxSkew = std::chrono::minutes(5);

// Ok when the message's Timestamp lies in [now - max_age - max_skew, now + max_skew]:
// an older message is a replay (or a delivery SNS has given up on), a future one is forged
// or from a broken clock.
Status check_sns_timestamp(const SnsMessage& m, Time now, Duration max_age = kSnsMaxAge,
                           Duration max_skew = kSnsMaxSkew);

}  // namespace intermission::core
