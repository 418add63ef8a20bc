#include "core/backend.h"

#include <algorithm>

namespace intermission::core {

namespace {

std::string join(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + id;
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::vector<Step> plan_elb(bool desired_on, const ElbObservation& o) {
  std::vector<Step> steps;
  if (desired_on) {
    std::vector<std::string> missing;
    for (const auto& id : o.page_instances) {
      if (!contains(o.page_registered, id)) missing.push_back(id);
    }
    if (!missing.empty()) steps.emplace_back(RegisterInstances{missing});
    if (o.page_in_service.empty()) steps.emplace_back(WaitPageInService{o.page_instances});
    if (o.group_attached) steps.emplace_back(DetachGroup{});
  } else {
    if (!o.group_attached) steps.emplace_back(AttachGroup{});
    if (o.app_in_service < o.min_app_in_service) {
      steps.emplace_back(WaitGroupInService{o.min_app_in_service});
    }
    if (!o.page_registered.empty()) steps.emplace_back(DeregisterInstances{o.page_registered});
  }
  return steps;
}

}  // namespace

bool observed_on(const Observation& observed) {
  if (const auto* sw = std::get_if<SwitchObservation>(&observed)) return sw->on;
  const auto& elb = std::get<ElbObservation>(observed);
  return !elb.group_attached && !elb.page_registered.empty();
}

std::string describe(const Step& step) {
  return std::visit(
      [](const auto& s) -> std::string {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, SetSwitch>) {
          std::string out = std::string("switch maintenance ") + (s.on ? "on" : "off");
          if (s.on && !s.reason.empty()) out += " (" + s.reason + ")";
          return out;
        } else if constexpr (std::is_same_v<T, RegisterInstances>) {
          return "register page instance(s) " + join(s.ids) + " with the load balancer";
        } else if constexpr (std::is_same_v<T, WaitPageInService>) {
          return "wait until page instance(s) " + join(s.ids) + " are InService";
        } else if constexpr (std::is_same_v<T, DetachGroup>) {
          return "detach the Auto Scaling group from the load balancer";
        } else if constexpr (std::is_same_v<T, AttachGroup>) {
          return "attach the Auto Scaling group to the load balancer";
        } else if constexpr (std::is_same_v<T, WaitGroupInService>) {
          return "wait until " + std::to_string(s.min_count) +
                 " of the group's instances are InService";
        } else {
          return "deregister page instance(s) " + join(s.ids) + " from the load balancer";
        }
      },
      step);
}

std::vector<Step> plan(bool desired_on, const Observation& observed, const PageContext& page) {
  return std::visit(
      [&](const auto& o) -> std::vector<Step> {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, SwitchObservation>) {
          if (o.on == desired_on && o.persisted) return {};
          return {SetSwitch{desired_on, desired_on ? page.reason : "", page.until}};
        } else {
          return plan_elb(desired_on, o);
        }
      },
      observed);
}

}  // namespace intermission::core
