// SNS messages as the HTTP endpoint and Lambda receive them: parsing, the exact string SNS
// signs, and the pinned SigningCertURL check that must pass before any certificate is fetched
// (aws-facts.md §3). Pure; the cryptography is in adapters/sns.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

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
};

// Reads an SNS message: an HTTP body (SigningCertURL) or a Lambda event's Records[0].Sns
// (SigningCertUrl). kInvalidInput when it is not one.
Result<SnsMessage> parse_sns_message(std::string_view body);

// "Key\nValue\n" for the signed keys of the message's type, in SNS's order.
Result<std::string> sns_string_to_sign(const SnsMessage& m);

// The region of an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), if it is one.
std::optional<std::string> sns_topic_region(std::string_view topic_arn);

// The certificate URL must be exactly https://sns.<region of the topic>.amazonaws.com
// (.com.cn in China) /SimpleNotificationService-<hex>.pem: no other host (not even
// sns.s3-<region>.amazonaws.com, which the AWS SDKs' regex accepts), no port, user, query or
// fragment. The looser checks of some SDKs let anyone forge "SNS" messages.
Status check_signing_cert_url(std::string_view url, std::string_view topic_arn);

// "SimpleNotificationService-<hex>.pem" of a URL that passed the check.
std::string signing_cert_file_name(std::string_view url);

}  // namespace intermission::core
