#include "adapters/config/yaml_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "adapters/backend/factory.h"
#include "core/notice.h"
#include "core/routing.h"
#include "core/sns.h"

namespace intermission::adapters {
namespace {

using core::ConfigNode;
using core::SourceLocation;

// Collects errors while walking the tree.
class Walker {
 public:
  explicit Walker(std::string file) : file_(std::move(file)) {}

  SourceLocation at(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    return {file_, m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1};
  }
  void error(const YAML::Node& n, const std::string& field, const std::string& message) {
    errors.push_back({at(n), field, message});
  }

  // Every key of map `n` must be in `allowed`.
  void only_keys(const YAML::Node& n, const std::string& field,
                 const std::set<std::string>& allowed) {
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (!allowed.contains(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        error(kv.first, join(field, key), "unknown field (expected one of: " + list + ")");
      }
    }
  }

  bool is_map(const YAML::Node& n, const std::string& field) {
    if (n.IsMap()) return true;
    error(n, field, "must be a mapping");
    return false;
  }

  std::optional<std::string> scalar(const YAML::Node& n, const std::string& field) {
    if (n.IsScalar()) return n.Scalar();
    error(n, field, "must be a single value");
    return std::nullopt;
  }

  // `allow_zero`: "0s" means "none" for this setting (a failure_grace of 0s lifts at once).
  void duration(const YAML::Node& parent, const std::string& key, const std::string& field,
                core::Duration& out, bool allow_zero = false) {
    const YAML::Node n = parent[key];
    if (!n) return;
    auto s = scalar(n, join(field, key));
    if (!s) return;
    auto d = core::read_duration(*s);
    if (!d) {
      error(n, join(field, key), d.error().message);
      return;
    }
    if (d->count() == 0 && !allow_zero) {
      error(n, join(field, key), "'" + *s + "' must be longer than 0s");
      return;
    }
    out = *d;
  }

  // Every mapping in the document, at any depth, has each key once: yaml-cpp keeps all copies,
  // and which one a lookup finds differs (operator[] the first, a walk over the pairs the last).
  void unique_keys(const YAML::Node& n, const std::string& field) {
    if (n.IsSequence()) {
      std::size_t i = 0;
      for (const auto& item : n) unique_keys(item, field + "[" + std::to_string(i++) + "]");
      return;
    }
    if (!n.IsMap()) return;
    std::map<std::string, YAML::Mark> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) continue;  // a complex key: the fields below say what is wrong
      const std::string key = kv.first.Scalar();
      const auto [first, inserted] = seen.emplace(key, kv.first.Mark());
      if (!inserted) {
        error(kv.first, join(field, key),
              "repeated key (first at line " + std::to_string(first->second.line + 1) +
                  ", column " + std::to_string(first->second.column + 1) + "): give each key once");
        continue;
      }
      unique_keys(kv.second, join(field, key));
    }
  }

  static std::string join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + "." + b;
  }

  ConfigNode tree(const YAML::Node& n) const {
    ConfigNode out;
    out.where = at(n);
    if (n.IsScalar()) {
      out.kind = ConfigNode::Kind::kScalar;
      out.scalar = n.Scalar();
    } else if (n.IsSequence()) {
      out.kind = ConfigNode::Kind::kList;
      for (const auto& item : n) out.list.push_back(tree(item));
    } else if (n.IsMap()) {
      out.kind = ConfigNode::Kind::kMap;
      for (const auto& kv : n) out.map[kv.first.Scalar()] = tree(kv.second);
    }
    return out;
  }

  std::vector<ConfigError> errors;

 private:
  std::string file_;
};

