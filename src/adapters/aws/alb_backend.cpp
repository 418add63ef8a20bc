#include "adapters/aws/alb_backend.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
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

// The element of an action's settings beyond its type (nullptr: none but the fixed response).
const char* config_element(const std::string& type) {
  if (type == "forward") return "ForwardConfig";
  if (type == "redirect") return "RedirectConfig";
  if (type == "authenticate-oidc") return "AuthenticateOidcConfig";
  if (type == "authenticate-cognito") return "AuthenticateCognitoConfig";
  return nullptr;
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
    if (const char* element = config_element(a.type)) {
      for (const auto& [key, value] : a.config) {
        p.emplace_back(base + "." + element + "." + key, value);
      }
    }
  }
}

// The members of a ForwardConfig, RedirectConfig or Authenticate*Config element, named as
// the Query API takes them: scalars by name, lists as Name.member.N, maps as
// Name.entry.N.key/value, structures as Name.Member (TargetGroupStickinessConfig.Enabled).
// The target groups of a ForwardConfig are RuleAction::target_groups, not these.
void flatten_config(const pugi::xml_node& config, const std::string& prefix,
                    std::vector<std::pair<std::string, std::string>>& out) {
  for (const pugi::xml_node& c : config.children()) {
    if (c.type() != pugi::node_element) continue;
    const std::string name = prefix + c.name();
    if (name == "ClientSecret" || name == "UseExistingClientSecret" || name == "TargetGroups") {
      continue;
    }
    if (c.child("entry")) {
      int n = 0;
      for (const pugi::xml_node& e : c.children("entry")) {
        const std::string at = name + ".entry." + std::to_string(++n);
        out.emplace_back(at + ".key", e.child_value("key"));
        out.emplace_back(at + ".value", e.child_value("value"));
      }
    } else if (c.child("member")) {
      int n = 0;
      for (const pugi::xml_node& m : c.children("member")) {
        out.emplace_back(name + ".member." + std::to_string(++n), m.child_value());
      }
    } else if (c.first_child().type() == pugi::node_element) {
      flatten_config(c, name + ".", out);
    } else {
      out.emplace_back(name, c.child_value());
    }
  }
}

std::vector<std::pair<std::string, std::string>> flatten_config(const pugi::xml_node& config) {
  std::vector<std::pair<std::string, std::string>> out;
  flatten_config(config, "", out);
  return out;
}

// How many `*` and `?` a value holds.
std::size_t wildcards(const std::string& v) {
  return static_cast<std::size_t>(
      std::count_if(v.begin(), v.end(), [](char c) { return c == '*' || c == '?'; }));
}

// The listener's default actions, whole and in order, as the bypass rules copy them (an
// authenticate-oidc or authenticate-cognito action and its config included, aws-behaviour.md
// §9; a forward's stickiness; an HTTP listener's redirect to HTTPS). Sets `problem` when they
// cannot be copied faithfully.
std::vector<core::RuleAction> default_actions(const pugi::xml_node& listener,
                                              const std::string& oidc_client_secret,
                                              std::string& problem) {
  std::vector<std::pair<int, pugi::xml_node>> ordered;
  for (const auto& m : listener.select_nodes("DefaultActions/member")) {
    const char* order = m.node().child_value("Order");
    ordered.emplace_back(*order != '\0' ? std::atoi(order) : 1, m.node());
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<core::RuleAction> out;
  for (const auto& [order, a] : ordered) {
    core::RuleAction f;
    f.type = a.child_value("Type");
    if (f.type == "forward") {
      for (const auto& t : a.select_nodes("ForwardConfig/TargetGroups/member")) {
        const char* w = t.node().child_value("Weight");
        f.target_groups.emplace_back(t.node().child_value("TargetGroupArn"),
                                     *w != '\0' ? std::atoi(w) : 1);
      }
      if (f.target_groups.empty() && *a.child_value("TargetGroupArn") != '\0') {
        f.target_groups.emplace_back(a.child_value("TargetGroupArn"), 1);
      }
      f.config = flatten_config(a.child("ForwardConfig"));  // stickiness
    } else if (f.type == "fixed-response") {
      const pugi::xml_node c = a.child("FixedResponseConfig");
      f.status_code = c.child_value("StatusCode");
      f.content_type = c.child_value("ContentType");
      f.body = c.child_value("MessageBody");
    } else if (f.type == "redirect" || f.type == "authenticate-cognito") {
      f.config = flatten_config(a.child(config_element(f.type)));
    } else if (f.type == "authenticate-oidc") {
      f.config = flatten_config(a.child("AuthenticateOidcConfig"));
      if (oidc_client_secret.empty()) {
        problem =
            "its default action authenticates with OIDC, and ELBv2 never returns the "
            "client secret a copy of it needs: set oidc_client_secret_env for this "
            "environment, or remove bypass_cidrs/bypass_secret (bypass rules that skipped "
            "authentication would let anyone past the login)";
      }
      f.config.emplace_back("ClientSecret", oidc_client_secret);
    } else {
      problem = "its default action is '" + f.type + "', which bypass rules cannot copy";
    }
    out.push_back(std::move(f));
  }
  if (out.empty()) problem = "it has no default action for the bypass rules to copy";
  return out;
}

}  // namespace

