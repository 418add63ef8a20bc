#include "adapters/aws/protocol.h"

#include <boost/json.hpp>
#include <pugixml.hpp>
#include <set>

namespace intermission::adapters::aws {

const Service& elb_service() {
  static const Service kS{"elasticloadbalancing", "ELASTIC_LOAD_BALANCING", "2012-06-01", "", ""};
  return kS;
}
const Service& elbv2_service() {
  static const Service kS{"elasticloadbalancing", "ELASTIC_LOAD_BALANCING_V2", "2015-12-01", "",
                          ""};
  return kS;
}
const Service& autoscaling_service() {
  static const Service kS{"autoscaling", "AUTO_SCALING", "2011-01-01", "", ""};
  return kS;
}
const Service& ec2_service() {
  static const Service kS{"ec2", "EC2", "2016-11-15", "", ""};
  return kS;
}
const Service& codedeploy_service() {
  static const Service kS{"codedeploy", "CODEDEPLOY", "", "CodeDeploy_20141006",
                          "application/x-amz-json-1.1"};
  return kS;
}
const Service& dynamodb_service() {
  static const Service kS{"dynamodb", "DYNAMODB", "", "DynamoDB_20120810",
                          "application/x-amz-json-1.0"};
  return kS;
}

namespace {

bool unreserved(unsigned char u) {
  return (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
         u == '-' || u == '_' || u == '.' || u == '~';
}

std::string percent_encode(std::string_view text, bool space_as_plus) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (unreserved(u)) {
      out += c;
    } else if (u == ' ' && space_as_plus) {
      out += '+';
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace

std::string uri_encode(std::string_view text) { return percent_encode(text, false); }

std::string form_encode(std::string_view text) { return percent_encode(text, true); }

std::string form_body(std::string_view action, std::string_view version, const FormParams& params) {
  std::string out = "Action=" + form_encode(action) + "&Version=" + form_encode(version);
  for (const auto& [k, v] : params) out += "&" + form_encode(k) + "=" + form_encode(v);
  return out;
}

std::string resolve_endpoint(const Service& service, const std::string& region,
                             const Getenv& getenv) {
  if (auto e = getenv("AWS_ENDPOINT_URL_" + service.env_id); e && !e->empty()) return *e;
  if (auto e = getenv("AWS_ENDPOINT_URL"); e && !e->empty()) return *e;
  const bool china = region.rfind("cn-", 0) == 0;
  return "https://" + service.endpoint_prefix + "." + region + ".amazonaws.com" +
         (china ? ".cn" : "");
}

std::optional<std::string> resolve_region(const std::string& configured, const Getenv& getenv) {
  if (!configured.empty()) return configured;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (auto r = getenv(name); r && !r->empty()) return r;
  }
  return std::nullopt;
}

AwsError parse_query_error(int http_status, std::string_view body) {
  AwsError e;
  e.http_status = http_status;
  pugi::xml_document doc;
  if (doc.load_buffer(body.data(), body.size())) {
    // <ErrorResponse><Error>...</Error><RequestId/></ErrorResponse>, or EC2-style
    // <Response><Errors><Error>...</Error></Errors><RequestID/></Response>.
    pugi::xml_node error = doc.select_node("//Error").node();
    e.code = error.child_value("Code");
    e.message = error.child_value("Message");
    e.request_id = doc.select_node("//RequestId").node().child_value();
    if (e.request_id.empty()) e.request_id = doc.select_node("//RequestID").node().child_value();
  }
  if (e.code.empty()) e.code = "HTTP" + std::to_string(http_status);
  return e;
}

AwsError parse_json_error(int http_status, std::string_view body,
                          std::string_view query_error_header, std::string_view request_id) {
  AwsError e;
  e.http_status = http_status;
  e.request_id = std::string(request_id);
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.get_object();
    if (const auto* t = o.if_contains("__type"); t != nullptr && t->is_string()) {
      std::string type(t->get_string());
      e.code = type.substr(type.rfind('#') == std::string::npos ? 0 : type.rfind('#') + 1);
    }
    for (const char* key : {"message", "Message"}) {
      if (const auto* m = o.if_contains(key); m != nullptr && m->is_string()) {
        e.message = std::string(m->get_string());
      }
    }
  }
  if (!query_error_header.empty()) {
    e.code = std::string(query_error_header.substr(0, query_error_header.find(';')));
  }
  if (e.code.empty()) e.code = "HTTP" + std::to_string(http_status);
  return e;
}

bool throttling(const AwsError& e) {
  static const std::set<std::string, std::less<>> kThrottling = {
      "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
      "TooManyRequestsException", "ProvisionedThroughputExceededException",
      "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
      "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
      "EC2ThrottledException", "DependencyThrottle"};
  return kThrottling.contains(e.code) || e.http_status == 429;
}

bool retryable(const AwsError& e) {
  static const std::set<std::string, std::less<>> kTransient = {
      "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
      "ResourceContention", "InternalFailure", "InternalError", "ServiceUnavailable"};
  if (e.http_status == 0) return true;  // connection failed or timed out
  if (throttling(e) || kTransient.contains(e.code)) return true;
  return e.http_status == 500 || e.http_status == 502 || e.http_status == 503 ||
         e.http_status == 504 || e.http_status == 509;
}

core::Error to_error(const AwsError& e, const std::string& context) {
  std::string message = context + ": " + e.code;
  if (!e.message.empty()) message += ": " + e.message;
  if (e.http_status != 0) message += " (HTTP " + std::to_string(e.http_status);
  if (!e.request_id.empty()) message += ", request id " + e.request_id;
  if (e.http_status != 0) message += ")";
  static const std::set<std::string, std::less<>> kAuth = {
      "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
      "AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException",
      "IncompleteSignature", "MissingAuthenticationToken", "InvalidSignatureException",
      "UnauthorizedOperation"};
  if (throttling(e)) return core::Error::throttled(message);
  // A failed condition means another writer got there first: re-read, never retry blindly.
  if (e.code == "ConditionalCheckFailedException") return core::Error::conflict(message);
  if (retryable(e)) return core::Error::unavailable(message);
  if (kAuth.contains(e.code) || e.http_status == 403) return core::Error::permission(message);
  if (e.code.find("NotFound") != std::string::npos ||
      e.code.find("DoesNotExist") != std::string::npos) {
    return core::Error::not_found(message);
  }
  return core::Error::invalid_input(message);
}

}  // namespace intermission::adapters::aws
