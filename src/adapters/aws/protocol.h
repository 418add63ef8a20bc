// AWS wire formats as pure functions: Query-protocol form encoding, XML and JSON error
// replies, endpoint resolution and the retry classification. No I/O (aws-facts.md §5-8).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace intermission::adapters::aws {

// One AWS service as the SDKs name it.
struct Service {
  std::string endpoint_prefix;  // "elasticloadbalancing": host prefix and SigV4 signing name
  std::string env_id;           // "ELASTIC_LOAD_BALANCING": AWS_ENDPOINT_URL_<env_id>
  std::string api_version;      // "2012-06-01" (Query protocol)
  std::string json_target;      // "CodeDeploy_20141006" (JSON protocol), empty for Query
  std::string json_content_type;
};

const Service& elb_service();
const Service& elbv2_service();
const Service& autoscaling_service();
const Service& ec2_service();  // EC2's Query dialect: lists are Name.N, not Name.member.N
const Service& codedeploy_service();
const Service& dynamodb_service();

// Percent-encoding as SigV4 wants it (RFC 3986): A-Z a-z 0-9 - _ . ~ stay, a space is %20.
std::string uri_encode(std::string_view text);

// Form encoding as botocore sends it (Python's urlencode, quote_plus): A-Z a-z 0-9 - _ . ~
// stay, a space is '+', every other byte %XX. AWS takes any correct encoding, but emulators
// re-encode the form this way to check the signature (aws-behaviour.md §10).
std::string form_encode(std::string_view text);

// "Action=X&Version=Y&k=v..." in the order given (Action and Version first), byte-identical
// to botocore's serialization when `params` come in the input shape's member order, as the
// AWS CLI builds them (tests/query_serialization_test.py checks every call we make).
using FormParams = std::vector<std::pair<std::string, std::string>>;
std::string form_body(std::string_view action, std::string_view version, const FormParams& params);

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// The endpoint URL for `service` in `region`: AWS_ENDPOINT_URL_<ENV_ID>, else
// AWS_ENDPOINT_URL, else https://<prefix>.<region>.amazonaws.com (.com.cn in China).
std::string resolve_endpoint(const Service& service, const std::string& region,
                             const Getenv& getenv);

// The region: `configured` if set, else AWS_REGION, else AWS_DEFAULT_REGION.
std::optional<std::string> resolve_region(const std::string& configured, const Getenv& getenv);

// An AWS error reply, before it becomes a core::Error.
struct AwsError {
  int http_status = 0;  // 0 = no HTTP response (connection failed)
  std::string code;     // "Throttling", "LoadBalancerNotFound", ... or a curl error name
  std::string message;
  std::string request_id;
};

// Reads the error of a Query-protocol reply (<ErrorResponse><Error><Code>...).
AwsError parse_query_error(int http_status, std::string_view body);
// Reads the error of a JSON-protocol reply ({"__type": "...#Code", "message": ...}), with the
// x-amzn-query-error header if present.
AwsError parse_json_error(int http_status, std::string_view body,
                          std::string_view query_error_header, std::string_view request_id);

// Throttling and transient errors worth retrying with backoff (botocore standard mode, plus
// ELB DependencyThrottle and Auto Scaling ResourceContention, which it leaves out).
bool retryable(const AwsError& e);
bool throttling(const AwsError& e);

// Our error for an AWS one, with `context` ("elasticloadbalancing RegisterInstances...").
core::Error to_error(const AwsError& e, const std::string& context);

}  // namespace intermission::adapters::aws