// The switching lease is renewed before every backend step, not during one (docs/
// architecture.md, Concurrency): it must be longer than the longest wait of one step, or it
// could run out while its holder waits and a second process would switch the same backend.
void check_lease(Walker& w, core::Duration lease, const std::optional<SourceLocation>& lease_at,
                 const std::map<std::string, core::EnvironmentConfig>& environments) {
  for (const auto& [name, env] : environments) {
    const auto wait = longest_wait(env.backend);
    if (!wait || lease > wait->wait) continue;
    const std::string field = "environments." + name + ".backend." + wait->setting;
    const std::string where = wait->node != nullptr ? wait->node->where.file + " line " +
                                                          std::to_string(wait->node->where.line)
                                                    : "the default of " + env.backend.type;
    const SourceLocation at = lease_at     ? *lease_at
                              : wait->node ? wait->node->where
                                           : env.backend.where;
    w.errors.push_back(
        {at, "store.lease",
         core::format_duration(lease) + (lease_at ? "" : " (the default)") +
             " is not longer than " + field + " (" + core::format_duration(wait->wait) + ", " +
             where + "): the lease is renewed only between backend steps, and one step may "
             "wait that long, so another process could take the environment over and switch "
             "the same backend meanwhile. Make store.lease longer than every backend's wait, "
             "or the wait shorter"});
  }
}

const std::set<std::string> kPolicyKeys = {"max_duration", "failure_policy", "failure_grace",
                                           "skip_creators", "unknown_creator"};

// Reads the per-environment policy fields (shared by `defaults` and each environment).
void read_policy(Walker& w, const YAML::Node& n, const std::string& field,
                 core::EnvironmentConfig& env) {
  w.duration(n, "max_duration", field, env.max_duration);
  w.duration(n, "failure_grace", field, env.failure_grace, true);
  if (const YAML::Node p = n["failure_policy"]) {
    auto s = w.scalar(p, Walker::join(field, "failure_policy"));
    if (s == "lift") {
      env.failure_policy = core::FailurePolicy::kLift;
    } else if (s == "hold") {
      env.failure_policy = core::FailurePolicy::kHold;
    } else if (s) {
      w.error(p, Walker::join(field, "failure_policy"), "'" + *s + "' is not 'lift' or 'hold'");
    }
  }
  if (const YAML::Node p = n["unknown_creator"]) {
    auto s = w.scalar(p, Walker::join(field, "unknown_creator"));
    if (s == "maintain") {
      env.unknown_creator = core::UnknownCreatorPolicy::kMaintain;
    } else if (s == "ignore") {
      env.unknown_creator = core::UnknownCreatorPolicy::kIgnore;
    } else if (s) {
      w.error(p, Walker::join(field, "unknown_creator"),
              "'" + *s + "' is not 'maintain' or 'ignore'");
    }
  }
  if (const YAML::Node p = n["skip_creators"]) {
    if (!p.IsSequence()) {
      w.error(p, Walker::join(field, "skip_creators"), "must be a list of creator names");
    } else {
      env.skip_creators.clear();
      for (const auto& item : p) {
        if (auto s = w.scalar(item, Walker::join(field, "skip_creators"))) {
          env.skip_creators.push_back(*s);
        }
      }
    }
  }
}

// An http or https URL with a host: what a notification target may be sent to.
bool valid_notify_url(const std::string& url) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return false;
  }
  const auto host_end = rest.find_first_of("/?#");
  const std::string_view host = rest.substr(0, host_end);
  if (host.empty() || host.front() == ':' || host.find('@') != std::string_view::npos) return false;
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return true;
}

