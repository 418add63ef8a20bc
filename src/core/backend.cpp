#include "core/backend.h"

#include <algorithm>
#include <cstdint>

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
    // A draining page instance is not registered as far as the next request goes: it is
    // registered again and waited for like a new one.
    // A zone that cannot get a page instance makes the switch impossible: nothing is
    // registered, and the wait step says why at once.
    std::vector<std::string> missing;
    for (const auto& id : o.page_instances) {
      if (!contains(o.page_registered, id) && !contains(o.page_outside, id) &&
          zones_without_page(o).empty()) {
        missing.push_back(id);
      }
    }
    if (!missing.empty()) steps.emplace_back(RegisterInstances{missing});
    if (!missing.empty() || !page_ready(o)) steps.emplace_back(WaitPageInService{o.page_instances});
    if (o.group_attached) steps.emplace_back(DetachGroup{});
  } else {
    if (!o.group_attached) steps.emplace_back(AttachGroup{});
    if (!o.group_attached || !app_ready(o)) {
      steps.emplace_back(WaitGroupInService{effective_min_app(o)});
    }
    if (!o.page_registered.empty()) steps.emplace_back(DeregisterInstances{o.page_registered});
  }
  return steps;
}

bool is_maintenance(const std::string& role) { return role == kMaintenanceRole; }

// Rules are created warm-up first, then bypass, then maintenance (a bypass client never sees
// the page); deleted the other way round.
std::size_t phase(const std::string& role) {
  if (role == kWarmUpRole) return 0;
  return is_maintenance(role) ? 2 : 1;
}

std::vector<Step> plan_alb(bool desired_on, const AlbObservation& o) {
  std::vector<Step> creates[3];
  std::vector<Step> deletes[3];
  for (const auto& l : o.listeners) {
    std::vector<bool> kept(l.owned.size(), false);
    if (desired_on) {
      for (const RuleSpec& d : l.desired) {
        const std::string fp = fingerprint(d);
        bool found = false;
        for (std::size_t i = 0; i < l.owned.size() && !found; ++i) {
          const OwnedRule& r = l.owned[i];
          if (!kept[i] && r.role == d.role && r.fingerprint == fp && r.priority == d.priority) {
            kept[i] = found = true;
          }
        }
        if (!found) creates[phase(d.role)].emplace_back(CreateRule{l.arn, d});
      }
    }
    for (std::size_t i = 0; i < l.owned.size(); ++i) {
      const OwnedRule& r = l.owned[i];
      if (!kept[i]) {
        deletes[phase(r.role)].emplace_back(DeleteRule{l.arn, r.arn, r.role, r.priority});
      }
    }
  }
  std::vector<Step> steps = std::move(creates[0]);
  // Never switch to a maintenance target group without a healthy target: its targets are
  // checked only once a rule uses it (the warm-up rule above), so wait for them here.
  if (desired_on && o.healthy_targets == 0) {
    steps.emplace_back(WaitTargetGroupHealthy{o.target_group});
  }
  for (auto* part : {&creates[1], &creates[2], &deletes[2], &deletes[1], &deletes[0]}) {
    steps.insert(steps.end(), part->begin(), part->end());
  }
  return steps;
}

std::vector<Step> plan_kube(bool desired_on, const KubeObservation& o) {
  std::vector<Step> steps;
  if (desired_on) {
    if (o.switched && o.current) return steps;
    // Make before break: the object is pointed at the page only once enough page pods are
    // ready; the wait also refuses when it never can be (the blocker), before any write.
    if (o.page_ready < o.min_ready || !o.blocker.empty()) {
      steps.emplace_back(WaitKubePageReady{o.page_service, o.min_ready});
    }
    steps.emplace_back(KubePointAtPage{o.object});
  } else {
    if (o.switched) {
      if (o.app_ready >= 0 && o.app_ready < o.min_ready) {
        steps.emplace_back(WaitKubeAppReady{o.object, o.min_ready});
      }
      steps.emplace_back(KubeRestore{o.object});
    } else if (o.stale_annotation) {
      steps.emplace_back(KubeRestore{o.object});
    }
  }
  return steps;
}

}  // namespace

int effective_min_app(const ElbObservation& o) {
  int n = o.min_app_in_service;
  if (o.app_capacity >= 0) n = std::min(n, o.app_capacity);
  return std::max(n, 1);
}

bool page_ready(const ElbObservation& o) {
  if (o.cross_zone || o.zones.empty()) return !o.page_in_service.empty();
  return std::all_of(o.zones.begin(), o.zones.end(),
                     [](const ElbZone& z) { return z.page_serving > 0; });
}

