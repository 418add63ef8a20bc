#include "adapters/aws/elb_backend.h"

#include <algorithm>
#include <set>

namespace intermission::adapters::aws {
namespace {

bool attached_state(const std::string& state) {
  return state == "Adding" || state == "Added" || state == "InService";
}

}  // namespace

ElbClassicBackend::ElbClassicBackend(ElbSettings settings, AwsClient& elb, AwsClient& autoscaling,
                                     Sleeper sleeper)
    : s_(std::move(settings)), elb_(elb), autoscaling_(autoscaling), sleep_(std::move(sleeper)) {}

std::string ElbClassicBackend::describe() const {
  return "elb-classic " + s_.load_balancer + " / auto scaling group " + s_.auto_scaling_group;
}

std::vector<std::pair<std::string, std::string>> ElbClassicBackend::instance_params(
    const std::vector<std::string>& ids) const {
  std::vector<std::pair<std::string, std::string>> p{{"LoadBalancerName", s_.load_balancer}};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    p.emplace_back("Instances.member." + std::to_string(i + 1) + ".InstanceId", ids[i]);
  }
  return p;
}

core::Result<std::vector<ElbClassicBackend::Health>> ElbClassicBackend::instance_health(
    const std::vector<std::string>& ids) {
  auto doc = elb_.query("DescribeInstanceHealth", instance_params(ids));
  if (!doc) return doc.error();
  std::vector<Health> out;
  // Element order varies between samples: read by name (fixture note).
  for (const auto& m : (*doc)->select_nodes("//InstanceStates/member")) {
    out.push_back({m.node().child_value("InstanceId"), m.node().child_value("State"),
                   m.node().child_value("Description")});
  }
  return out;
}

core::Result<std::string> ElbClassicBackend::group_lb_state() {
  std::string token;
  for (int page = 0; page < 100; ++page) {
    std::vector<std::pair<std::string, std::string>> p{
        {"AutoScalingGroupName", s_.auto_scaling_group}};
    if (!token.empty()) p.emplace_back("NextToken", token);
    auto doc = autoscaling_.query("DescribeLoadBalancers", p);
    if (!doc) return doc.error();
    for (const auto& m : (*doc)->select_nodes("//LoadBalancers/member")) {
      if (s_.load_balancer == m.node().child_value("LoadBalancerName")) {
        return std::string(m.node().child_value("State"));
      }
    }
    token = (*doc)->select_node("//NextToken").node().child_value();
    if (token.empty()) break;
  }
  return std::string();
}

core::Result<std::vector<std::string>> ElbClassicBackend::group_instances() {
  auto doc = autoscaling_.query("DescribeAutoScalingGroups",
                                {{"AutoScalingGroupNames.member.1", s_.auto_scaling_group}});
  if (!doc) return doc.error();
  const auto groups = (*doc)->select_nodes("//AutoScalingGroups/member");
  if (groups.empty()) {
    return core::Error::not_found("Auto Scaling group '" + s_.auto_scaling_group +
                                  "' does not exist");
  }
  std::vector<std::string> out;
  for (const auto& m : groups.first().node().select_nodes("Instances/member")) {
    out.emplace_back(m.node().child_value("InstanceId"));
  }
  return out;
}

core::Result<int> ElbClassicBackend::group_in_service() {
  auto members = group_instances();
  if (!members) return members.error();
  auto health = instance_health({});
  if (!health) return health.error();
  const std::set<std::string> group(members->begin(), members->end());
  int n = 0;
  for (const auto& h : *health) {
    if (h.state == "InService" && group.contains(h.id)) ++n;
  }
  return n;
}

core::Result<core::Observation> ElbClassicBackend::observe() {
  auto health = instance_health({});
  if (!health) return health.error();
  auto state = group_lb_state();
  if (!state) return state.error();
  auto members = group_instances();
  if (!members) return members.error();
  const std::set<std::string> group(members->begin(), members->end());
  core::ElbObservation o;
  o.page_instances = s_.page_instances;
  o.min_app_in_service = s_.min_healthy;
  o.group_state = *state;
  o.group_attached = attached_state(*state);
  for (const auto& h : *health) {
    const bool page = std::find(s_.page_instances.begin(), s_.page_instances.end(), h.id) !=
                      s_.page_instances.end();
    if (page) {
      o.page_registered.push_back(h.id);
      if (h.state == "InService") o.page_in_service.push_back(h.id);
    } else if (h.state == "InService" && group.contains(h.id)) {
      ++o.app_in_service;
    }
  }
  o.detail = "group " + (state->empty() ? std::string("not attached") : *state) + ", " +
             std::to_string(o.app_in_service) + " group instance(s) InService, page " +
             std::to_string(o.page_in_service.size()) + "/" +
             std::to_string(o.page_registered.size()) + " registered InService";
  return core::Observation{o};
}