std::size_t api_characters(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
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

std::string random_token() {
  std::random_device device;
  std::uniform_int_distribution<int> digit(0, 15);
  static const char* kHex = "0123456789abcdef";
  std::string out(32, '0');
  for (char& c : out) c = kHex[digit(device)];
  return out;
}

std::string rule_problem(const core::RuleSpec& r) {
  std::size_t values = 0;
  std::size_t wild = 0;
  for (const auto& c : r.conditions) {
    values += c.values.size();
    if (c.values.size() > kConditionValuesPerCondition) {
      return "the " + r.role + " rule's " + c.field + " condition has " +
             std::to_string(c.values.size()) + " values; an ALB condition takes at most " +
             std::to_string(kConditionValuesPerCondition);
    }
    for (const auto& v : c.values) {
      if (c.field != "source-ip") wild += wildcards(v);
      if (c.field == "http-header" && api_characters(v) > kHeaderValueLimit) {
        return "the " + r.role + " rule's " + c.header_name + " value has " +
               std::to_string(api_characters(v)) + " characters; an ALB takes at most " +
               std::to_string(kHeaderValueLimit);
      }
    }
  }
  if (values > kConditionValuesPerRule) {
    return "the " + r.role + " rule has " + std::to_string(values) +
           " condition values; an ALB rule takes at most " +
           std::to_string(kConditionValuesPerRule);
  }
  if (wild > kWildcardsPerRule) {
    return "the " + r.role + " rule has " + std::to_string(wild) +
           " wildcards; an ALB rule takes at most " + std::to_string(kWildcardsPerRule);
  }
  for (const auto& a : r.actions) {
    if (a.type == "fixed-response" && api_characters(a.body) > kFixedResponseLimit) {
      return "the page has " + std::to_string(api_characters(a.body)) +
             " characters; an ALB fixed response takes at most " +
             std::to_string(kFixedResponseLimit);
    }
  }
  return "";
}

std::vector<core::RuleSpec> wanted_rules(const AlbSettings& s,
                                         const std::vector<core::RuleAction>& default_forward,
                                         const std::string& warm_up_secret, bool fallback) {
  std::vector<core::RuleSpec> out;
  if (s.mode == "target-group" && !warm_up_secret.empty()) {
    out.push_back({core::kWarmUpRole,
                   0,
                   {{"http-header", kWarmUpHeader, {warm_up_secret}}},
                   {{"forward", "", "", "", {{s.target_group, 1}}, {}}}});
  }
  const core::RuleCondition scope = s.hosts.empty()
                                        ? core::RuleCondition{"path-pattern", "", {"/*"}}
                                        : core::RuleCondition{"host-header", "", s.hosts};
  const std::size_t scope_values = scope.values.size();
  // Bypass: each rule's condition values (its scope included) stay within the API's limits,
  // per rule and per condition.
  const std::size_t per_rule =
      std::min(kConditionValuesPerCondition, kConditionValuesPerRule - scope_values);
  for (std::size_t i = 0, n = 1; i < s.bypass_cidrs.size(); i += per_rule, ++n) {
    std::vector<std::string> chunk(
        s.bypass_cidrs.begin() + static_cast<long>(i),
        s.bypass_cidrs.begin() + static_cast<long>(std::min(i + per_rule, s.bypass_cidrs.size())));
    out.push_back({"bypass-cidr-" + std::to_string(n),
                   0,
                   {scope, {"source-ip", "", chunk}},
                   default_forward});
  }
  if (!s.bypass_secret.empty()) {
    out.push_back({"bypass-header",
                   0,
                   {scope, {"http-header", "X-Intermission-Bypass", {s.bypass_secret}}},
                   default_forward});
    out.push_back(
        {"bypass-cookie",
         0,
         {scope, {"http-header", "Cookie", {"*intermission_bypass=" + s.bypass_secret + "*"}}},
         default_forward});
  }
  core::RuleAction maintenance;
  if (s.mode == "target-group" && !fallback) {
    maintenance = {"forward", "", "", "", {{s.target_group, 1}}, {}};
  } else {
    maintenance = {"fixed-response",
                   s.status_code,
                   "text/html",
                   s.page.empty() ? default_alb_page() : s.page,
                   {},
                   {}};
  }
  out.push_back({core::kMaintenanceRole, 0, {scope}, {maintenance}});
  return out;
}

void allocate_priorities(std::vector<core::RuleSpec>& wanted,
                         const std::vector<core::OwnedRule>& owned, const std::vector<int>& taken) {
  // Every priority held now, ours included: a replacement is created before the rule it
  // replaces is deleted, so it cannot have that rule's priority.
  std::set<int> held(taken.begin(), taken.end());
  for (const auto& o : owned) held.insert(o.priority);
  std::set<int> given;
  std::vector<bool> claimed(owned.size(), false);
  // An owned rule that is already what `w` wants, at a priority above `floor`, keeps its place.
  auto keep = [&](core::RuleSpec& w, int floor) {
    const std::string fp = core::fingerprint(w);
    for (std::size_t i = 0; i < owned.size(); ++i) {
      const auto& o = owned[i];
      if (!claimed[i] && o.role == w.role && o.fingerprint == fp && o.priority > floor &&
          !given.contains(o.priority)) {
        claimed[i] = true;
        given.insert(o.priority);
        w.priority = o.priority;
        return true;
      }
    }
    return false;
  };
  auto fresh = [&](int floor) {
    int p = floor + 1;
    while (held.contains(p) || given.contains(p)) ++p;
    given.insert(p);
    return p;
  };
  int lowest_bypass = 0;  // the largest number (lowest precedence) among bypass rules
  for (auto& w : wanted) {
    if (w.role == core::kMaintenanceRole) continue;
    if (!keep(w, 0)) w.priority = fresh(0);
    if (w.role != core::kWarmUpRole) lowest_bypass = std::max(lowest_bypass, w.priority);
  }
  for (auto& w : wanted) {
    if (w.role == core::kMaintenanceRole && !keep(w, lowest_bypass)) {
      w.priority = fresh(lowest_bypass);
    }
  }
}

std::size_t rules_to_create(const core::AlbListener& l) {
  std::vector<bool> matched(l.owned.size(), false);
  std::size_t n = 0;
  for (const auto& d : l.desired) {
    const std::string fp = core::fingerprint(d);
    bool found = false;
    for (std::size_t i = 0; i < l.owned.size() && !found; ++i) {
      const auto& o = l.owned[i];
      if (!matched[i] && o.role == d.role && o.fingerprint == fp && o.priority == d.priority) {
        matched[i] = found = true;
      }
    }
    if (!found) ++n;
  }
  return n;
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
  std::string problem;
  const auto defaults = default_actions(l, s_.oidc_client_secret, problem);
  if (!problem.empty() && (!s_.bypass_cidrs.empty() || !s_.bypass_secret.empty())) {
    blocked_ += "bypass rules cannot be made on listener " + arn + ": " + problem + ". ";
  }
  // Every rule on the listener (DescribeRules pages), then the tags of the non-default ones.
  struct Seen {
    std::string arn;
    int priority;
    std::string warm_up;  // the value of its kWarmUpHeader condition, if it has one
  };
  std::vector<Seen> rules;
  std::string marker;
  for (int page = 0; page < 500; ++page) {
    Params p{{"ListenerArn", arn}};
    if (!marker.empty()) p.emplace_back("Marker", marker);
    p.emplace_back("PageSize", "100");
    auto r = elbv2_.query("DescribeRules", p);
    if (!r) return r.error();
    for (const auto& m : (*r)->select_nodes("//Rules/member")) {
      const pugi::xml_node rule = m.node();
      const std::string priority = rule.child_value("Priority");
      if (priority == "default" || std::string(rule.child_value("IsDefault")) == "true") continue;
      Seen seen{rule.child_value("RuleArn"), std::atoi(priority.c_str()), ""};
      for (const auto& c : rule.select_nodes("Conditions/member/HttpHeaderConfig")) {
        std::string name = c.node().child_value("HttpHeaderName");
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (name == "x-intermission-warm-up") {
          seen.warm_up = c.node().select_node("Values/member").node().child_value();
        }
      }
      rules.push_back(std::move(seen));
    }
    marker = (*r)->select_node("//NextMarker").node().child_value();
    if (marker.empty()) break;
  }
  // The tags of the rules not known (or known too long), 20 ARNs per DescribeTags call.
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::string> unknown;
  for (const auto& rule : rules) {
    const auto c = tag_cache_.find(rule.arn);
    if (c == tag_cache_.end() || now - c->second.read >= kTagCacheAge) unknown.push_back(rule.arn);
  }
  for (std::size_t i = 0; i < unknown.size(); i += 20) {
    Params p;
    for (std::size_t k = i; k < std::min(unknown.size(), i + 20); ++k) {
      p.emplace_back("ResourceArns.member." + std::to_string(k - i + 1), unknown[k]);
    }
    auto t = elbv2_.query("DescribeTags", p);
    if (!t) return t.error();
    for (std::size_t k = i; k < std::min(unknown.size(), i + 20); ++k) {
      tag_cache_[unknown[k]] = CachedTags{{}, now};  // a rule without tags has none
    }
    for (const auto& d : (*t)->select_nodes("//TagDescriptions/member")) {
      auto& m = tag_cache_[d.node().child_value("ResourceArn")].tags;
      for (const auto& tag : d.node().select_nodes("Tags/member")) {
        m[tag.node().child_value("Key")] = tag.node().child_value("Value");
      }
    }
  }
  std::map<std::string, std::map<std::string, std::string>> tags;
  for (const auto& rule : rules) tags[rule.arn] = tag_cache_[rule.arn].tags;
  core::AlbListener out;
  out.arn = arn;
  std::vector<int> taken;
  std::string warm_up_secret;
  for (const auto& rule : rules) {
    const auto& t = tags[rule.arn];
    const auto env = t.find("intermission:environment");
    if (env != t.end() && env->second == s_.environment) {
      const auto role = t.find("intermission:role");
      const auto fp = t.find("intermission:fingerprint");
      out.owned.push_back({rule.arn, role == t.end() ? "" : role->second, rule.priority,
                           fp == t.end() ? "" : fp->second});
      if (out.owned.back().role == core::kWarmUpRole && warm_up_secret.empty()) {
        warm_up_secret = rule.warm_up;  // keep the secret the live warm-up rule has
      }
    } else {
      taken.push_back(rule.priority);  // another environment's or someone else's: never touched
    }
  }
  // One warm-up rule is enough to have the group checked: it lives on the first listener.
  const bool warm_up_here = s_.mode == "target-group" && arn == s_.listeners.front();
  if (warm_up_here && warm_up_secret.empty() && s_.random_token) warm_up_secret = s_.random_token();
  out.desired = wanted_rules(s_, defaults, warm_up_here ? warm_up_secret : "", fallback_);
  allocate_priorities(out.desired, out.owned, taken);
  for (const auto& d : out.desired) {
    if (const std::string why = rule_problem(d); !why.empty()) blocked_ += why + ". ";
  }
  // Every new rule exists before the rule it replaces is deleted: the listener must have room
  // for all of them at once (aws-behaviour.md §8, TooManyRules).
  const std::size_t more = rules_to_create(out);
  if (rules.size() + more > s_.max_rules) {
    blocked_ += "listener " + arn + " has " + std::to_string(rules.size()) +
                " rules and the switch needs " + std::to_string(more) +
                " more, over its quota of " + std::to_string(s_.max_rules) +
                " (max_rules; raise the ALB quota 'rules per listener', or remove rules). ";
  }
  int shadowing = 0;
  int maintenance = 0;
  for (const auto& d : out.desired) {
    if (d.role == core::kMaintenanceRole) maintenance = d.priority;
  }
  for (const int p : taken) {
    if (p < maintenance) ++shadowing;
  }
  if (shadowing > 0) {
    notes += std::to_string(shadowing) + " rule(s) of others sit above the maintenance rule on " +
             arn + "; requests they match are not in maintenance. ";
  }
  return out;
}

core::Result<int> AlbBackend::healthy_targets(std::string* detail) {
  auto r = elbv2_.query("DescribeTargetHealth", {{"TargetGroupArn", s_.target_group}});
  if (!r) return r.error();
  int n = 0;
  int all = 0;
  std::string others;
  for (const auto& m : (*r)->select_nodes("//TargetHealthDescriptions/member")) {
    const pugi::xml_node d = m.node();
    const std::string state = d.select_node("TargetHealth/State").node().child_value();
    ++all;
    if (state == "healthy") {
      ++n;
      continue;
    }
    const std::string reason = d.select_node("TargetHealth/Reason").node().child_value();
    others += std::string(others.empty() ? "" : ", ") +
              d.select_node("Target/Id").node().child_value() + " " + state +
              (reason.empty() ? "" : " (" + reason + ")");
  }
  if (detail != nullptr) {
    *detail = "maintenance target group " + s_.target_group + ": " + std::to_string(n) +
              " healthy of " + std::to_string(all) + (others.empty() ? "" : "; " + others);
  }
  return n;
}

core::Result<core::Observation> AlbBackend::observe() {
  // Tags read too long ago are read again anyway: forget them (and deleted rules with them).
  std::erase_if(tag_cache_, [now = std::chrono::steady_clock::now()](const auto& c) {
    return now - c.second.read >= kTagCacheAge;
  });
  core::AlbObservation o;
  std::string health;
  if (s_.mode == "target-group") {
    o.target_group = s_.target_group;
    auto n = healthy_targets(&health);
    if (!n) return n.error();
    o.healthy_targets = *n;
  }
  fallback_ = false;
  for (int pass = 0; pass < 2; ++pass) {
    blocked_.clear();
    o.detail.clear();
    o.listeners.clear();
    for (const auto& arn : s_.listeners) {
      auto l = observe_listener(arn, o.detail);
      if (!l) return l.error();
      o.listeners.push_back(std::move(*l));
    }
    // Maintenance is live but the group lost its last healthy target: users would get the
    // ALB's own 503. Until a target is healthy again the ALB answers with the built-in page
    // (the warm-up rule keeps the group checked), and nothing waits.
    bool live = false;
    for (const auto& l : o.listeners) {
      for (const auto& r : l.owned) live = live || r.role == core::kMaintenanceRole;
    }
    if (pass > 0 || o.healthy_targets != 0 || !live) break;
    fallback_ = true;
    o.healthy_targets = -1;
  }
  if (s_.mode == "target-group") o.detail += health + ". ";
  if (fallback_) {
    o.detail +=
        "no healthy maintenance target: the ALB answers with the built-in page until "
        "one is healthy again. ";
  }
  if (!blocked_.empty()) o.detail += "cannot switch on: " + blocked_;
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
  std::string health;
  for (;;) {
    auto n = healthy_targets(&health);
    if (!n) return n.error();
    if (*n > 0) return {};
    if (std::chrono::steady_clock::now() + s_.poll_interval > limit) break;
    sleep_(s_.poll_interval);
  }
  if (outside) {
    return core::Error::timeout(
        "stopped waiting for a healthy maintenance target before the "
        "invocation's deadline; the next invocation or tick continues");
  }
  return core::Error::timeout("target group " + s_.target_group + " has no healthy target after " +
                              core::format_duration(s_.health_timeout) + " (" + health +
                              "); not switching to an empty group (the app keeps serving)");
}

core::Status AlbBackend::apply(const core::Step& step) {
  if (const auto* c = std::get_if<core::CreateRule>(&step)) {
    if (!blocked_.empty()) {  // found by the observe() this step was planned from
      return core::Error::config("not switching the ALB (nothing was changed by this step): " +
                                 blocked_);
    }
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
    if (!r && r.error().message.find("PriorityInUse") != std::string::npos) {
      // A retried CreateRule whose first attempt was made but not answered meets its own rule:
      // this rule, with these tags, at this priority, is the step done.
      const std::string blocked = blocked_;
      std::string notes;
      auto seen = observe_listener(c->listener, notes);
      blocked_ = blocked;
      const std::string fp = core::fingerprint(c->spec);
      if (seen && std::any_of(seen->owned.begin(), seen->owned.end(), [&](const auto& o) {
            return o.priority == c->spec.priority && o.role == c->spec.role && o.fingerprint == fp;
          })) {
        return {};
      }
    }
    if (!r && r.error().message.find("TooManyRules") != std::string::npos) {
      return core::Error::config("listener " + c->listener + " is at its rules quota (" +
                                 r.error().message +
                                 "); set max_rules to the account's quota, "
                                 "or raise it: the rules already there are left as they are");
    }
    if (!r) return r.error();
    // Its tags are the ones just given: known without asking DescribeTags, which may not show
    // a rule this new yet (the rule would then pass for someone else's).
    const std::string made = (*r)->select_node("//Rules/member/RuleArn").node().child_value();
    if (!made.empty()) {
      tag_cache_[made] = CachedTags{{tags.begin(), tags.end()}, std::chrono::steady_clock::now()};
    }
    return {};
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
