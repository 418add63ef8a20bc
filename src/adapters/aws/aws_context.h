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
  AwsContext(const AwsContext&) = delete;  // its clients read the deadlines through `this`
  AwsContext& operator=(const AwsContext&) = delete;

  // The client for `service` in `region` (empty = the default region).
  core::Result<AwsClient*> client(const Service& service, const std::string& region = "");

  [[nodiscard]] const Sleeper& sleeper() const { return sleeper_; }

  // A hard stop for every AWS call, retry and wait (the Lambda invocation's deadline, less a
  // margin); nullopt = none. `cleanup`, later, bounds the calls that give the switching lease
  // back (CallKind::kCleanup), so they still fit once the work ran out of time; nullopt = as
  // `d`.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> d,
                    std::optional<std::chrono::steady_clock::time_point> cleanup = std::nullopt) {
    deadline_ = d;
    cleanup_deadline_ = cleanup ? cleanup : d;
  }
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const {
    return deadline_;
  }
  // Whether the deadline has passed, or is within `slack`: calls and waits stop early rather
  // than start what would not end before it (a backoff sleep, a poll interval).
  [[nodiscard]] bool deadline_passed(
      std::chrono::milliseconds slack = std::chrono::milliseconds(0)) const {
    return deadline_ && std::chrono::steady_clock::now() + slack >= *deadline_;
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
  std::optional<std::chrono::steady_clock::time_point> cleanup_deadline_;
};

}  // namespace intermission::adapters::aws