std::pair<std::chrono::steady_clock::time_point, bool> ElbClassicBackend::wait_limit() const {
  const auto own = std::chrono::steady_clock::now() + s_.health_timeout;
  if (s_.deadline) {
    if (const auto outside = s_.deadline(); outside && *outside < own) return {*outside, true};
  }
  return {own, false};
}

core::Error ElbClassicBackend::deferred(const std::string& what) const {
  return core::Error::timeout("stopped waiting for " + what +
                              " before the invocation's deadline; the next invocation or tick "
                              "continues from here");
}

core::Status ElbClassicBackend::wait_page(const std::vector<std::string>& ids) {
  const auto [deadline, outside] = wait_limit();
  std::string last;
  for (;;) {
    auto health = instance_health(ids);
    if (!health) return health.error();
    for (const auto& h : *health) {
      if (h.state == "InService") return {};
      last = h.id + " " + h.state + (h.description.empty() ? "" : ": " + h.description);
    }
    if (std::chrono::steady_clock::now() + s_.poll_interval > deadline) break;
    sleep_(s_.poll_interval);
  }
  if (outside) return deferred("the page instance(s) to become InService");
  return core::Error::timeout(
      "the page instance(s) did not become InService within " +
      core::format_duration(s_.health_timeout) + " (" + last +
      "); the Auto Scaling group stays attached, so the application keeps serving. Check the "
      "page host's health check (HealthyThreshold x Interval decides how long this takes)");
}

core::Status ElbClassicBackend::wait_group(int min_count) {
  const auto [deadline, outside] = wait_limit();
  int seen = 0;
  for (;;) {
    auto n = group_in_service();
    if (!n) return n.error();
    seen = *n;
    if (seen >= min_count) return {};
    if (std::chrono::steady_clock::now() + s_.poll_interval > deadline) break;
    sleep_(s_.poll_interval);
  }
  if (outside) return deferred("the group's instances to become InService");
  return core::Error::timeout("only " + std::to_string(seen) + " of the group's instances became "
                              "InService within " + core::format_duration(s_.health_timeout) +
                              " (need " + std::to_string(min_count) +
                              "); the page instance(s) stay registered, so users still see the "
                              "page rather than errors");
}

core::Status ElbClassicBackend::apply(const core::Step& step) {
  const std::vector<std::pair<std::string, std::string>> group_params{
      {"AutoScalingGroupName", s_.auto_scaling_group},
      {"LoadBalancerNames.member.1", s_.load_balancer}};
  return std::visit(
      [&](const auto& st) -> core::Status {
        using T = std::decay_t<decltype(st)>;
        if constexpr (std::is_same_v<T, core::RegisterInstances>) {
          auto r = elb_.query("RegisterInstancesWithLoadBalancer", instance_params(st.ids));
          return r ? core::Status{} : core::Status{r.error()};
        } else if constexpr (std::is_same_v<T, core::WaitPageInService>) {
          return wait_page(st.ids);
        } else if constexpr (std::is_same_v<T, core::DetachGroup>) {
          auto r = autoscaling_.query("DetachLoadBalancers", group_params);
          return r ? core::Status{} : core::Status{r.error()};
        } else if constexpr (std::is_same_v<T, core::AttachGroup>) {
          auto r = autoscaling_.query("AttachLoadBalancers", group_params);
          return r ? core::Status{} : core::Status{r.error()};
        } else if constexpr (std::is_same_v<T, core::WaitGroupInService>) {
          return wait_group(st.min_count);
        } else if constexpr (std::is_same_v<T, core::DeregisterInstances>) {
          auto r = elb_.query("DeregisterInstancesFromLoadBalancer", instance_params(st.ids));
          return r ? core::Status{} : core::Status{r.error()};
        } else {
          return core::Error::internal("elb-classic backend got a step it cannot apply: " +
                                       core::describe(step));
        }
      },
      step);
}

}  // namespace intermission::adapters::aws