void read_notifications(Walker& w, const YAML::Node& nt, const std::string& file,
                        core::NotificationsConfig& out,
                        const std::map<std::string, core::EnvironmentConfig>* environments) {
  w.only_keys(nt, "notifications",
              {"targets", "stuck_after", "timeout", "attempts", "backoff", "backoff_cap", "queue"});
  out.where = w.at(nt);
  w.duration(nt, "stuck_after", "notifications", out.stuck_after);
  w.duration(nt, "timeout", "notifications", out.timeout);
  w.duration(nt, "backoff", "notifications", out.backoff);
  w.duration(nt, "backoff_cap", "notifications", out.backoff_cap);
  auto whole = [&](const char* key, int low, int high, int& value) {
    const YAML::Node n = nt[key];
    if (!n) return;
    const std::string field = std::string("notifications.") + key;
    const auto v = w.scalar(n, field);
    int parsed = 0;
    try {
      std::size_t used = 0;
      parsed = v ? std::stoi(*v, &used) : 0;
      if (v && used != v->size()) parsed = 0;
    } catch (const std::exception&) {
      parsed = 0;
    }
    if (v && (parsed < low || parsed > high)) {
      w.error(n, field, "must be a whole number from " + std::to_string(low) + " to " +
                            std::to_string(high));
    } else if (v) {
      value = parsed;
    }
  };
  whole("attempts", 1, 20, out.attempts);
  whole("queue", 1, 100000, out.queue);
  const YAML::Node targets = nt["targets"];
  if (!targets) {
    w.error(nt, "notifications.targets", "missing: a list of places to send notices to");
    return;
  }
  if (!targets.IsSequence()) {
    w.error(targets, "notifications.targets", "must be a list of targets");
    return;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const YAML::Node t = targets[i];
    const std::string field = "notifications.targets[" + std::to_string(i) + "]";
    if (!w.is_map(t, field)) continue;
    w.only_keys(t, field, {"type", "name", "url", "url_file", "url_env", "secret_file",
                           "secret_env", "events", "environments"});
    core::NotificationTarget target;
    target.where = w.at(t);
    auto text = [&](const char* key) -> std::string {
      const YAML::Node n = t[key];
      return n ? w.scalar(n, field + "." + key).value_or("") : "";
    };
    target.type = text("type");
    if (!t["type"]) {
      w.error(t, field + ".type", "missing: slack or webhook");
    } else if (target.type != "slack" && target.type != "webhook") {
      w.error(t["type"], field + ".type", "'" + target.type + "' is not slack or webhook");
    }
    target.name = t["name"] ? text("name") : target.type + "-" + std::to_string(i);
    if (!names.insert(target.name).second) {
      w.error(t["name"] ? t["name"] : t, field + ".name",
              "'" + target.name +
                  "' names another target too (names label metrics and audit lines)");
    }
    target.url = text("url");
    target.url_file = t["url_file"] ? resolve_path(file, text("url_file")) : "";
    target.url_env = text("url_env");
    const int url_sources = (t["url"] ? 1 : 0) + (t["url_file"] ? 1 : 0) + (t["url_env"] ? 1 : 0);
    if (url_sources != 1) {
      w.error(t, field + ".url",
              "give exactly one of url, url_file, url_env (a Slack webhook URL is a secret: "
              "url_file or url_env keep it out of this file)");
    } else if (t["url"] && !valid_notify_url(target.url)) {
      w.error(t["url"], field + ".url", "'" + target.url + "' is not an http:// or https:// URL");
    }
    target.secret_file = t["secret_file"] ? resolve_path(file, text("secret_file")) : "";
    target.secret_env = text("secret_env");
    const int secret_sources = (t["secret_file"] ? 1 : 0) + (t["secret_env"] ? 1 : 0);
    if (target.type == "webhook" && secret_sources != 1) {
      w.error(t, field + ".secret_file",
              "a webhook target signs with a secret: give exactly one of secret_file, secret_env");
    } else if (target.type == "slack" && secret_sources != 0) {
      w.error(t["secret_file"] ? t["secret_file"] : t["secret_env"], field,
              "a slack target has no signing secret (its URL is the secret)");
    }
    auto names_list = [&](const char* key, std::vector<std::string>& list, auto&& check) {
      const YAML::Node n = t[key];
      if (!n) return;
      if (!n.IsSequence()) {
        w.error(n, field + "." + key, "must be a list");
        return;
      }
      for (const auto& item : n) {
        auto v = w.scalar(item, field + "." + key);
        if (!v) continue;
        if (const std::string problem = check(*v); !problem.empty()) {
          w.error(item, field + "." + key, problem);
        } else {
          list.push_back(*v);
        }
      }
    };
    names_list("events", target.events, [](const std::string& v) -> std::string {
      if (core::parse_notice_kind(v)) return "";
      std::string known;
      for (const auto k : core::kNoticeKinds) {
        known += (known.empty() ? "" : ", ") + std::string(core::to_string(k));
      }
      return "'" + v + "' is not a notice (known: " + known + ")";
    });
    names_list("environments", target.environments, [&](const std::string& v) -> std::string {
      if (environments == nullptr || environments->contains(v)) return "";
      return "'" + v + "' is not a configured environment";
    });
    out.targets.push_back(std::move(target));
  }
}

