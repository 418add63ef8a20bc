#include "adapters/aws/elb_backend.h"

#include <algorithm>
#include <map>
#include <set>

namespace intermission::adapters::aws {
namespace {

bool attached_state(const std::string& state) {
  return state == "Adding" || state == "Added" || state == "InService";
}

}  // namespace

ElbClassicBackend::ElbClassicBackend(ElbSettings settings, AwsClient& elb, AwsClient& autoscaling,
                                     AwsClient& ec2, Sleeper sleeper)
    : s_(std::move(settings)),
      elb_(elb),
      autoscaling_(autoscaling),
      ec2_(ec2),
      sleep_(std::move(sleeper)) {}

std::string ElbClassicBackend::describe() const {
  return "elb-classic " + s_.load_balancer + " / auto scaling group " + s_.auto_scaling_group;
}

bool ElbClassicBackend::Health::draining() const {
  // aws-behaviour.md §1: "InService" with this description while connection draining runs.
  return description.find("deregistration currently in progress") != std::string::npos;
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

core::Result<std::vector<ElbClassicBackend::GroupInstance>> ElbClassicBackend::group_instances() {
  auto doc = autoscaling_.query("DescribeAutoScalingGroups",
                                {{"AutoScalingGroupNames.member.1", s_.auto_scaling_group}});
  if (!doc) return doc.error();
  const auto groups = (*doc)->select_nodes("//AutoScalingGroups/member");
  if (groups.empty()) {
    return core::Error::not_found("Auto Scaling group '" + s_.auto_scaling_group +
                                  "' does not exist");
  }
  std::vector<GroupInstance> out;
  for (const auto& m : groups.first().node().select_nodes("Instances/member")) {
    const pugi::xml_node i = m.node();
    out.push_back({i.child_value("InstanceId"), i.child_value("AvailabilityZone"),
                   std::string(i.child_value("LifecycleState")) == "InService" &&
                       std::string(i.child_value("HealthStatus")) == "Healthy"});
  }
  return out;
}

core::Result<ElbClassicBackend::Layout> ElbClassicBackend::layout() {
  if (layout_) return *layout_;
  Layout l;
  auto lb = elb_.query("DescribeLoadBalancers", {{"LoadBalancerNames.member.1", s_.load_balancer}});
  if (!lb) return lb.error();
  for (const auto& z : (*lb)->select_nodes("//LoadBalancerDescriptions/member/AvailabilityZones/member")) {
    l.zones.emplace_back(z.node().child_value());
  }
  auto attrs = elb_.query("DescribeLoadBalancerAttributes", {{"LoadBalancerName", s_.load_balancer}});
  if (!attrs) return attrs.error();
  l.cross_zone = std::string((*attrs)->select_node("//CrossZoneLoadBalancing/Enabled").node().child_value()) == "true";
  std::vector<std::pair<std::string, std::string>> p;
  for (std::size_t i = 0; i < s_.page_instances.size(); ++i) {
    p.emplace_back("InstanceId." + std::to_string(i + 1), s_.page_instances[i]);
  }
  auto ec2 = ec2_.query("DescribeInstances", p);
  if (!ec2 && ec2.error().code == core::ErrorCode::kNotFound) {
    return core::Error::config("a page instance in page_instances does not exist in this region (" +
                               ec2.error().message + ")");
  }
  if (!ec2) {
    return ec2.error().with_context("reading the page instances' Availability Zones "
                                    "(ec2:DescribeInstances)");
  }
  for (const auto& i : (*ec2)->select_nodes("//reservationSet/item/instancesSet/item")) {
    l.page_zones.emplace_back(i.node().child_value("instanceId"),
                              i.node().child("placement").child_value("availabilityZone"));
  }
  layout_ = l;
  return l;
}

core::Result<core::ElbObservation> ElbClassicBackend::observe_elb() {
  auto where = layout();
  if (!where) return where.error();
  auto health = instance_health({});
  if (!health) return health.error();
  auto state = group_lb_state();
  if (!state) return state.error();
  auto members = group_instances();
  if (!members) return members.error();
  const std::set<std::string> enabled(where->zones.begin(), where->zones.end());
  std::map<std::string, std::string> zone_of;
  for (const auto& [id, zone] : where->page_zones) zone_of[id] = zone;
  for (const auto& m : *members) zone_of[m.id] = m.zone;

  core::ElbObservation o;
  o.page_instances = s_.page_instances;
  o.min_app_in_service = s_.min_healthy;
  o.group_state = *state;
  o.group_attached = attached_state(*state);
  o.cross_zone = where->cross_zone;
  for (const auto& z : where->zones) o.zones.push_back({z, 0, 0, 0, 0});
  auto zone = [&](const std::string& id) -> core::ElbZone* {
    const auto it = zone_of.find(id);
    if (it == zone_of.end()) return nullptr;
    for (auto& z : o.zones) {
      if (z.name == it->second) return &z;
    }
    return nullptr;
  };
  for (const auto& id : s_.page_instances) {
    if (core::ElbZone* z = zone(id)) {
      ++z->page_configured;
    } else {
      o.page_outside.push_back(id);
    }
  }
  o.app_capacity = 0;
  std::set<std::string> group;
  for (const auto& m : *members) {
    group.insert(m.id);
    core::ElbZone* z = zone(m.id);
    if (m.healthy && z != nullptr) {
      ++o.app_capacity;
      ++z->app_instances;
    }
  }
  for (const auto& h : *health) {
    const bool page = std::find(s_.page_instances.begin(), s_.page_instances.end(), h.id) !=
                      s_.page_instances.end();
    core::ElbZone* z = zone(h.id);
    if (page) {
      if (h.draining()) {
        o.page_draining.push_back(h.id);
        continue;
      }
      o.page_registered.push_back(h.id);
      if (h.serving()) {
        o.page_in_service.push_back(h.id);
        if (z != nullptr) ++z->page_serving;
      }
    } else if (h.serving() && group.contains(h.id)) {
      ++o.app_in_service;
      if (z != nullptr) ++z->app_serving;
    }
  }
  std::string d = "group " + (state->empty() ? std::string("not attached") : *state) + ", " +
                  std::to_string(o.app_in_service) + " group instance(s) serving (need " +
                  std::to_string(core::effective_min_app(o)) + "), page " +
                  std::to_string(o.page_in_service.size()) + "/" +
                  std::to_string(o.page_instances.size()) + " serving";
  if (!o.page_draining.empty()) d += ", " + std::to_string(o.page_draining.size()) + " draining";
  d += std::string("; cross-zone ") + (o.cross_zone ? "on" : "off") + ":";
  for (const auto& z : o.zones) {
    d += " " + z.name + " page " + std::to_string(z.page_serving) + "/" +
         std::to_string(z.page_configured) + " app " + std::to_string(z.app_serving) + "/" +
         std::to_string(z.app_instances) + ";";
  }
  if (core::effective_min_app(o) < o.min_app_in_service) {
    d += " min_healthy " + std::to_string(o.min_app_in_service) + " bounded to " +
         std::to_string(core::effective_min_app(o)) + " (the group has " +
         std::to_string(o.app_capacity) + " healthy instance(s));";
  }
  for (const auto& z : core::zones_without_page(o)) {
    d += " zone " + z + " has no page instance: with cross-zone off its users would get the "
         "load balancer's 503, so maintenance cannot switch on;";
  }
  if (!o.page_outside.empty()) {
    d += " page instance(s) outside the load balancer's zones, never registered:";
    for (const auto& id : o.page_outside) d += " " + id;
    d += ";";
  }
  if (d.back() == ';') d.pop_back();
  o.detail = std::move(d);
  return o;
}

core::Result<core::Observation> ElbClassicBackend::observe() {
  auto o = observe_elb();
  if (!o) return o.error();
  return core::Observation{std::move(*o)};
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

core::Status ElbClassicBackend::wait_page() {
  const auto [deadline, outside] = wait_limit();
  std::string last;
  for (;;) {
    auto o = observe_elb();
    if (!o) return o.error();
    if (const auto missing = core::zones_without_page(*o); !missing.empty()) {
      std::string zones;
      for (const auto& z : missing) zones += (zones.empty() ? "" : ", ") + z;
      return core::Error::config(
          "load balancer " + s_.load_balancer + " has cross-zone load balancing off and no page "
          "instance in " + zones + ": the users that zone's node receives would get the load "
          "balancer's 503, so maintenance is not switched on (the group stays attached). Add a "
          "page instance in each enabled zone, or turn cross-zone load balancing on");
    }
    if (!o->page_outside.empty() && o->page_outside.size() == o->page_instances.size()) {
      return core::Error::config("no page instance is in an Availability Zone of load balancer " +
                                 s_.load_balancer + " (" + o->detail +
                                 "): maintenance is not switched on (the group stays attached)");
    }
    if (core::page_ready(*o)) return {};
    last = o->detail;
    if (std::chrono::steady_clock::now() + s_.poll_interval > deadline) break;
    sleep_(s_.poll_interval);
  }
  if (outside) return deferred("the page instance(s) to serve every zone");
  return core::Error::timeout(
      "the page instance(s) did not serve every zone within " +
      core::format_duration(s_.health_timeout) + " (" + last +
      "); the Auto Scaling group stays attached, so the application keeps serving. Check the "
      "page host's health check (HealthyThreshold x Interval decides how long this takes)");
}

core::Status ElbClassicBackend::wait_group() {
  const auto [deadline, outside] = wait_limit();
  std::string last;
  for (;;) {
    auto o = observe_elb();
    if (!o) return o.error();
    if (core::app_ready(*o)) return {};
    last = o->detail;
    if (std::chrono::steady_clock::now() + s_.poll_interval > deadline) break;
    sleep_(s_.poll_interval);
  }
  if (outside) return deferred("the group's instances to serve");
  return core::Error::timeout("the group's instances did not serve within " +
                              core::format_duration(s_.health_timeout) + " (" + last +
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
          return wait_page();
        } else if constexpr (std::is_same_v<T, core::DetachGroup>) {
          auto r = autoscaling_.query("DetachLoadBalancers", group_params);
          return r ? core::Status{} : core::Status{r.error()};
        } else if constexpr (std::is_same_v<T, core::AttachGroup>) {
          auto r = autoscaling_.query("AttachLoadBalancers", group_params);
          return r ? core::Status{} : core::Status{r.error()};
        } else if constexpr (std::is_same_v<T, core::WaitGroupInService>) {
          return wait_group();
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
