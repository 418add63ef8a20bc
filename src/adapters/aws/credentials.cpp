#include "adapters/aws/credentials.h"

#include <boost/json.hpp>

namespace intermission::adapters::aws {
namespace {

// Refresh this long before temporary credentials expire.
constexpr auto kRefreshMargin = std::chrono::minutes(5);
constexpr const char* kContainerHost = "http://169.254.170.2";
constexpr const char* kImdsDefault = "http://169.254.169.254";

std::string env_or(const Getenv& getenv, const std::string& name) {
  auto v = getenv(name);
  return v ? *v : std::string();
}

}  // namespace

core::Result<Credentials> parse_credentials_json(const std::string& body, std::string source) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) {
    return core::Error::unavailable(source + " credentials: the reply is not a JSON object");
  }
  const auto& o = v.get_object();
  auto str = [&o](const char* key) -> std::string {
    const auto* x = o.if_contains(key);
    return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
  };
  Credentials c;
  c.access_key = str("AccessKeyId");
  c.secret_key = str("SecretAccessKey");
  c.session_token = str("Token");
  c.source = std::move(source);
  if (const std::string exp = str("Expiration"); !exp.empty()) {
    c.expiration = core::parse_iso8601(exp);
    if (!c.expiration) {
      return core::Error::unavailable(c.source + " credentials: Expiration '" + exp +
                                      "' is not a UTC time");
    }
  }
  if (c.access_key.empty() || c.secret_key.empty()) {
    return core::Error::unavailable(c.source + " credentials: AccessKeyId or SecretAccessKey "
                                               "missing from the reply");
  }
  return c;
}

CredentialsProvider::CredentialsProvider(Getenv getenv, const core::Clock& clock)
    : getenv_(std::move(getenv)), clock_(clock) {}

core::Result<Credentials> CredentialsProvider::get() {
  if (cached_ && (!cached_->expiration || clock_.now() + kRefreshMargin < *cached_->expiration)) {
    return *cached_;
  }
  auto fresh = fetch();
  if (!fresh) return fresh.error();
  cached_ = *fresh;
  return fresh;
}

core::Result<Credentials> CredentialsProvider::fetch() {
  const std::string key = env_or(getenv_, "AWS_ACCESS_KEY_ID");
  const std::string secret = env_or(getenv_, "AWS_SECRET_ACCESS_KEY");
  if (!key.empty() || !secret.empty()) {
    if (key.empty() || secret.empty()) {
      return core::Error::config("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
                                 "together");
    }
    return Credentials{key, secret, env_or(getenv_, "AWS_SESSION_TOKEN"), std::nullopt,
                       "environment"};
  }
  if (!env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").empty() ||
      !env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_FULL_URI").empty()) {
    return from_container();
  }
  if (env_or(getenv_, "AWS_EC2_METADATA_DISABLED") == "true") {
    return core::Error::config("no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                               "or run with a container or instance role");
  }
  auto imds = from_instance_metadata();
  if (!imds) {
    return core::Error::config("no AWS credentials: none in the environment, no container "
                               "credentials, and instance metadata failed (" +
                               imds.error().message + ")");
  }
  return imds;
}

core::Result<Credentials> CredentialsProvider::from_container() {
  std::string url = env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const std::string relative = env_or(getenv_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (!relative.empty()) url = kContainerHost + relative;
  std::vector<std::string> headers;
  if (auto token = getenv_("AWS_CONTAINER_AUTHORIZATION_TOKEN"); token && !token->empty()) {
    headers.push_back("Authorization: " + *token);
  }
  auto r = http_.request("GET", url, headers, "");
  if (!r) return r.error().with_context("container credentials");
  if (r->status != 200) {
    return core::Error::unavailable("container credentials: HTTP " + std::to_string(r->status) +
                                    " from " + url);
  }
  return parse_credentials_json(r->body, "container");
}

core::Result<Credentials> CredentialsProvider::from_instance_metadata() {
  std::string base = env_or(getenv_, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (base.empty()) base = kImdsDefault;
  if (base.back() == '/') base.pop_back();
  // IMDSv2: a session token first (PUT), then every GET carries it.
  auto token = http_.request("PUT", base + "/latest/api/token",
                             {"X-aws-ec2-metadata-token-ttl-seconds: 21600"}, "");
  if (!token) return token.error().with_context("instance metadata token");
  if (token->status != 200) {
    return core::Error::unavailable("instance metadata token: HTTP " +
                                    std::to_string(token->status));
  }
  const std::string auth = "X-aws-ec2-metadata-token: " + token->body;
  auto role = http_.request("GET", base + "/latest/meta-data/iam/security-credentials/", {auth},
                            "");
  if (!role) return role.error().with_context("instance metadata role");
  std::string name = role->body.substr(0, role->body.find('\n'));
  if (role->status != 200 || name.empty()) {
    return core::Error::unavailable("instance metadata: no IAM role attached to this instance");
  }
  auto creds = http_.request("GET", base + "/latest/meta-data/iam/security-credentials/" + name,
                             {auth}, "");
  if (!creds) return creds.error().with_context("instance metadata credentials");
  if (creds->status != 200) {
    return core::Error::unavailable("instance metadata credentials: HTTP " +
                                    std::to_string(creds->status));
  }
  return parse_credentials_json(creds->body, "instance-metadata");
}

}  // namespace intermission::adapters::aws
