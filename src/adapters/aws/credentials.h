// AWS credentials, found in the order the AWS CLI and SDKs use (aws-behaviour.md §13;
// docs/backends.md "Credentials"): the environment (AWS_ACCESS_KEY_ID...), web identity
// (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN -> STS AssumeRoleWithWebIdentity), the shared
// config and credentials files (profiles; static keys, role_arn with source_profile or
// web_identity_token_file, credential_process), container credentials (ECS, EKS Pod Identity),
// then EC2 instance metadata (IMDSv2). Temporary credentials are refreshed five minutes before
// they expire; when a refresh fails, cached credentials that are still valid are used (with a
// warning), expired ones never.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/aws/http_client.h"
#include "adapters/aws/protocol.h"
#include "adapters/aws/shared_config.h"
#include "core/log.h"
#include "core/result.h"
#include "core/time.h"

namespace intermission::adapters::aws {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::optional<core::Time> expiration;  // nullopt = long-lived
  // Where they came from: "environment", "web-identity", "profile dev", "container", ...
  std::string source;
};

// Parses the JSON the container and instance metadata endpoints return
// ({"AccessKeyId","SecretAccessKey","Token","Expiration"}). Pure.
core::Result<Credentials> parse_credentials_json(const std::string& body, std::string source);

// Parses what a credential_process prints: {"Version": 1, "AccessKeyId", "SecretAccessKey",
// "SessionToken" (optional), "Expiration" (optional, ISO 8601)}. `where` names the setting
// ("credential_process at /home/me/.aws/config:7") in every error. Pure.
core::Result<Credentials> parse_process_output(std::string_view output, const std::string& where,
                                               std::string source);

// Reads the credentials of an STS AssumeRole or AssumeRoleWithWebIdentity reply
// (<ActionResult><Credentials><AccessKeyId/><SecretAccessKey/><SessionToken/><Expiration/>).
// Pure.
core::Result<Credentials> parse_sts_credentials(std::string_view xml, const std::string& action,
                                                std::string source);

// The STS service as the SDKs name it (Query protocol, 2011-06-15; AWS_ENDPOINT_URL_STS).
const Service& sts_service();

class CredentialsProvider {
 public:
  // `region` is where STS is called (empty: us-east-1). `getenv`, `clock` and `log` (may be
  // null) must outlive the provider.
  CredentialsProvider(Getenv getenv, const core::Clock& clock, core::Logger* log = nullptr,
                      std::string region = "");

  // Current credentials, fetching or refreshing them if needed. Not thread-safe.
  core::Result<Credentials> get();

  // How long a credential_process may run before it is killed (60 s unless set).
  void process_timeout(std::chrono::milliseconds t) { process_timeout_ = t; }

 private:
  core::Result<Credentials> fetch();
  // nullopt: this source is not configured, try the next one.
  core::Result<std::optional<Credentials>> from_profile();
  core::Result<Credentials> resolve_profile(const SharedFiles& files, const std::string& name,
                                            int depth);
  core::Result<Credentials> assume_role(const std::string& role_arn,
                                        const std::string& session_name,
                                        const FormParams& extra_params, const Credentials& source,
                                        const std::string& where);
  core::Result<Credentials> assume_role_with_web_identity(const std::string& role_arn,
                                                          const std::string& token_file,
                                                          const std::string& session_name,
                                                          const std::string& where);
  core::Result<Credentials> from_process(const std::string& command, const std::string& where,
                                         const std::string& profile);
  core::Result<std::optional<Credentials>> from_environment() const;
  // A role profile's credential_source: Environment, EcsContainer or Ec2InstanceMetadata.
  core::Result<Credentials> from_credential_source(const std::string& source,
                                                   const std::string& where);
  core::Result<Credentials> from_container();
  core::Result<Credentials> from_instance_metadata();
  std::string session_name(const std::string& configured) const;

  Getenv getenv_;
  const core::Clock& clock_;
  core::Logger* log_;
  std::string region_;
  std::chrono::milliseconds process_timeout_{60000};
  std::optional<Credentials> cached_;
  std::optional<core::Time> retry_after_;  // no new refresh attempt before (after a failure)
  HttpClient http_{HttpTimeouts{std::chrono::milliseconds(1000), std::chrono::milliseconds(3000)}};
  HttpClient sts_http_{
      HttpTimeouts{std::chrono::milliseconds(3000), std::chrono::milliseconds(10000)}};
};

}  // namespace intermission::adapters::aws
