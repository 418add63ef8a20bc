#include "adapters/backend/factory.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "adapters/aws/alb_backend.h"
#include "adapters/aws/elb_backend.h"
#include "adapters/backend/log_backend.h"
#include "adapters/config/yaml_config.h"
#include "adapters/haproxy/haproxy_backend.h"
#include "adapters/haproxy/protocol.h"
#include "adapters/kube/kube_backend.h"
#include "adapters/nginx/config_snippet.h"
#include "adapters/nginx/nginx_backend.h"

namespace intermission::adapters {
namespace {

// Checks one setting's value; returns a message, or empty when it is fine.
using Check = std::string (*)(const std::string&);

std::string any_value(const std::string&) { return ""; }
std::string haproxy_token(const std::string& v) {
  return haproxy::safe_token(v) ? ""
                                : "'" + v + "' must not contain spaces, quotes, ';', '\\' or '#'";
}
std::string nginx_path(const std::string& v) {
  return nginx::safe_token(v) && v.front() == '/'
             ? ""
             : "'" + v +
                   "' must be an absolute path without spaces, quotes, ';', '{', '}', '$' "
                   "or '#' (nginx reads it unquoted)";
}
std::string assets_prefix(const std::string& v) {
  return nginx::safe_token(v) && v.size() >= 2 && v.front() == '/' && v.back() == '/'
             ? ""
             : "'" + v + "' must start and end with '/', without spaces, quotes or ';'";
}
std::string seconds_value(const std::string& v) {
  const auto d = core::parse_duration(v);
  return d && *d >= std::chrono::seconds(1) ? "" : "'" + v + "' is not a duration of 1s or more";
}
std::string http_url(const std::string& v) {
  return v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0
             ? ""
             : "'" + v + "' is not an http:// or https:// URL";
}
std::string duration_value(const std::string& v) {
  return core::parse_duration(v) ? "" : "'" + v + "' is not a duration (5s, 500ms)";
}

std::string positive_int(const std::string& v) {
  try {
    std::size_t used = 0;
    const int n = std::stoi(v, &used);
    if (used == v.size() && n >= 1 && n <= 1000) return "";
  } catch (const std::exception&) {
  }
  return "'" + v + "' is not a whole number from 1 to 1000";
}
std::string listener_arn(const std::string& v) {
  return v.rfind("arn:", 0) == 0 && v.find(":listener/") != std::string::npos
             ? ""
             : "'" + v + "' is not a listener ARN (arn:aws:elasticloadbalancing:...:listener/...)";
}
std::string alb_mode(const std::string& v) {
  return v == "fixed-response" || v == "target-group"
             ? ""
             : "'" + v + "' is not fixed-response or target-group";
}
std::string status_code(const std::string& v) {
  return v.size() == 3 && (v[0] == '2' || v[0] == '4' || v[0] == '5') &&
                 std::isdigit(static_cast<unsigned char>(v[1])) &&
                 std::isdigit(static_cast<unsigned char>(v[2]))
             ? ""
             : "'" + v + "' is not a 2XX, 4XX or 5XX status code";
}
// Kubernetes names: a namespace or Service name is an RFC 1123 / 1035 label, other objects a
// DNS subdomain (apimachinery's validation).
bool dns_chars(const std::string& v, bool dots) {
  if (v.empty() || !std::isalnum(static_cast<unsigned char>(v.front())) ||
      !std::isalnum(static_cast<unsigned char>(v.back()))) {
    return false;
  }
  return std::all_of(v.begin(), v.end(), [&](char c) {
    return (std::islower(static_cast<unsigned char>(c)) != 0) ||
           (std::isdigit(static_cast<unsigned char>(c)) != 0) || c == '-' || (dots && c == '.');
  });
}
std::string kube_label(const std::string& v) {
  return v.size() <= 63 && dns_chars(v, false)
             ? ""
             : "'" + v +
                   "' is not a Kubernetes name (at most 63 lower-case letters, digits and "
                   "'-', starting and ending with a letter or digit)";
}
std::string kube_subdomain(const std::string& v) {
  return v.size() <= 253 && dns_chars(v, true)
             ? ""
             : "'" + v +
                   "' is not a Kubernetes object name (lower-case letters, digits, '-' and "
                   "'.', starting and ending with a letter or digit)";
}
std::string kube_mode(const std::string& v) {
  return v == "service" || v == "httproute" || v == "ingress"
             ? ""
             : "'" + v + "' is not service, httproute or ingress";
}
std::string port_number(const std::string& v) {
  try {
    std::size_t used = 0;
    const int n = std::stoi(v, &used);
    if (used == v.size() && n >= 1 && n <= 65535) return "";
  } catch (const std::exception&) {
  }
  return "'" + v + "' is not a port number (1 to 65535)";
}
std::string http_token(const std::string& v) {
  const bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
  return ok ? "" : "'" + v + "' must be letters, digits, '-' and '_' only";
}
std::string ingress_path(const std::string& v) {
  return !v.empty() && v.front() == '/' ? "" : "'" + v + "' is not a path (it starts with /)";
}

std::string instance_id(const std::string& v) {
  return v.rfind("i-", 0) == 0 && v.size() > 2 ? ""
                                               : "'" + v + "' is not an EC2 instance id (i-...)";
}

struct Setting {
  std::string name;
  bool required;
  Check check = any_value;
  bool list = false;  // a list of values, each checked
};

// The settings each backend type takes (besides `type`).
const std::map<std::string, std::vector<Setting>>& schema() {
  static const std::map<std::string, std::vector<Setting>> kSchema = {
      {"log", {{"path", true}, {"delay", false, duration_value}}},
      {"haproxy",
       {{"socket", true},
        {"map", true, haproxy_token},
        {"key", false, haproxy_token},
        {"value", false, haproxy_token},
        {"timeout", false, duration_value}}},
      {"alb",
       {{"listeners", true, listener_arn, true},
        {"mode", false, alb_mode},
        {"target_group", false},
        {"hosts", false, any_value, true},
        {"bypass_cidrs", false, any_value, true},
        {"bypass_secret", false, haproxy_token},
        {"page_file", false},
        {"status_code", false, status_code},
        {"health_timeout", false, duration_value},
        {"poll_interval", false, duration_value},
        {"max_rules", false, positive_int},
        {"oidc_client_secret_env", false},
        {"region", false}}},
      {"nginx",
       {{"state_file", true, nginx_path},
        {"probe", false, http_url},
        {"probe_timeout", false, duration_value},
        {"page_dir", false, nginx_path},
        {"page_file", false},
        {"assets", false},
        {"assets_prefix", false, assets_prefix},
        {"retry_after", false, seconds_value}}},
      {"kubernetes",
       {{"namespace", true, kube_label},
        {"mode", true, kube_mode},
        {"service", false, kube_label},
        {"route", false, kube_subdomain},
        {"ingress", false, kube_subdomain},
        {"page_service", true, kube_label},
        {"page_port", false, port_number},
        {"paths", false, ingress_path, true},
        {"bypass_header", false, http_token},
        {"bypass_secret", false, http_token},
        {"min_ready", false, positive_int},
        {"health_timeout", false, duration_value},
        {"poll_interval", false, duration_value},
        {"kubeconfig", false},
        {"context", false}}},
      {"elb-classic",
       {{"load_balancer", true},
        {"auto_scaling_group", true},
        {"page_instances", true, instance_id, true},
        {"min_healthy", false, positive_int},
        {"health_timeout", false, duration_value},
        {"poll_interval", false, duration_value},
        {"region", false}}},
  };
  return kSchema;
}

std::string setting(const core::BackendConfig& b, const std::string& name) {
  const core::ConfigNode* n = b.settings.find(name);
  return n != nullptr ? n->scalar : "";
}

}  // namespace

bool uses_aws(const core::Config& config) {
  if (config.store.type == "dynamodb") return true;
  for (const auto& [name, env] : config.environments) {
    if (env.backend.type == "elb-classic" || env.backend.type == "alb") return true;
  }
  return false;
}

namespace {

std::vector<std::string> list_setting(const core::BackendConfig& b, const std::string& name) {
  std::vector<std::string> out;
  if (const core::ConfigNode* n = b.settings.find(name)) {
    for (const auto& item : n->list) out.push_back(item.scalar);
  }
  return out;
}

// The fixed-response page of an alb backend: the page_file's text, or the built-in page.
core::Result<std::string> alb_page(const core::BackendConfig& b) {
  const std::string file = setting(b, "page_file");
  if (file.empty()) return aws::default_alb_page();
  const std::string path = resolve_path(b.where.file, file);
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error::config("cannot read page_file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void check_alb(const core::BackendConfig& b, const std::string& field,
               std::vector<ConfigError>& errors) {
  const std::string mode = setting(b, "mode").empty() ? "fixed-response" : setting(b, "mode");
  if (mode == "target-group" && setting(b, "target_group").empty()) {
    errors.push_back({b.where, field + ".target_group", "missing (required by mode target-group)"});
  }
  if (mode == "fixed-response") {
    auto page = alb_page(b);
    const core::ConfigNode* n = b.settings.find("page_file");
    const core::SourceLocation at = n != nullptr ? n->where : b.where;
    if (!page) {
      errors.push_back({at, field + ".page_file", page.error().message});
    } else if (const std::size_t chars = aws::api_characters(*page);
               chars > aws::kFixedResponseLimit) {
      errors.push_back({at, field + ".page_file",
                        "the page has " + std::to_string(chars) +
                            " characters; an ALB "
                            "fixed-response body holds at most " +
                            std::to_string(aws::kFixedResponseLimit) +
                            ". Minify it (inline CSS, no comments or indentation) or use "
                            "mode: target-group with the page server behind a target group"});
    }
  }
  const std::size_t hosts = list_setting(b, "hosts").size();
  const std::string secret = setting(b, "bypass_secret");
  // aws-behaviour.md §8: the cookie rule's http-header value is *intermission_bypass=SECRET*,
  // at most 128 characters, and its two wildcards count towards the rule's five.
  const std::size_t cookie_extra = std::string("*intermission_bypass=*").size();
  if (!secret.empty() && (secret.find_first_of("*?") != std::string::npos ||
                          aws::api_characters(secret) + cookie_extra > aws::kHeaderValueLimit)) {
    const core::ConfigNode* n = b.settings.find("bypass_secret");
    errors.push_back({n != nullptr ? n->where : b.where, field + ".bypass_secret",
                      "must have no * or ? (ALB wildcards) and at most " +
                          std::to_string(aws::kHeaderValueLimit - cookie_extra) +
                          " characters (an ALB http-header value holds 128, and the cookie "
                          "rule adds " +
                          std::to_string(cookie_extra) + ")"});
  }
  std::size_t host_wildcards = 0;
  for (const auto& h : list_setting(b, "hosts")) {
    host_wildcards += static_cast<std::size_t>(std::count(h.begin(), h.end(), '*') +
                                               std::count(h.begin(), h.end(), '?'));
  }
  const std::size_t wildcard_room = aws::kWildcardsPerRule - (secret.empty() ? 0 : 2);
  if (host_wildcards > wildcard_room) {
    const core::ConfigNode* n = b.settings.find("hosts");
    errors.push_back({n != nullptr ? n->where : b.where, field + ".hosts",
                      "the hosts have " + std::to_string(host_wildcards) +
                          " wildcards; an ALB rule takes at most " +
                          std::to_string(aws::kWildcardsPerRule) +
                          (secret.empty() ? "" : ", and the bypass cookie rule uses 2 of them")});
  }
  // The hosts are one host-header condition of every rule: at most 3 values in a condition,
  // which also leaves room in each bypass rule (5 values in all) for its own condition.
  if (hosts > aws::kConditionValuesPerCondition) {
    const core::ConfigNode* n = b.settings.find("hosts");
    errors.push_back({n != nullptr ? n->where : b.where, field + ".hosts",
                      "an ALB condition takes at most " +
                          std::to_string(aws::kConditionValuesPerCondition) +
                          " values, and the hosts are one condition: at most " +
                          std::to_string(aws::kConditionValuesPerCondition) +
                          " hosts (use a wildcard such as *.example.com, or another environment)"});
  }
}

// The settings of a kubernetes backend that depend on its mode.
void check_kube(const core::BackendConfig& b, const std::string& field,
                std::vector<ConfigError>& errors) {
  const std::string mode = setting(b, "mode");
  const std::map<std::string, std::string> object = {
      {"service", "service"}, {"httproute", "route"}, {"ingress", "ingress"}};
  for (const auto& [m, key] : object) {
    const core::ConfigNode* n = b.settings.find(key);
    if (m == mode && n == nullptr) {
      errors.push_back({b.where, field + "." + key,
                        "missing (required by mode " + mode + ": the " + key + " to switch)"});
    } else if (m != mode && n != nullptr) {
      errors.push_back(
          {n->where, field + "." + key, "only for mode " + m + " (this is mode " + mode + ")"});
    }
  }
  auto only = [&](const std::string& key, const std::string& m, const std::string& why) {
    if (const core::ConfigNode* n = b.settings.find(key); n != nullptr && mode != m) {
      errors.push_back({n->where, field + "." + key, "only for mode " + m + ": " + why});
    }
  };
  only("bypass_secret", "httproute",
       "a Service or an Ingress cannot match a header without controller-specific annotations "
       "(docs/backends.md, Kubernetes: bypass)");
  only("bypass_header", "httproute", "the bypass is an HTTPRoute header match");
  only("paths", "ingress", "the Ingress paths to switch");
  only("page_port", mode == "service" ? "httproute or ingress" : mode,
       "in mode service the Service's own ports stay, and the page pods must serve its "
       "targetPorts");
  if (const core::ConfigNode* n = b.settings.find("bypass_header");
      n != nullptr && setting(b, "bypass_secret").empty()) {
    errors.push_back({n->where, field + ".bypass_header", "needs bypass_secret (its value)"});
  }
  if (mode == "service" && setting(b, "service") == setting(b, "page_service")) {
    const core::ConfigNode* n = b.settings.find("page_service");
    errors.push_back({n != nullptr ? n->where : b.where, field + ".page_service",
                      "is the application's Service itself"});
  }
}

}  // namespace

const std::vector<std::string>& backend_types() {
  static const std::vector<std::string> kTypes = [] {
    std::vector<std::string> out;
    for (const auto& [type, settings] : schema()) out.push_back(type);
    return out;
  }();
  return kTypes;
}

std::vector<ConfigError> check_backend_config(const core::BackendConfig& backend,
                                              const std::string& field, const std::string& file) {
  std::vector<ConfigError> errors;
  std::string known;
  for (const auto& t : backend_types()) known += (known.empty() ? "" : ", ") + t;
  const auto it = schema().find(backend.type);
  if (backend.type.empty()) {
    errors.push_back({backend.where, field + ".type", "missing (one of: " + known + ")"});
    return errors;
  }
  if (it == schema().end()) {
    const core::ConfigNode* t = backend.settings.find("type");
    errors.push_back({t != nullptr ? t->where : backend.where, field + ".type",
                      "'" + backend.type + "' is not a known backend (one of: " + known + ")"});
    return errors;
  }
  std::set<std::string> allowed = {"type"};
  for (const auto& s : it->second) {
    allowed.insert(s.name);
    const core::ConfigNode* n = backend.settings.find(s.name);
    if (n == nullptr && s.required) {
      errors.push_back(
          {backend.where, field + "." + s.name, "missing (required by type " + backend.type + ")"});
    } else if (n != nullptr && s.list) {
      if (n->kind != core::ConfigNode::Kind::kList || n->list.empty()) {
        errors.push_back({n->where, field + "." + s.name, "must be a non-empty list"});
        continue;
      }
      for (const auto& item : n->list) {
        const std::string problem = item.kind == core::ConfigNode::Kind::kScalar
                                        ? s.check(item.scalar)
                                        : "must be a single value";
        if (!problem.empty()) errors.push_back({item.where, field + "." + s.name, problem});
      }
    } else if (n != nullptr && n->kind != core::ConfigNode::Kind::kScalar) {
      errors.push_back({n->where, field + "." + s.name, "must be a single value"});
    } else if (n != nullptr) {
      if (std::string problem = s.check(n->scalar); !problem.empty()) {
        errors.push_back({n->where, field + "." + s.name, problem});
      }
    }
  }
  for (const auto& [key, node] : backend.settings.map) {
    if (!allowed.contains(key)) {
      errors.push_back(
          {node.where, field + "." + key, "unknown setting for backend type " + backend.type});
    }
  }
  if (backend.type == "alb" && errors.empty()) check_alb(backend, field, errors);
  if (backend.type == "kubernetes" && kube_mode(setting(backend, "mode")).empty()) {
    check_kube(backend, field, errors);
  }
  (void)file;
  return errors;
}

std::optional<BackendWait> longest_wait(const core::BackendConfig& backend) {
  // The defaults are the settings structs' own, so the two cannot drift apart.
  core::Duration wait{0};
  std::string name;
  if (backend.type == "elb-classic") {
    wait = aws::ElbSettings{}.health_timeout;
    name = "health_timeout";
  } else if (backend.type == "alb") {
    // Only a target-group switch waits (for the maintenance group's health).
    if (setting(backend, "mode") != "target-group") return std::nullopt;
    wait = aws::AlbSettings{}.health_timeout;
    name = "health_timeout";
  } else if (backend.type == "nginx") {
    wait = nginx::NginxSettings{}.probe_timeout;
    name = "probe_timeout";
  } else if (backend.type == "haproxy") {
    wait = haproxy::HaproxySettings{}.timeout;
    name = "timeout";
  } else if (backend.type == "kubernetes") {
    wait = kube::KubeSettings{}.health_timeout;
    name = "health_timeout";
  } else if (backend.type == "log") {
    name = "delay";
  } else {
    return std::nullopt;
  }
  const core::ConfigNode* n = backend.settings.find(name);
  if (n != nullptr) {
    const auto set = core::parse_duration(n->scalar);
    if (n->kind != core::ConfigNode::Kind::kScalar || !set) return std::nullopt;  // reported
    wait = *set;
  }
  if (wait.count() == 0) return std::nullopt;
  return BackendWait{wait, name, n};
}

core::Result<std::unique_ptr<core::Backend>> DefaultBackendFactory::make(
    const core::EnvironmentConfig& env) {
  const core::BackendConfig& b = env.backend;
  if (b.type == "log") {
    core::Duration delay{0};
    if (auto d = core::parse_duration(setting(b, "delay"))) delay = *d;
    return std::unique_ptr<core::Backend>(std::make_unique<LogBackend>(
        resolve_path(b.where.file, setting(b, "path")), env.name, clock_, delay));
  }
  if (b.type == "haproxy") {
    haproxy::HaproxySettings s;
    s.socket = setting(b, "socket");
    if (!s.socket.empty() && s.socket.front() != '/' && s.socket.find(':') == std::string::npos) {
      s.socket = resolve_path(b.where.file, s.socket);
    }
    s.map = setting(b, "map");
    s.key = setting(b, "key").empty() ? env.name : setting(b, "key");
    if (!setting(b, "value").empty()) s.value = setting(b, "value");
    if (auto t = core::parse_duration(setting(b, "timeout"))) {
      s.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
    }
    if (!haproxy::safe_token(s.key)) {
      return core::Error::config("environment " + env.name + ": '" + s.key +
                                 "' cannot be a HAProxy map key; set backend.key");
    }
    return std::unique_ptr<core::Backend>(std::make_unique<haproxy::HaproxyBackend>(s));
  }
  if (b.type == "nginx") {
    nginx::NginxSettings s;
    s.environment = env.name;
    s.state_file = setting(b, "state_file");
    s.probe = setting(b, "probe");
    if (auto t = core::parse_duration(setting(b, "probe_timeout"))) {
      s.probe_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
    }
    s.page_dir = setting(b, "page_dir");
    if (!s.page_dir.empty()) {
      if (!nginx_pages_) {
        return core::Error::config("environment " + env.name +
                                   ": this command cannot write nginx page files (page_dir)");
      }
      nginx::PageSource src;
      if (!setting(b, "page_file").empty()) {
        src.page_file = resolve_path(b.where.file, setting(b, "page_file"));
      }
      if (!setting(b, "assets").empty()) {
        src.assets_dir = resolve_path(b.where.file, setting(b, "assets"));
      }
      if (auto t = core::parse_duration(setting(b, "retry_after"))) {
        src.retry_after = std::chrono::duration_cast<std::chrono::seconds>(*t);
      }
      s.render_page = [build = nginx_pages_, src](const core::SetSwitch& step) {
        return build(src, step);
      };
    }
    return std::unique_ptr<core::Backend>(std::make_unique<nginx::NginxBackend>(s));
  }
  if (b.type == "alb") {
    if (aws_ == nullptr) return core::Error::internal("alb backend without AWS context");
    aws::AlbSettings s;
    s.environment = env.name;
    s.listeners = list_setting(b, "listeners");
    if (!setting(b, "mode").empty()) s.mode = setting(b, "mode");
    s.target_group = setting(b, "target_group");
    s.hosts = list_setting(b, "hosts");
    s.bypass_cidrs = list_setting(b, "bypass_cidrs");
    s.bypass_secret = setting(b, "bypass_secret");
    if (!setting(b, "status_code").empty()) s.status_code = setting(b, "status_code");
    if (auto t = core::parse_duration(setting(b, "health_timeout"))) s.health_timeout = *t;
    if (auto t = core::parse_duration(setting(b, "poll_interval"))) s.poll_interval = *t;
    if (!setting(b, "max_rules").empty()) {
      s.max_rules = static_cast<std::size_t>(std::stoi(setting(b, "max_rules")));
    }
    if (const std::string var = setting(b, "oidc_client_secret_env"); !var.empty()) {
      const char* secret = std::getenv(var.c_str());
      if (secret == nullptr || *secret == '\0') {
        return core::Error::config("environment " + env.name + ": oidc_client_secret_env names " +
                                   var + ", which is not set");
      }
      s.oidc_client_secret = secret;
    }
    s.random_token = aws::random_token;
    if (s.mode == "fixed-response") {
      auto page = alb_page(b);
      if (!page) return page.error();
      s.page = *page;
    }
    aws::AwsContext* context = aws_;
    s.deadline = [context] { return context->deadline(); };
    auto client = aws_->client(aws::elbv2_service(), setting(b, "region"));
    if (!client) return client.error();
    return std::unique_ptr<core::Backend>(
        std::make_unique<aws::AlbBackend>(s, **client, aws_->sleeper()));
  }
  if (b.type == "kubernetes") {
    if (!kube_) {
      return core::Error::config("environment " + env.name +
                                 ": this program was built without a Kubernetes client");
    }
    kube::KubeSettings s;
    s.environment = env.name;
    s.ns = setting(b, "namespace");
    s.mode = setting(b, "mode");
    s.name = setting(b, s.mode == "service"     ? "service"
                        : s.mode == "httproute" ? "route"
                                                : "ingress");
    s.page_service = setting(b, "page_service");
    if (!setting(b, "page_port").empty()) s.page_port = std::stoi(setting(b, "page_port"));
    s.paths = list_setting(b, "paths");
    if (!setting(b, "bypass_header").empty()) s.bypass_header = setting(b, "bypass_header");
    s.bypass_secret = setting(b, "bypass_secret");
    if (!setting(b, "min_ready").empty()) s.min_ready = std::stoi(setting(b, "min_ready"));
    if (auto t = core::parse_duration(setting(b, "health_timeout"))) {
      s.health_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
    }
    if (auto t = core::parse_duration(setting(b, "poll_interval"))) {
      s.poll_interval = std::chrono::duration_cast<std::chrono::milliseconds>(*t);
    }
    std::string kubeconfig = setting(b, "kubeconfig");
    if (!kubeconfig.empty()) kubeconfig = resolve_path(b.where.file, kubeconfig);
    auto api = kube_(kubeconfig, setting(b, "context"));
    if (!api) return api.error().with_context("environment " + env.name + ": kubernetes");
    return std::unique_ptr<core::Backend>(
        std::make_unique<kube::KubeBackend>(s, std::move(*api), nullptr));
  }
  if (b.type == "elb-classic") {
    if (aws_ == nullptr) return core::Error::internal("elb-classic backend without AWS context");
    aws::ElbSettings s;
    s.load_balancer = setting(b, "load_balancer");
    s.auto_scaling_group = setting(b, "auto_scaling_group");
    if (const core::ConfigNode* ids = b.settings.find("page_instances")) {
      for (const auto& id : ids->list) s.page_instances.push_back(id.scalar);
    }
    if (!setting(b, "min_healthy").empty()) s.min_healthy = std::stoi(setting(b, "min_healthy"));
    if (auto t = core::parse_duration(setting(b, "health_timeout"))) s.health_timeout = *t;
    if (auto t = core::parse_duration(setting(b, "poll_interval"))) s.poll_interval = *t;
    aws::AwsContext* context = aws_;
    s.deadline = [context] { return context->deadline(); };
    auto elb = aws_->client(aws::elb_service(), setting(b, "region"));
    if (!elb) return elb.error();
    auto asg = aws_->client(aws::autoscaling_service(), setting(b, "region"));
    if (!asg) return asg.error();
    auto ec2 = aws_->client(aws::ec2_service(), setting(b, "region"));
    if (!ec2) return ec2.error();
    return std::unique_ptr<core::Backend>(
        std::make_unique<aws::ElbClassicBackend>(s, **elb, **asg, **ec2, aws_->sleeper()));
  }
  return core::Error::config("environment " + env.name + ": unknown backend type '" + b.type + "'");
}

}  // namespace intermission::adapters
