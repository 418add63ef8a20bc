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

namespace {

Result<SnsMessage> read_message(const json::object& o) {
  SnsMessage m;
  m.type = str(o, "Type").value_or("");
  m.message_id = str(o, "MessageId").value_or("");
  m.topic_arn = str(o, "TopicArn").value_or("");
  if (const auto* s = o.if_contains("Subject"); s != nullptr && s->is_string()) {
    m.subject = std::string(s->get_string());  // JSON null = absent, as SNS signs it
  }
  m.message = str(o, "Message").value_or("");
  m.timestamp = str(o, "Timestamp").value_or("");
  m.signature_version = str(o, "SignatureVersion").value_or("");
  m.signature = str(o, "Signature").value_or("");
  m.signing_cert_url = either(o, "SigningCertURL", "SigningCertUrl");
  m.subscribe_url = either(o, "SubscribeURL", "SubscribeUrl");
  m.unsubscribe_url = either(o, "UnsubscribeURL", "UnsubscribeUrl");
  m.token = str(o, "Token").value_or("");
  if (m.type.empty() || m.message_id.empty() || m.topic_arn.empty()) {
    return Error::invalid_input("not an SNS message (Type, MessageId or TopicArn missing)");
  }
  return m;
}

}  // namespace

Result<std::vector<SnsMessage>> parse_sns_messages(std::string_view body) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return Error::invalid_input("not a JSON object");
  const json::object& o = v.get_object();
  std::vector<SnsMessage> out;
  if (const auto* records = o.if_contains("Records"); records != nullptr) {
    const auto* a = records->if_array();
    if (a == nullptr || a->empty()) return Error::invalid_input("Records is not a non-empty array");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const json::object* record = (*a)[i].if_object();
      const auto* sns = record != nullptr ? record->if_contains("Sns") : nullptr;
      if (sns == nullptr || !sns->is_object()) {
        return Error::invalid_input("Records[" + std::to_string(i) + "] holds no Sns object");
      }
      auto m = read_message(sns->get_object());
      if (!m) return m.error().with_context("Records[" + std::to_string(i) + "]");
      m->lambda = true;
      out.push_back(std::move(*m));
    }
    return out;
  }
  auto m = read_message(o);
  if (!m) return m.error();
  out.push_back(std::move(*m));
  return out;
}

Result<SnsMessage> parse_sns_message(std::string_view body) {
  auto all = parse_sns_messages(body);
  if (!all) return all.error();
  if (all->size() != 1) {
    return Error::invalid_input("a body must hold one SNS message, not " +
                                std::to_string(all->size()));
  }
  return std::move(all->front());
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

bool is_region_name(std::string_view region) {
  // [a-z]{2}(-[a-z]+)+-[0-9]+
  auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (region.size() < 6 || region.size() > 32 || !lower(region[0]) || !lower(region[1]) ||
      region[2] != '-') {
    return false;
  }
  std::size_t words = 0;
  std::size_t i = 3;
  for (;;) {
    const std::size_t start = i;
    while (i < region.size() && lower(region[i])) ++i;
    if (i == start) break;
    ++words;
    if (i >= region.size() || region[i] != '-') return false;
    ++i;
  }
  if (words == 0 || i >= region.size()) return false;
  for (; i < region.size(); ++i) {
    if (!digit(region[i])) return false;
  }
  return true;
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
  if (!is_region_name(region)) return std::nullopt;
  return std::string(region);
}

std::string sns_dns_suffix(std::string_view region) {
  return region.rfind("cn-", 0) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

std::vector<std::string> sns_signing_cert_names(std::string_view region) {
  const std::string r(region);
  if (r.rfind("cn-", 0) == 0) return {"sns-" + r + ".amazonaws.com.cn"};
  if (r.rfind("us-gov-", 0) == 0) return {"sns-us-gov-west-1.amazonaws.com"};
  // Most regions sign with sns.amazonaws.com; the opt-in ones (ap-east-1, me-south-1, ...,
  // and whatever opens next) with sns-signing.<region>.amazonaws.com. Both are names only AWS
  // can obtain a certificate for, so either is accepted in any commercial region.
  return {"sns.amazonaws.com", "sns-signing." + r + ".amazonaws.com"};
}

Status check_signing_cert_url(std::string_view url, std::string_view topic_arn) {
  const auto region = sns_topic_region(topic_arn);
  if (!region) return Error::invalid_input("TopicArn '" + std::string(topic_arn) + "' is not an SNS topic ARN");
  const std::string suffix = "." + sns_dns_suffix(*region);
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

Status check_subscribe_url(std::string_view url, std::string_view topic_arn) {
  const auto region = sns_topic_region(topic_arn);
  if (!region) return Error::invalid_input("TopicArn '" + std::string(topic_arn) + "' is not an SNS topic ARN");
  const std::string prefix =
      "https://sns." + *region + "." + sns_dns_suffix(*region) + "/?Action=ConfirmSubscription&";
  if (url.substr(0, prefix.size()) != prefix || url.find('#') != std::string_view::npos) {
    return Error::invalid_input("SubscribeURL is not the topic's SNS endpoint (" + prefix + "...)");
  }
  return {};
}

Status check_sns_timestamp(const SnsMessage& m, Time now, Duration max_age, Duration max_skew) {
  const auto at = parse_iso8601(m.timestamp);
  if (!at) return Error::invalid_input("Timestamp '" + m.timestamp + "' is not a time");
  if (*at > now + max_skew) {
    return Error::invalid_input("Timestamp " + m.timestamp + " is in the future");
  }
  if (*at < now - max_age - max_skew) {
    return Error::invalid_input("Timestamp " + m.timestamp +
                                " is too old (more than an hour: a replay?)");
  }
  return {};
}

}  // namespace intermission::core
