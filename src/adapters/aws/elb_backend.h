// The Classic ELB + Auto Scaling backend: maintenance = the group detached from the load
// balancer and the page instance(s) registered. The core plans make-before-break (register,
// wait until the page serves every zone, detach; attach, wait until the group serves,
// deregister); this class observes and executes one step at a time (aws-facts.md §6). It
// reads AWS as it really behaves (aws-behaviour.md §1-4): a draining instance is reported
// InService but serves nobody new, group links are asynchronous, and with cross-zone load
// balancing off every enabled zone needs its own serving instance.
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
  ElbClassicBackend(ElbSettings settings, AwsClient& elb, AwsClient& autoscaling, AwsClient& ec2,
                    Sleeper sleeper);

  core::Result<core::Observation> observe() override;
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  struct Health {
    std::string id;
    std::string state;  // InService, OutOfService, Unknown
    std::string description;
    [[nodiscard]] bool draining() const;
    [[nodiscard]] bool serving() const { return state == "InService" && !draining(); }
  };
  struct GroupInstance {
    std::string id;
    std::string zone;
    bool healthy = false;  // Auto Scaling's view: LifecycleState InService, HealthStatus Healthy
  };
  // What does not change during one convergence: the enabled zones, cross-zone load
  // balancing, the page instances' zones. Read once per backend (one backend per convergence).
  struct Layout {
    std::vector<std::string> zones;
    bool cross_zone = false;
    std::vector<std::pair<std::string, std::string>> page_zones;  // id, zone
  };
  core::Result<std::vector<Health>> instance_health(const std::vector<std::string>& ids);
  core::Result<std::vector<GroupInstance>> group_instances();
  core::Result<std::string> group_lb_state();
  core::Result<Layout> layout();
  core::Result<core::ElbObservation> observe_elb();
  core::Status wait_page();
  core::Status wait_group();
  // When a wait must stop: health_timeout from now, or the outside deadline if sooner.
  std::pair<std::chrono::steady_clock::time_point, bool> wait_limit() const;
  core::Error deferred(const std::string& what) const;
  std::vector<std::pair<std::string, std::string>> instance_params(
      const std::vector<std::string>& ids) const;

  ElbSettings s_;
  AwsClient& elb_;
  AwsClient& autoscaling_;
  AwsClient& ec2_;
  Sleeper sleep_;
  std::optional<Layout> layout_;
};

}  // namespace intermission::adapters::aws
