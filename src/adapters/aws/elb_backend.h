// The Classic ELB + Auto Scaling backend: maintenance = the group detached from the load
// balancer and the page instance(s) registered. The core plans make-before-break (register,
// wait InService, detach; attach, wait InService, deregister); this class observes and
// executes one step at a time (aws-facts.md §6).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "adapters/aws/aws_client.h"
#include "core/backend.h"

namespace intermission::adapters::aws {

struct ElbSettings {
  std::string load_balancer;
  std::string auto_scaling_group;
  std::vector<std::string> page_instances;
  int min_healthy = 1;  // group instances InService before the page is deregistered
  std::chrono::milliseconds health_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds poll_interval{std::chrono::seconds(5)};
  // A hard stop for waits from outside (the Lambda invocation's deadline); may be empty.
  std::function<std::optional<std::chrono::steady_clock::time_point>()> deadline;
};

class ElbClassicBackend final : public core::Backend {
 public:
  // The clients and `sleeper` must outlive the backend.
  ElbClassicBackend(ElbSettings settings, AwsClient& elb, AwsClient& autoscaling, Sleeper sleeper);

  core::Result<core::Observation> observe() override;
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  struct Health {
    std::string id;
    std::string state;  // InService, OutOfService, Unknown
    std::string description;
  };
  core::Result<std::vector<Health>> instance_health(const std::vector<std::string>& ids);
  core::Result<std::vector<std::string>> group_instances();
  core::Result<std::string> group_lb_state();
  core::Status wait_page(const std::vector<std::string>& ids);
  core::Status wait_group(int min_count);
  core::Result<int> group_in_service();
  // When a wait must stop: health_timeout from now, or the outside deadline if sooner.
  std::pair<std::chrono::steady_clock::time_point, bool> wait_limit() const;
  core::Error deferred(const std::string& what) const;
  std::vector<std::pair<std::string, std::string>> instance_params(
      const std::vector<std::string>& ids) const;

  ElbSettings s_;
  AwsClient& elb_;
  AwsClient& autoscaling_;
  Sleeper sleep_;
};

}  // namespace intermission::adapters::aws
