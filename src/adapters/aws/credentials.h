// AWS credentials, found as the SDKs find them: the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then ECS container credentials
// (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI), then EC2 instance metadata (IMDSv2).
// Temporary credentials are refreshed five minutes before they expire.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "adapters/aws/http_client.h"
#include "adapters/aws/protocol.h"
#include "core/result.h"
#include "core/time.h"

namespace intermission::adapters::aws {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::optional<core::Time> expiration;  // nullopt = long-lived
  std::string source;                    // "environment", "container", "instance-metadata"
};

// Parses the JSON the container and instance metadata endpoints return
// ({"AccessKeyId","SecretAccessKey","Token","Expiration"}). Pure.
core::Result<Credentials> parse_credentials_json(const std::string& body, std::string source);

class CredentialsProvider {
 public:
  // `getenv` and `clock` must outlive the provider.
  CredentialsProvider(Getenv getenv, const core::Clock& clock);

  // Current credentials, fetching or refreshing them if needed. Not thread-safe.
  core::Result<Credentials> get();

 private:
  core::Result<Credentials> fetch();
  core::Result<Credentials> from_container();
  core::Result<Credentials> from_instance_metadata();

  Getenv getenv_;
  const core::Clock& clock_;
  std::optional<Credentials> cached_;
  HttpClient http_{HttpTimeouts{std::chrono::milliseconds(1000), std::chrono::milliseconds(3000)}};
};

}  // namespace intermission::adapters::aws
