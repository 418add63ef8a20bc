#include "adapters/aws/protocol.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>

#include "testing/fakes.h"

namespace intermission::adapters::aws {
namespace {

// Splits a fixture file made of several XML documents, each after a "<!-- n. ... -->" line.
std::vector<std::string> documents(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while ((pos = text.find("<!--", pos)) != std::string::npos) {
    const std::size_t start = text.find("-->", pos) + 3;
    const std::size_t next = text.find("<!--", start);
    out.push_back(text.substr(start, next == std::string::npos ? std::string::npos : next - start));
    pos = start;
  }
  return out;
}

TEST(AwsProtocol, QueryErrorsFromTheFixtures) {
  const auto docs = documents(testing::read_fixture("aws/elb-error-responses.xml"));
  ASSERT_EQ(docs.size(), 3u);
  const AwsError a = parse_query_error(400, docs[0]);
  EXPECT_EQ(a.code, "LoadBalancerNotFound");
  EXPECT_EQ(a.request_id, "19a0bb97-49f7-11e2-90b4-6bb9ec8331bf");
  EXPECT_EQ(to_error(a, "elb").code, core::ErrorCode::kNotFound);
  const AwsError b = parse_query_error(400, docs[1]);
  EXPECT_EQ(b.code, "InvalidInstance");
  EXPECT_EQ(b.message, "Could not find EC2 instance i-foooo.");
  EXPECT_FALSE(retryable(b));
  const AwsError t = parse_query_error(400, docs[2]);
  EXPECT_EQ(t.code, "Throttling");
  EXPECT_TRUE(retryable(t));
  EXPECT_EQ(to_error(t, "elb").code, core::ErrorCode::kThrottled);
}

TEST(AwsProtocol, JsonErrorFromTheFixture) {
  const std::string body = testing::read_fixture("aws/dynamodb-error-conditional-check-failed.json");
  const AwsError e = parse_json_error(400, body, "", "RID");
  EXPECT_EQ(e.code, "ConditionalCheckFailedException");
  EXPECT_EQ(e.message, "The conditional request failed");
  EXPECT_FALSE(retryable(e)) << "a failed condition is never retried blindly";
  EXPECT_EQ(to_error(e, "dynamodb PutItem").code, core::ErrorCode::kConflict);
  EXPECT_EQ(parse_json_error(400, "{}", "AWS.SimpleQueueService.X;Sender", "").code,
            "AWS.SimpleQueueService.X");
  EXPECT_EQ(parse_json_error(502, "<html>", "", "").code, "HTTP502");
}

TEST(AwsProtocol, RetryClassification) {
  EXPECT_TRUE(retryable({400, "DependencyThrottle", "", ""}));
  EXPECT_TRUE(retryable({500, "ResourceContention", "", ""}));
  EXPECT_TRUE(retryable({503, "Whatever", "", ""}));
  EXPECT_TRUE(retryable({0, "CURLE_COULDNT_CONNECT", "", ""}));
  EXPECT_FALSE(retryable({403, "InvalidClientTokenId", "", ""}));
  const core::Error auth = to_error({403, "InvalidClientTokenId", "bad key", "r-1"}, "elb X");
  EXPECT_EQ(auth.code, core::ErrorCode::kPermission);
  EXPECT_EQ(auth.message, "elb X: InvalidClientTokenId: bad key (HTTP 403, request id r-1)");
}

// Decodes a form body ("k=v&k=v", '+' for space, %XX) into its pairs, in order.
std::vector<std::pair<std::string, std::string>> decode_form(const std::string& body) {
  auto decode = [](std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        out += ' ';
      } else if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    const std::size_t amp = std::min(body.find('&', pos), body.size());
    const std::string_view part(body.data() + pos, amp - pos);
    const std::size_t eq = part.find('=');
    out.emplace_back(decode(part.substr(0, eq)),
                     eq == std::string_view::npos ? "" : decode(part.substr(eq + 1)));
    pos = amp + 1;
  }
  return out;
}

// Every Query request in the fixture, made by botocore's serializer (values with spaces, '+',
// '/', '~', '*' and non-ASCII text among them): ours is the same, byte for byte.
TEST(AwsProtocol, FormBodyMatchesBotocore) {
  const auto all = boost::json::parse(testing::read_fixture("aws/botocore-serialized-requests.json"));
  int checked = 0;
  for (const auto& [name, request] : all.as_object()) {
    const std::string body(request.at("body").as_string());
    if (body.rfind("Action=", 0) != 0) continue;  // a JSON-protocol request
    auto pairs = decode_form(body);
    ASSERT_GE(pairs.size(), 2u) << name;
    ASSERT_EQ(pairs[1].first, "Version") << name;
    const std::string action = pairs[0].second;
    const std::string version = pairs[1].second;
    pairs.erase(pairs.begin(), pairs.begin() + 2);
    EXPECT_EQ(form_body(action, version, pairs), body) << name;
    ++checked;
  }
  EXPECT_GE(checked, 11);
  // Python's urlencode (quote_plus): space as '+', A-Za-z0-9 and -_.~ kept, the rest %XX.
  EXPECT_EQ(form_encode("a b+/c*~-_.\xc3\xa9"), "a+b%2B%2Fc%2A~-_.%C3%A9");
  // SigV4's encoding (RFC 3986) keeps %20 for a space.
  EXPECT_EQ(uri_encode("a b/c*~"), "a%20b%2Fc%2A~");
}

TEST(AwsProtocol, Endpoints) {
  std::map<std::string, std::string> env;
  const Getenv getenv = [&env](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  EXPECT_EQ(resolve_endpoint(elb_service(), "eu-west-1", getenv),
            "https://elasticloadbalancing.eu-west-1.amazonaws.com");
  EXPECT_EQ(resolve_endpoint(autoscaling_service(), "cn-north-1", getenv),
            "https://autoscaling.cn-north-1.amazonaws.com.cn");
  env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4566";
  EXPECT_EQ(resolve_endpoint(codedeploy_service(), "eu-west-1", getenv), "http://127.0.0.1:4566");
  env["AWS_ENDPOINT_URL_CODEDEPLOY"] = "http://127.0.0.1:9000";
  EXPECT_EQ(resolve_endpoint(codedeploy_service(), "eu-west-1", getenv), "http://127.0.0.1:9000");
  EXPECT_FALSE(resolve_region("", getenv).has_value());
  env["AWS_DEFAULT_REGION"] = "us-east-2";
  EXPECT_EQ(resolve_region("", getenv), "us-east-2");
  env["AWS_REGION"] = "eu-central-1";
  EXPECT_EQ(resolve_region("", getenv), "eu-central-1");
  EXPECT_EQ(resolve_region("ap-south-1", getenv), "ap-south-1");
}

}  // namespace
}  // namespace intermission::adapters::aws