bool valid_environment_name(const std::string& name) {
  if (name.empty() || name.size() > core::kMaxEnvironmentName) return false;
  for (const char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool is_notify_url(const std::string& url) { return valid_notify_url(url); }

std::string ConfigError::to_string() const {
  std::string out = where.file;
  if (where.line > 0) {
    out += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
  }
  out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

std::string resolve_path(const std::string& config_file, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || config_file.empty()) return path;
  return (std::filesystem::path(config_file).parent_path() / p).lexically_normal().string();
}

LoadedConfig parse_config(const std::string& text, const std::string& file) {
  LoadedConfig out;
  out.config.file = file;
  Walker w(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    out.errors.push_back({{file, e.mark.line + 1, e.mark.column + 1}, "", e.msg});
    return out;
  }
  if (!root || root.IsNull()) {
    out.errors.push_back({{file, 0, 0}, "", "the file is empty"});
    return out;
  }
  if (!w.is_map(root, "(top level)")) {
    out.errors = w.errors;
    return out;
  }
  w.unique_keys(root, "");
  w.only_keys(root, "",
              {"store", "aws", "serve", "defaults", "routes", "environments", "notifications"});

  // serve
  std::vector<std::pair<YAML::Node, std::string>> webhook_environments;  // checked after environments
  if (const YAML::Node sv = root["serve"]; sv && w.is_map(sv, "serve")) {
    w.only_keys(sv, "serve",
                {"listen", "admin_listen", "admin_hosts", "sns", "operator_token_file",
                 "webhook_secret_file", "status_requires_token", "tick_interval", "flux",
                 "argocd", "github"});
    core::ServeConfig& serve = out.config.serve;
    serve.present = true;
    serve.where = w.at(sv);
    for (const char* key : {"listen", "admin_listen", "operator_token_file", "webhook_secret_file"}) {
      if (const YAML::Node n = sv[key]) {
        const std::string v = w.scalar(n, std::string("serve.") + key).value_or("");
        if (std::string(key) == "listen") serve.listen = v;
        if (std::string(key) == "admin_listen") serve.admin_listen = v;
        if (std::string(key) == "operator_token_file") serve.operator_token_file = resolve_path(file, v);
        if (std::string(key) == "webhook_secret_file") serve.webhook_secret_file = resolve_path(file, v);
      }
    }
    w.duration(sv, "tick_interval", "serve", serve.tick_interval);
    if (const YAML::Node h = sv["admin_hosts"]) {
      if (!h.IsSequence()) {
        w.error(h, "serve.admin_hosts", "must be a list of host names or addresses");
      } else {
        for (const auto& item : h) {
          auto name = w.scalar(item, "serve.admin_hosts");
          if (name && (name->empty() || name->find_first_of(" /@") != std::string::npos)) {
            w.error(item, "serve.admin_hosts", "'" + *name + "' is not a host name or address");
          } else if (name) {
            serve.admin_hosts.push_back(*name);
          }
        }
      }
    }
    if (const YAML::Node t = sv["status_requires_token"]) {
      auto v = w.scalar(t, "serve.status_requires_token");
      if (v == "true" || v == "false") {
        serve.status_requires_token = *v == "true";
      } else if (v) {
        w.error(t, "serve.status_requires_token", "'" + *v + "' is not true or false");
      }
    }
    // A map of names to environments (checked against the environments further down).
    auto name_map = [&](const YAML::Node& n, const std::string& field,
                        std::map<std::string, std::string>& out_map) {
      if (!n.IsMap()) {
        w.error(n, field, "must be a mapping of names to environments");
        return;
      }
      for (const auto& kv : n) {
        const std::string key = kv.first.Scalar();
        auto value = w.scalar(kv.second, field + "." + key);
        if (!value) continue;
        out_map[key] = *value;
        webhook_environments.emplace_back(kv.second, field + "." + key);
      }
    };
    if (const YAML::Node fx = sv["flux"]; fx && w.is_map(fx, "serve.flux")) {
      w.only_keys(fx, "serve.flux", {"secret_file", "objects"});
      if (const YAML::Node f = fx["secret_file"]) {
        serve.flux_secret_file = resolve_path(file, w.scalar(f, "serve.flux.secret_file").value_or(""));
      }
      if (const YAML::Node o = fx["objects"]) {
        name_map(o, "serve.flux.objects", serve.flux_objects);
        if (o.IsMap()) {
          for (const auto& kv : o) {
            const std::string key = kv.first.Scalar();
            const auto a = key.find('/'), b = a == std::string::npos ? a : key.find('/', a + 1);
            if (a == 0 || b == std::string::npos || b == a + 1 || b + 1 == key.size() ||
                key.find('/', b + 1) != std::string::npos) {
              w.error(kv.first, "serve.flux.objects",
                      "'" + key + "' is not Kind/namespace/name (Kustomization/apps/webapp)");
            }
          }
        }
      }
    }
    if (const YAML::Node ar = sv["argocd"]; ar && w.is_map(ar, "serve.argocd")) {
      w.only_keys(ar, "serve.argocd", {"token_file"});
      if (const YAML::Node f = ar["token_file"]) {
        serve.argocd_token_file = resolve_path(file, w.scalar(f, "serve.argocd.token_file").value_or(""));
      }
    }
    if (const YAML::Node gh = sv["github"]; gh && w.is_map(gh, "serve.github")) {
      w.only_keys(gh, "serve.github", {"secret_file", "environments"});
      if (const YAML::Node f = gh["secret_file"]) {
        serve.github_secret_file = resolve_path(file, w.scalar(f, "serve.github.secret_file").value_or(""));
      }
      if (const YAML::Node e = gh["environments"]) {
        name_map(e, "serve.github.environments", serve.github_environments);
      }
    }
    if (const YAML::Node sns = sv["sns"]; sns && w.is_map(sns, "serve.sns")) {
      w.only_keys(sns, "serve.sns", {"topics", "ca_file", "cert_dir"});
      if (const YAML::Node c = sns["cert_dir"]) {
        serve.sns_cert_dir = resolve_path(file, w.scalar(c, "serve.sns.cert_dir").value_or(""));
      }
      if (const YAML::Node t = sns["topics"]) {
        if (!t.IsSequence()) {
          w.error(t, "serve.sns.topics", "must be a list of SNS topic ARNs");
        } else {
          for (const auto& item : t) {
            auto arn = w.scalar(item, "serve.sns.topics");
            if (arn && !core::sns_topic_region(*arn)) {
              w.error(item, "serve.sns.topics",
                      "'" + *arn + "' is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)");
            } else if (arn) {
              serve.sns_topics.push_back(*arn);
            }
          }
        }
      }
      if (const YAML::Node c = sns["ca_file"]) {
        serve.sns_ca_file = resolve_path(file, w.scalar(c, "serve.sns.ca_file").value_or(""));
      }
    }
  }

  // aws
  if (const YAML::Node a = root["aws"]; a && w.is_map(a, "aws")) {
    w.only_keys(a, "aws", {"region", "codedeploy_lookup", "max_attempts"});
    core::AwsConfig& aws = out.config.aws;
    aws.present = true;
    aws.where = w.at(a);
    if (const YAML::Node r = a["region"]) aws.region = w.scalar(r, "aws.region").value_or("");
    if (const YAML::Node l = a["codedeploy_lookup"]) {
      auto v = w.scalar(l, "aws.codedeploy_lookup");
      if (v == "true" || v == "false") {
        aws.codedeploy_lookup = *v == "true";
      } else if (v) {
        w.error(l, "aws.codedeploy_lookup", "'" + *v + "' is not true or false");
      }
    }
    if (const YAML::Node m = a["max_attempts"]) {
      const auto v = w.scalar(m, "aws.max_attempts");
      int n = 0;
      try {
        n = v ? std::stoi(*v) : 0;
      } catch (const std::exception&) {
        n = 0;
      }
      if (n < 1 || n > 20) {
        w.error(m, "aws.max_attempts", "must be a whole number from 1 to 20");
      } else {
        aws.max_attempts = n;
      }
    }
  }

  // store
  core::StoreConfig& store = out.config.store;
  std::optional<SourceLocation> lease_at;  // where store.lease is set, if it is
  bool lease_read = true;                  // false: its value is a mistake already reported
  if (const YAML::Node s = root["store"]; s && w.is_map(s, "store")) {
    w.only_keys(s, "store", {"type", "path", "table", "region", "audit_ttl", "lease", "connection",
                             "namespace", "kubeconfig", "context"});
    store.where = w.at(s);
    if (const YAML::Node t = s["type"]) store.type = w.scalar(t, "store.type").value_or("");
    if (store.type != "sqlite" && store.type != "dynamodb" && store.type != "postgresql" &&
        store.type != "kubernetes") {
      w.error(s["type"] ? s["type"] : s, "store.type",
              "'" + store.type +
                  "' is not a known store (known: sqlite, postgresql, dynamodb, kubernetes)");
    }
    if (const YAML::Node n = s["namespace"]) {
      store.namespace_name = w.scalar(n, "store.namespace").value_or("");
      // A namespace is a DNS-1123 label.
      const std::string& ns = store.namespace_name;
      bool ok = !ns.empty() && ns.size() <= 63 && ns.front() != '-' && ns.back() != '-';
      for (const char c : ns) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
      if (!ok) {
        w.error(n, "store.namespace",
                "'" + ns + "' is not a Kubernetes namespace name (lowercase letters, digits and "
                "'-', at most 63)");
      }
    }
    if (const YAML::Node k = s["kubeconfig"]) {
      store.kubeconfig = resolve_path(file, w.scalar(k, "store.kubeconfig").value_or(""));
    }
    if (const YAML::Node c = s["context"]) store.context = w.scalar(c, "store.context").value_or("");
    if (store.type != "kubernetes" &&
        (s["namespace"] || s["kubeconfig"] || s["context"])) {
      w.error(s, "store", "namespace, kubeconfig and context are for the kubernetes store");
    }
    if (const YAML::Node p = s["path"]) {
      store.path = resolve_path(file, w.scalar(p, "store.path").value_or(""));
    }
    if (const YAML::Node t = s["table"]) store.table = w.scalar(t, "store.table").value_or("");
    if (const YAML::Node c = s["connection"]) {
      store.connection = w.scalar(c, "store.connection").value_or("");
    }
    if (const YAML::Node r = s["region"]) store.region = w.scalar(r, "store.region").value_or("");
    w.duration(s, "audit_ttl", "store", store.audit_ttl);
    if (const YAML::Node l = s["lease"]) {
      const std::size_t before = w.errors.size();
      w.duration(s, "lease", "store", store.lease);
      lease_at = w.errors.size() == before ? std::optional(w.at(l)) : std::nullopt;
      lease_read = lease_at.has_value();
    }
    if (store.type == "dynamodb" && store.table.empty()) {
      w.error(s, "store.table", "missing: the dynamodb store needs its table name");
    }
  }

  // defaults
  core::EnvironmentConfig defaults;
  if (const YAML::Node d = root["defaults"]; d && w.is_map(d, "defaults")) {
    w.only_keys(d, "defaults", kPolicyKeys);
    read_policy(w, d, "defaults", defaults);
  }

  // environments
  const YAML::Node envs = root["environments"];
  if (!envs) {
    w.error(root, "environments", "missing: at least one environment is needed");
  } else if (w.is_map(envs, "environments")) {
    if (envs.size() == 0) w.error(envs, "environments", "at least one environment is needed");
    for (const auto& kv : envs) {
      const std::string name = kv.first.Scalar();
      const std::string field = "environments." + name;
      if (!valid_environment_name(name)) {
        w.error(kv.first, field,
                "environment names are 1-64 letters, digits, '-', '_' or '.'");
        continue;
      }
      core::EnvironmentConfig env = defaults;
      env.name = name;
      const YAML::Node n = kv.second;
      if (!w.is_map(n, field)) continue;
      std::set<std::string> allowed = kPolicyKeys;
      allowed.insert("backend");
      w.only_keys(n, field, allowed);
      read_policy(w, n, field, env);
      const YAML::Node b = n["backend"];
      if (!b) {
        w.error(n, field + ".backend", "missing: every environment needs a backend");
      } else if (w.is_map(b, field + ".backend")) {
        env.backend.where = w.at(b);
        env.backend.settings = w.tree(b);
        if (const YAML::Node t = b["type"]) {
          env.backend.type = w.scalar(t, field + ".backend.type").value_or("");
        }
        for (auto& e : check_backend_config(env.backend, field + ".backend", file)) {
          w.errors.push_back(std::move(e));
        }
      }
      out.config.environments[name] = std::move(env);
    }
  }
  if (lease_read) check_lease(w, store.lease, lease_at, out.config.environments);

  // routes
  const YAML::Node routes = root["routes"];
  if (routes && !routes.IsSequence()) {
    w.error(routes, "routes", "must be a list of routes");
  } else if (routes) {
    for (std::size_t i = 0; i < routes.size(); ++i) {
      const YAML::Node r = routes[i];
      const std::string field = "routes[" + std::to_string(i) + "]";
      if (!w.is_map(r, field)) continue;
      w.only_keys(r, field, {"application", "deployment_group", "environment"});
      core::Route route;
      route.where = w.at(r);
      if (const YAML::Node a = r["application"]) {
        route.application = w.scalar(a, field + ".application").value_or("*");
      }
      if (const YAML::Node g = r["deployment_group"]) {
        route.deployment_group = w.scalar(g, field + ".deployment_group").value_or("*");
      }
      const YAML::Node e = r["environment"];
      if (!e) {
        w.error(r, field + ".environment", "missing: which environment this route maps to");
        continue;
      }
      route.environment = w.scalar(e, field + ".environment").value_or("");
      if (const std::string problem = core::check_route(route); !problem.empty()) {
        w.error(e, field + ".environment", problem);
        continue;
      }
      if (!core::has_placeholders(route.environment) &&
          !out.config.environments.contains(route.environment) && envs && envs.IsMap()) {
        w.error(e, field + ".environment",
                "'" + route.environment + "' is not one of the configured environments");
      }
      out.config.routes.push_back(std::move(route));
    }
  }
  if (const YAML::Node nt = root["notifications"]; nt && w.is_map(nt, "notifications")) {
    read_notifications(w, nt, file, out.config.notifications,
                       envs && envs.IsMap() ? &out.config.environments : nullptr);
  }
  for (const auto& [node, field] : webhook_environments) {
    if (node.IsScalar() && !out.config.environments.contains(node.Scalar()) && envs && envs.IsMap()) {
      w.error(node, field, "'" + node.Scalar() + "' is not a configured environment");
    }
  }
  out.errors = std::move(w.errors);
  std::stable_sort(out.errors.begin(), out.errors.end(), [](const auto& a, const auto& b) {
    return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
  });
  return out;
}

LoadedConfig load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadedConfig out;
    out.config.file = path;
    out.errors.push_back({{path, 0, 0}, "", "cannot read the file: " + std::string(
                                                                          std::strerror(errno))});
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace intermission::adapters