bool app_ready(const ElbObservation& o) {
  if (o.app_in_service < effective_min_app(o)) return false;
  if (o.cross_zone) return true;
  return std::all_of(o.zones.begin(), o.zones.end(),
                     [](const ElbZone& z) { return z.app_instances == 0 || z.app_serving > 0; });
}

std::vector<std::string> zones_without_page(const ElbObservation& o) {
  std::vector<std::string> out;
  if (o.cross_zone) return out;
  for (const auto& z : o.zones) {
    if (z.page_configured == 0) out.push_back(z.name);
  }
  return out;
}

std::string fingerprint(const RuleSpec& spec) {
  // FNV-1a 64 over a canonical text form.
  std::string text;
  for (const auto& c : spec.conditions) {
    text += "C|" + c.field + "|" + c.header_name;
    for (const auto& v : c.values) text += "|" + v;
    text += "\n";
  }
  for (const auto& a : spec.actions) {
    text += "A|" + a.type + "|" + a.status_code + "|" + a.content_type + "|" + a.body;
    for (const auto& [arn, weight] : a.target_groups) text += "|" + arn + "=" + std::to_string(weight);
    for (const auto& [key, value] : a.config) {
      if (key != "ClientSecret") text += "|" + key + "=" + value;
    }
    text += "\n";
  }
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[h & 15];
    h >>= 4;
  }
  return out;
}

bool observed_on(const Observation& observed) {
  if (const auto* sw = std::get_if<SwitchObservation>(&observed)) return sw->on;
  if (const auto* kube = std::get_if<KubeObservation>(&observed)) return kube->switched;
  if (const auto* alb = std::get_if<AlbObservation>(&observed)) {
    for (const auto& l : alb->listeners) {
      for (const auto& r : l.owned) {
        if (is_maintenance(r.role)) return true;
      }
    }
    return false;
  }
  const auto& elb = std::get<ElbObservation>(observed);
  return !elb.group_attached && !elb.page_registered.empty();
}

const std::string& observed_detail(const Observation& observed) {
  return std::visit([](const auto& o) -> const std::string& { return o.detail; }, observed);
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
          return "wait until page instance(s) " + join(s.ids) + " serve every zone";
        } else if constexpr (std::is_same_v<T, DetachGroup>) {
          return "detach the Auto Scaling group from the load balancer";
        } else if constexpr (std::is_same_v<T, AttachGroup>) {
          return "attach the Auto Scaling group to the load balancer";
        } else if constexpr (std::is_same_v<T, WaitGroupInService>) {
          return "wait until " + std::to_string(s.min_count) +
                 " of the group's instances are InService";
        } else if constexpr (std::is_same_v<T, DeregisterInstances>) {
          return "deregister page instance(s) " + join(s.ids) + " from the load balancer";
        } else if constexpr (std::is_same_v<T, CreateRule>) {
          std::string what = s.spec.role == "maintenance" ? "the maintenance rule" : "the " + s.spec.role + " rule";
          std::string action = s.spec.actions.empty() ? "" : s.spec.actions.front().type;
          if (action == "fixed-response") action += " " + s.spec.actions.front().status_code;
          return "create " + what + " at priority " + std::to_string(s.spec.priority) + " (" +
                 action + ") on listener " + s.listener;
        } else if constexpr (std::is_same_v<T, DeleteRule>) {
          return "delete the " + s.role + " rule at priority " + std::to_string(s.priority) +
                 " (" + s.rule_arn + ")";
        } else if constexpr (std::is_same_v<T, WaitTargetGroupHealthy>) {
          return "wait until target group " + s.target_group + " has a healthy target";
        } else if constexpr (std::is_same_v<T, WaitKubePageReady>) {
          return "wait until " + std::to_string(s.min_ready) + " pods of the page Service " +
                 s.page_service + " are ready";
        } else if constexpr (std::is_same_v<T, KubePointAtPage>) {
          return "point " + s.object + " at the page (original kept in an annotation)";
        } else if constexpr (std::is_same_v<T, WaitKubeAppReady>) {
          return "wait until " + std::to_string(s.min_ready) + " application pods behind " +
                 s.object + " are ready";
        } else {
          return "restore " + s.object + " exactly as it was";
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
        } else if constexpr (std::is_same_v<T, ElbObservation>) {
          return plan_elb(desired_on, o);
        } else if constexpr (std::is_same_v<T, AlbObservation>) {
          return plan_alb(desired_on, o);
        } else {
          return plan_kube(desired_on, o);
        }
      },
      observed);
}

}  // namespace intermission::core
