#include "adapters/aws/alb_backend.h"

#include <algorithm>
#include <map>
#include <set>

namespace intermission::adapters::aws {
namespace {

// Parameters go in the order of the operation's input shape in botocore's model (the AWS
// CLI's order), so the body is byte-identical to botocore's (protocol.h form_body).
using Params = std::vector<std::pair<std::string, std::string>>;

void add_values(Params& p, const std::string& prefix, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    p.emplace_back(prefix + ".Values.member." + std::to_string(i + 1), values[i]);
  }
}

void encode_conditions(Params& p, const std::vector<core::RuleCondition>& conditions) {
  for (std::size_t i = 0; i < conditions.size(); ++i) {
    const auto& c = conditions[i];
    const std::string base = "Conditions.member." + std::to_string(i + 1);
    p.emplace_back(base + ".Field", c.field);
    if (c.field == "host-header") add_values(p, base + ".HostHeaderConfig", c.values);
    if (c.field == "path-pattern") add_values(p, base + ".PathPatternConfig", c.values);
    if (c.field == "source-ip") add_values(p, base + ".SourceIpConfig", c.values);
    if (c.field == "http-header") {
      p.emplace_back(base + ".HttpHeaderConfig.HttpHeaderName", c.header_name);
      add_values(p, base + ".HttpHeaderConfig", c.values);
    }
  }
}

void encode_actions(Params& p, const std::vector<core::RuleAction>& actions) {
  for (std::size_t i = 0; i < actions.size(); ++i) {
    const auto& a = actions[i];
    const std::string base = "Actions.member." + std::to_string(i + 1);
    p.emplace_back(base + ".Type", a.type);
    p.emplace_back(base + ".Order", std::to_string(i + 1));
    if (a.type == "fixed-response") {
      p.emplace_back(base + ".FixedResponseConfig.MessageBody", a.body);
      p.emplace_back(base + ".FixedResponseConfig.StatusCode", a.status_code);
      p.emplace_back(base + ".FixedResponseConfig.ContentType", a.content_type);
    } else if (a.type == "forward") {
      for (std::size_t t = 0; t < a.target_groups.size(); ++t) {
        const std::string tg = base + ".ForwardConfig.TargetGroups.member." + std::to_string(t + 1);
        p.emplace_back(tg + ".TargetGroupArn", a.target_groups[t].first);
        p.emplace_back(tg + ".Weight", std::to_string(a.target_groups[t].second));
      }
    }
  }
}

// The listener's default actions, as forward actions the bypass rules can copy.
std::vector<core::RuleAction> forward_actions(const pugi::xml_node& listener) {
  std::vector<core::RuleAction> out;
  for (const auto& m : listener.select_nodes("DefaultActions/member")) {
    const pugi::xml_node a = m.node();
    if (std::string(a.child_value("Type")) != "forward") continue;
    core::RuleAction f;
    f.type = "forward";
    for (const auto& t : a.select_nodes("ForwardConfig/TargetGroups/member")) {
      const char* w = t.node().child_value("Weight");
      f.target_groups.emplace_back(t.node().child_value("TargetGroupArn"),
                                   *w != '\0' ? std::atoi(w) : 1);
    }
    if (f.target_groups.empty() && *a.child_value("TargetGroupArn") != '\0') {
      f.target_groups.emplace_back(a.child_value("TargetGroupArn"), 1);
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::size_t api_characters(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      valid = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    }
    if (!valid) {
      ++n;
      ++i;
      continue;
    }
    n += len == 4 ? 2 : 1;  // a supplementary character is two UTF-16 units
    i += len;
  }
  return n;
}

const std::string& default_alb_page() {
  static const std::string kPage =
      "<!doctype html><html lang=en data-intermission=maintenance><meta charset=utf-8>"
      "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
      "<meta name=robots content=noindex><title>Back soon</title><style>"
      "body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f4ef;"
      "color:#1d2330;font:16px/1.55 system-ui,sans-serif}main{max-width:34em;margin:24px;"
      "padding:36px;background:#fff;border-radius:16px;box-shadow:0 12px 32px rgba(0,0,0,.08)}"
      "h1{margin:0 0 10px;font-size:1.7em}p{margin:0;color:#5b6475}</style><main>"
      "<h1>We'll be right back</h1><p>We are updating the site right now. It will be back in a "
      "few minutes.</p></main>";
  return kPage;
}

std::vector<core::RuleSpec> wanted_rules(const AlbSettings& s,
                                         const std::vector<core::RuleAction>& default_forward) {
  std::vector<core::RuleSpec> out;
  const core::RuleCondition scope = s.hosts.empty()
                                        ? core::RuleCondition{"path-pattern", "", {"/*"}}
                                        : core::RuleCondition{"host-header", "", s.hosts};
  const std::size_t scope_values = scope.values.size();
  // Bypass: each rule's condition values (its scope included) stay within the API's limit.
  const std::size_t per_rule = kConditionValuesPerRule - scope_values;
  for (std::size_t i = 0, n = 1; i < s.bypass_cidrs.size(); i += per_rule, ++n) {
    std::vector<std::string> chunk(
        s.bypass_cidrs.begin() + static_cast<long>(i),
        s.bypass_cidrs.begin() + static_cast<long>(std::min(i + per_rule, s.bypass_cidrs.size())));
    out.push_back({"bypass-cidr-" + std::to_string(n), 0,
                   {scope, {"source-ip", "", chunk}}, default_forward});
  }
  if (!s.bypass_secret.empty()) {
    out.push_back({"bypass-header", 0,
                   {scope, {"http-header", "X-Intermission-Bypass", {s.bypass_secret}}},
                   default_forward});
    out.push_back({"bypass-cookie", 0,
                   {scope, {"http-header", "Cookie", {"*intermission_bypass=" + s.bypass_secret + "*"}}},
                   default_forward});
  }
  core::RuleAction maintenance;
  if (s.mode == "target-group") {
    maintenance = {"forward", "", "", "", {{s.target_group, 1}}};
  } else {
    maintenance = {"fixed-response", s.status_code, "text/html",
                   s.page.empty() ? default_alb_page() : s.page, {}};
  }
  out.push_back({"maintenance", 0, {scope}, {maintenance}});
  return out;
}

void allocate_priorities(std::vector<core::RuleSpec>& wanted,
                         const std::vector<core::OwnedRule>& owned,
                         const std::vector<int>& taken) {
  const std::set<int> others(taken.begin(), taken.end());
  auto fresh = [&] {
    std::set<int> used = others;
    for (auto& w : wanted) {
      int p = 1;
      while (used.contains(p)) ++p;
      w.priority = p;
      used.insert(p);
    }
  };
  // Keep the priorities our rules already have, if they are still ours alone and still put
  // every bypass rule above the maintenance rule.
  std::set<int> used = others;
  bool kept_all = true;
  for (auto& w : wanted) {
    w.priority = 0;
    for (const auto& o : owned) {
      if (o.role == w.role && !used.contains(o.priority)) {
        w.priority = o.priority;
        used.insert(o.priority);
        break;
      }
    }
    kept_all = kept_all && w.priority != 0;
  }
  if (!kept_all) return fresh();
  const int maintenance = wanted.back().priority;
  for (const auto& w : wanted) {
    if (w.role != "maintenance" && w.priority > maintenance) return fresh();
  }
}

AlbBackend::AlbBackend(AlbSettings settings, AwsClient& elbv2, Sleeper sleeper)
    : s_(std::move(settings)), elbv2_(elbv2), sleep_(std::move(sleeper)) {}

std::string AlbBackend::describe() const {
  return "alb " + s_.mode + " on " + std::to_string(s_.listeners.size()) + " listener(s)";
}

core::Result<core::AlbListener> AlbBackend::observe_listener(const std::string& arn,
                                                             std::string& notes) {
  auto listener = elbv2_.query("DescribeListeners", {{"ListenerArns.member.1", arn}});
  if (!listener) return listener.error();
  const pugi::xml_node l = (*listener)->select_node("//Listeners/member").node();
  if (!l) return core::Error::not_found("listener " + arn + " does not exist");
  const auto forward = forward_actions(l);
  if (forward.empty() && (!s_.bypass_cidrs.empty() || !s_.bypass_secret.empty())) {
    return core::Error::config("listener " + arn + " has no forward default action for the "
                               "bypass rules to copy");
  }
  // Every rule on the listener, then the tags of the non-default ones.
  std::vector<std::pair<std::string, int>> rules;
  std::string marker;
  for (int page = 0; page < 50; ++page) {
    Params p{{"ListenerArn", arn}};
    if (!marker.empty()) p.emplace_back("Marker", marker);
    p.emplace_back("PageSize", "100");
    auto r = elbv2_.query("DescribeRules", p);
    if (!r) return r.error();
    for (const auto& m : (*r)->select_nodes("//Rules/member")) {
      const std::string priority = m.node().child_value("Priority");
      if (priority == "default" || std::string(m.node().child_value("IsDefault")) == "true") continue;
      rules.emplace_back(m.node().child_value("RuleArn"), std::atoi(priority.c_str()));
    }
    marker = (*r)->select_node("//NextMarker").node().child_value();
    if (marker.empty()) break;
  }
  std::map<std::string, std::map<std::string, std::string>> tags;
  for (std::size_t i = 0; i < rules.size(); i += 20) {  // DescribeTags: 20 ARNs per call
    Params p;
    for (std::size_t k = i; k < std::min(rules.size(), i + 20); ++k) {
      p.emplace_back("ResourceArns.member." + std::to_string(k - i + 1), rules[k].first);
    }
    auto t = elbv2_.query("DescribeTags", p);
    if (!t) return t.error();
    for (const auto& d : (*t)->select_nodes("//TagDescriptions/member")) {
      auto& m = tags[d.node().child_value("ResourceArn")];
      for (const auto& tag : d.node().select_nodes("Tags/member")) {
        m[tag.node().child_value("Key")] = tag.node().child_value("Value");
      }
    }
  }
  core::AlbListener out;
  out.arn = arn;
  std::vector<int> taken;
  for (const auto& [rule_arn, priority] : rules) {
    const auto& t = tags[rule_arn];
    const auto env = t.find("intermission:environment");
    if (env != t.end() && env->second == s_.environment) {
      const auto role = t.find("intermission:role");
      const auto fp = t.find("intermission:fingerprint");
      out.owned.push_back({rule_arn, role == t.end() ? "" : role->second, priority,
                           fp == t.end() ? "" : fp->second});
    } else {
      taken.push_back(priority);  // another environment's or someone else's: never touched
    }
  }
  out.desired = wanted_rules(s_, forward);
  allocate_priorities(out.desired, out.owned, taken);
  int shadowing = 0;
  for (const int p : taken) {
    if (p < out.desired.back().priority) ++shadowing;
  }
  if (shadowing > 0) {
    notes += std::to_string(shadowing) + " rule(s) of others sit above the maintenance rule on " +
             arn + "; requests they match are not in maintenance. ";
  }
  return out;
}

core::Result<int> AlbBackend::healthy_targets() {
  auto r = elbv2_.query("DescribeTargetHealth", {{"TargetGroupArn", s_.target_group}});
  if (!r) return r.error();
  int n = 0;
  for (const auto& m : (*r)->select_nodes("//TargetHealthDescriptions/member")) {
    if (std::string(m.node().select_node("TargetHealth/State").node().child_value()) == "healthy") {
      ++n;
    }
  }
  return n;
}

core::Result<core::Observation> AlbBackend::observe() {
  core::AlbObservation o;
  for (const auto& arn : s_.listeners) {
    auto l = observe_listener(arn, o.detail);
    if (!l) return l.error();
    o.listeners.push_back(std::move(*l));
  }
  if (s_.mode == "target-group") {
    o.target_group = s_.target_group;
    auto n = healthy_targets();
    if (!n) return n.error();
    o.healthy_targets = *n;
  }
  return core::Observation{o};
}

core::Status AlbBackend::wait_healthy() {
  const auto own = std::chrono::steady_clock::now() + s_.health_timeout;
  auto limit = own;
  bool outside = false;
  if (s_.deadline) {
    if (const auto d = s_.deadline(); d && *d < own) {
      limit = *d;
      outside = true;
    }
  }
  for (;;) {
    auto n = healthy_targets();
    if (!n) return n.error();
    if (*n > 0) return {};
    if (std::chrono::steady_clock::now() + s_.poll_interval > limit) break;
    sleep_(s_.poll_interval);
  }
  if (outside) {
    return core::Error::timeout("stopped waiting for a healthy maintenance target before the "
                                "invocation's deadline; the next invocation or tick continues");
  }
  return core::Error::timeout("target group " + s_.target_group + " has no healthy target after " +
                              core::format_duration(s_.health_timeout) +
                              "; not switching to an empty group (the app keeps serving)");
}

core::Status AlbBackend::apply(const core::Step& step) {
  if (const auto* c = std::get_if<core::CreateRule>(&step)) {
    Params p{{"ListenerArn", c->listener}};
    encode_conditions(p, c->spec.conditions);
    p.emplace_back("Priority", std::to_string(c->spec.priority));
    encode_actions(p, c->spec.actions);
    const std::vector<std::pair<std::string, std::string>> tags = {
        {"intermission:environment", s_.environment},
        {"intermission:role", c->spec.role},
        {"intermission:fingerprint", core::fingerprint(c->spec)}};
    for (std::size_t i = 0; i < tags.size(); ++i) {
      p.emplace_back("Tags.member." + std::to_string(i + 1) + ".Key", tags[i].first);
      p.emplace_back("Tags.member." + std::to_string(i + 1) + ".Value", tags[i].second);
    }
    auto r = elbv2_.query("CreateRule", p);
    return r ? core::Status{} : core::Status{r.error()};
  }
  if (const auto* d = std::get_if<core::DeleteRule>(&step)) {
    auto r = elbv2_.query("DeleteRule", {{"RuleArn", d->rule_arn}});
    if (!r && r.error().code == core::ErrorCode::kNotFound) return {};  // already gone
    return r ? core::Status{} : core::Status{r.error()};
  }
  if (std::holds_alternative<core::WaitTargetGroupHealthy>(step)) return wait_healthy();
  return core::Error::internal("alb backend got a step it cannot apply: " + core::describe(step));
}

}  // namespace intermission::adapters::aws
