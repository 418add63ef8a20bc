// Owns what every AWS call shares: the credentials provider and one client per service and
// region (each keeps its connection alive). Not thread-safe; one per thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "adapters/aws/aws_client.h"
#include "adapters/aws/credentials.h"

namespace intermission::adapters::aws {

class AwsContext {
 public:
  // `configured_region` may be empty: then AWS_REGION, AWS_DEFAULT_REGION, else the `region`
  // of the AWS profile in use (~/.aws/config). Everything referenced must outlive the context.
  AwsContext(std::string configured_region, Getenv getenv, const core::Clock& clock,
             core::Logger& log, RetryPolicy retry = {}, Sleeper sleeper = real_sleeper());

  // The client for `service` in `region` (empty = the default region).
  core::Result<AwsClient*> client(const Service& service, const std::string& region = "");

  [[nodiscard]] const Sleeper& sleeper() const { return sleeper_; }

  // A hard stop for waits (the Lambda invocation's deadline, less a margin); nullopt = none.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> d) { deadline_ = d; }
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const {
    return deadline_;
  }
  [[nodiscard]] bool deadline_passed() const {
    return deadline_ && std::chrono::steady_clock::now() >= *deadline_;
  }

 private:
  std::string configured_region_;
  Getenv getenv_;
  std::string profile_region_;  // read once, at construction
  core::Logger& log_;
  RetryPolicy retry_;
  Sleeper sleeper_;
  CredentialsProvider credentials_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<AwsClient>> clients_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
};

}  // namespace intermission::adapters::aws
