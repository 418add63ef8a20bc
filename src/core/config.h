// The configuration model: what the YAML file says, after validation. Loading and the YAML
// syntax live in adapters/config; this header is the shape the core decides with.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"

namespace intermission::core {

// Where a value came from, for error messages that name the file, line and field.
struct SourceLocation {
  std::string file;
  int line = 0;  // 1-based; 0 = unknown
  int column = 0;
};

// A generic configuration tree for the parts whose schema belongs to an adapter (a backend's
// settings): the adapter that owns the `type` validates it and reports errors by location.
struct ConfigNode {
  enum class Kind { kNull, kScalar, kList, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;
  std::vector<ConfigNode> list;
  std::map<std::string, ConfigNode> map;
  SourceLocation where;

  // The child named `key` in a map, or nullptr.
  [[nodiscard]] const ConfigNode* find(const std::string& key) const;
};

// What a failed deployment does to the page.
enum class FailurePolicy {
  kLift,  // keep the page for `failure_grace` (so its rollback does not flap it), then lift
  kHold,  // keep the page until an operator lifts it (`intermission off ENV`)
};

// What to do while a deployment's creator is not known (the lookup failed or is absent).
enum class UnknownCreatorPolicy {
  kMaintain,  // count it as a user deployment (the page goes up); re-checked on every tick
  kIgnore,    // do not count it until the creator is known
};

struct BackendConfig {
  std::string type;  // "log", "haproxy", ...; the factory in adapters rejects unknown types
  ConfigNode settings;
  SourceLocation where;
};

// An environment's name: 1 to this many letters, digits, '-', '_' or '.' (it names stored
// items, ConfigMaps and metrics labels).
inline constexpr std::size_t kMaxEnvironmentName = 64;

struct EnvironmentConfig {
  std::string name;
  BackendConfig backend;
  Duration max_duration = std::chrono::hours(2);
  FailurePolicy failure_policy = FailurePolicy::kLift;
  Duration failure_grace = std::chrono::minutes(3);
  // CodeDeploy creators whose deployments are not releases: scale-out, scale-in (termination
  // hooks) and agent updates (aws-behaviour.md §6).
  std::vector<std::string> skip_creators = {"autoscaling", "autoscalingTermination",
                                            "CodeDeployAutoUpdate"};
  UnknownCreatorPolicy unknown_creator = UnknownCreatorPolicy::kMaintain;
};

// One routing rule: glob patterns over the application and deployment group names, and the
// environment they map to. The environment may use {1}, {2}, ... for the text matched by the
// '*' wildcards of `deployment_group`, and {application} / {group} for the whole names.
struct Route {
  std::string application = "*";
  std::string deployment_group = "*";
  std::string environment;
  SourceLocation where;
};

struct StoreConfig {
  std::string type = "sqlite";  // or "dynamodb", "postgresql", "kubernetes"
  std::string path;             // sqlite: the database file
  // postgresql: a libpq connection string or URI (host, dbname, user, sslmode, ...); empty =
  // the PG* environment variables, as psql takes them.
  std::string connection;
  std::string table;            // dynamodb: the table
  std::string region;           // dynamodb: overrides aws.region
  Duration audit_ttl = std::chrono::hours(24 * 90);  // dynamodb: audit items expire after
  // kubernetes: the namespace of the ConfigMaps and Leases (empty: the context's or the pod's),
  // a kubeconfig file (empty: KUBECONFIG, ~/.kube/config, in-cluster) and its context.
  std::string namespace_name;
  std::string kubeconfig;
  std::string context;
  // How long a process may switch an environment's backend before another may take over;
  // renewed before every backend step, so it must exceed the longest single step (a health
  // wait). A process that dies mid-switch holds the environment up to this long.
  Duration lease = std::chrono::minutes(15);
  SourceLocation where;
};

// AWS, when any part of the config uses it.
struct AwsConfig {
  bool present = false;         // an `aws:` section exists
  std::string region;           // empty: AWS_REGION / AWS_DEFAULT_REGION
  bool codedeploy_lookup = true;  // ask CodeDeploy for each deployment's creator and status
  int max_attempts = 6;           // per AWS call, retries included
  SourceLocation where;
};

// The `serve` daemon's listeners and secrets.
struct ServeConfig {
  bool present = false;
  std::string listen = "127.0.0.1:9300";        // SNS endpoint and webhook (public side)
  std::string admin_listen = "127.0.0.1:9301";  // operator API, status page, metrics
  std::vector<std::string> sns_topics;           // SNS topics allowed to deliver (and subscribe)
  std::string sns_ca_file;                       // TLS roots for fetching signing certificates
  std::string sns_cert_dir;                      // signing certificates kept locally (by name)
  // Secrets: this file, else the systemd credential (operator-token, webhook-secret), else
  // $INTERMISSION_OPERATOR_TOKEN / $INTERMISSION_WEBHOOK_SECRET (app/serve_secrets.h).
  std::string operator_token_file;
  std::string webhook_secret_file;
  // The native webhooks (app/serve_api.h), each with a secret of its own: this file, else the
  // systemd credential (flux-webhook-secret, argocd-webhook-token, github-webhook-secret), else
  // $INTERMISSION_FLUX_SECRET / $INTERMISSION_ARGOCD_TOKEN / $INTERMISSION_GITHUB_SECRET.
  std::string flux_secret_file;
  // Flux objects whose reconciliations are deployments: "Kind/namespace/name" -> environment.
  std::map<std::string, std::string> flux_objects;
  std::string argocd_token_file;
  std::string github_secret_file;
  // GitHub environment names -> ours; a name without an entry is used as is.
  std::map<std::string, std::string> github_environments;
  // Host names the admin listener answers to, besides localhost and loopback addresses (a
  // request with any other Host is refused: DNS rebinding).
  std::vector<std::string> admin_hosts;
  bool status_requires_token = false;  // the status page and /metrics need the token
  Duration tick_interval = std::chrono::minutes(1);
  SourceLocation where;
};

// One place notices are sent (docs/notifications.md). The URL of a Slack webhook is a secret:
// `url_file` or `url_env` keep it out of the config file.
struct NotificationTarget {
  std::string name;  // for logs, metrics and the audit trail; default "<type>-<index>"
  std::string type;  // "slack" (incoming webhook) or "webhook" (generic JSON, HMAC-signed)
  std::string url;   // exactly one of url, url_file, url_env
  std::string url_file;
  std::string url_env;
  // webhook: the HMAC key, from a file or an environment variable (one of them)
  std::string secret_file;
  std::string secret_env;
  std::vector<std::string> events;        // notice kinds (core/notice.h); empty = all
  std::vector<std::string> environments;  // empty = all
  SourceLocation where;
};

struct NotificationsConfig {
  std::vector<NotificationTarget> targets;
  // Failed convergences in a row for this long make a "switch-stuck" notice.
  Duration stuck_after = std::chrono::minutes(10);
  Duration timeout = std::chrono::seconds(5);  // per attempt, connect included
  int attempts = 5;                            // per delivery, the first included
  Duration backoff = std::chrono::seconds(1);  // the first retry's ceiling; doubles each time
  Duration backoff_cap = std::chrono::minutes(1);  // and a Retry-After is honoured up to this
  int queue = 1000;  // deliveries waiting at most; when full the oldest is dropped
  SourceLocation where;
};

struct Config {
  std::string file;
  NotificationsConfig notifications;
  ServeConfig serve;
  StoreConfig store;
  AwsConfig aws;
  std::vector<Route> routes;
  std::map<std::string, EnvironmentConfig> environments;

  [[nodiscard]] const EnvironmentConfig* environment(const std::string& name) const;
};

}  // namespace intermission::core
