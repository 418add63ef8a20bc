#include "core/sns.h"

#include <boost/json.hpp>

namespace intermission::core {
namespace {

namespace json = boost::json;

std::optional<std::string> str(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

// The first of several spellings that is present.
std::string either(const json::object& o, std::string_view a, std::string_view b) {
  if (auto v = str(o, a)) return *v;
  return str(o, b).value_or("");
}

bool is_hex(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

}  // namespace

Result<SnsMessage> parse_sns_message(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return Error::invalid_input("not a JSON object");
  const json::object* o = &v.get_object();
  if (const auto* records = o->if_contains("Records"); records != nullptr) {
    const auto* a = records->if_array();
    const json::object* first = a != nullptr && !a->empty() ? (*a)[0].if_object() : nullptr;
    const auto* sns = first != nullptr ? first->if_contains("Sns") : nullptr;
    if (sns == nullptr || !sns->is_object()) return Error::invalid_input("no Records[0].Sns");
    o = &sns->get_object();
  }
  SnsMessage m;
  m.type = str(*o, "Type").value_or("");
  m.message_id = str(*o, "MessageId").value_or("");
  m.topic_arn = str(*o, "TopicArn").value_or("");
  if (const auto* s = o->if_contains("Subject"); s != nullptr && s->is_string()) {
    m.subject = std::string(s->get_string());  // JSON null = absent, as SNS signs it
  }
  m.message = str(*o, "Message").value_or("");
  m.timestamp = str(*o, "Timestamp").value_or("");
  m.signature_version = str(*o, "SignatureVersion").value_or("");
  m.signature = str(*o, "Signature").value_or("");
  m.signing_cert_url = either(*o, "SigningCertURL", "SigningCertUrl");
  m.subscribe_url = either(*o, "SubscribeURL", "SubscribeUrl");
  m.unsubscribe_url = either(*o, "UnsubscribeURL", "UnsubscribeUrl");
  m.token = str(*o, "Token").value_or("");
  if (m.type.empty() || m.message_id.empty() || m.topic_arn.empty()) {
    return Error::invalid_input("not an SNS message (Type, MessageId or TopicArn missing)");
  }
  return m;
}

Result<std::string> sns_string_to_sign(const SnsMessage& m) {
  std::string out;
  auto add = [&out](std::string_view key, const std::string& value) {
    out.append(key).append("\n").append(value).append("\n");
  };
  if (m.type == "Notification") {
    add("Message", m.message);
    add("MessageId", m.message_id);
    if (m.subject) add("Subject", *m.subject);
    add("Timestamp", m.timestamp);
    add("TopicArn", m.topic_arn);
    add("Type", m.type);
    return out;
  }
  if (m.type == "SubscriptionConfirmation" || m.type == "UnsubscribeConfirmation") {
    add("Message", m.message);
    add("MessageId", m.message_id);
    add("SubscribeURL", m.subscribe_url);
    add("Timestamp", m.timestamp);
    add("Token", m.token);
    add("TopicArn", m.topic_arn);
    add("Type", m.type);
    return out;
  }
  return Error::invalid_input("unknown SNS message type '" + m.type + "'");
}

std::optional<std::string> sns_topic_region(std::string_view arn) {
  // arn:<partition>:sns:<region>:<account>:<name>
  if (arn.substr(0, 4) != "arn:") return std::nullopt;
  const std::size_t p1 = arn.find(':', 4);
  if (p1 == std::string_view::npos || arn.substr(p1 + 1, 4) != "sns:") return std::nullopt;
  const std::size_t r0 = p1 + 5;
  const std::size_t r1 = arn.find(':', r0);
  if (r1 == std::string_view::npos || r1 == r0) return std::nullopt;
  const std::string_view region = arn.substr(r0, r1 - r0);
  for (const char c : region) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return std::nullopt;
  }
  return std::string(region);
}

Status check_signing_cert_url(std::string_view url, std::string_view topic_arn) {
  const auto region = sns_topic_region(topic_arn);
  if (!region) return Error::invalid_input("TopicArn '" + std::string(topic_arn) + "' is not an SNS topic ARN");
  const std::string suffix = region->rfind("cn-", 0) == 0 ? ".amazonaws.com.cn" : ".amazonaws.com";
  const std::string prefix = "https://sns." + *region + suffix + "/";
  if (url.substr(0, prefix.size()) != prefix) {
    return Error::invalid_input("SigningCertURL '" + std::string(url) +
                                "' is not https://sns." + *region + suffix +
                                "/... (the topic's region)");
  }
  const std::string_view path = url.substr(prefix.size());
  constexpr std::string_view kName = "SimpleNotificationService-";
  constexpr std::string_view kExt = ".pem";
  if (path.size() <= kName.size() + kExt.size() || path.substr(0, kName.size()) != kName ||
      path.substr(path.size() - kExt.size()) != kExt ||
      !is_hex(path.substr(kName.size(), path.size() - kName.size() - kExt.size()))) {
    return Error::invalid_input("SigningCertURL path '/" + std::string(path) +
                                "' is not /SimpleNotificationService-<hex>.pem");
  }
  return {};
}

std::string signing_cert_file_name(std::string_view url) {
  return std::string(url.substr(url.rfind('/') + 1));
}

}  // namespace intermission::core
