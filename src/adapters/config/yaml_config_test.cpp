#include "adapters/config/yaml_config.h"

#include <gtest/gtest.h>

namespace intermission::adapters {
namespace {

constexpr const char* kValid = R"(# a full example
store:
  type: sqlite
  path: state/intermission.db
defaults:
  max_duration: 90m
  failure_policy: hold
routes:
  - deployment_group: "*-*"
    environment: "{1}"
  - application: Portal
    environment: staging
environments:
  prod:
    backend:
      type: log
      path: /var/log/steps.log
    failure_policy: lift
    failure_grace: 2m
    skip_creators: [autoscaling]
  staging:
    backend: {type: log, path: steps.log}
    unknown_creator: ignore
)";

std::string all_errors(const LoadedConfig& c) {
  std::string out;
  for (const auto& e : c.errors) out += e.to_string() + "\n";
  return out;
}

TEST(YamlConfig, ZeroAndAbsurdDurationsAreRefusedWithTheReasonZeroGraceIsAllowed) {
  const LoadedConfig c = parse_config(R"(defaults:
  max_duration: 0s
  failure_grace: 0s
store: {lease: 99999999d}
environments:
  prod:
    backend: {type: log, path: steps.log}
)",
                                          "z.yaml");
  const std::string text = all_errors(c);
  EXPECT_NE(text.find("z.yaml:2:17: defaults.max_duration: '0s' must be longer than 0s"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("failure_grace"), std::string::npos) << "0s grace: lift at once" << text;
  EXPECT_NE(text.find("store.lease: '99999999d' is longer than"), std::string::npos) << text;
}

// The switching lease is renewed before each backend step, not during one: a lease no longer
// than a step's longest wait (a health wait, a probe, a HAProxy command) could run out while
// its holder still waits, and another process would switch the same backend at the same time.
TEST(YamlConfig, ALeaseNotLongerThanABackendWaitIsRefused) {
  const LoadedConfig c = parse_config(R"(store:
  lease: 5m
environments:
  prod:
    backend:
      type: elb-classic
      load_balancer: lb
      auto_scaling_group: asg
      page_instances: [i-1]
  staging:
    backend: {type: haproxy, socket: /run/h.sock, map: m, timeout: 5m}
  qa:
    backend: {type: alb, listeners: ["arn:aws:x:listener/a"], mode: target-group,
              target_group: tg, health_timeout: 4m}
  dev:
    backend: {type: nginx, state_file: /x, probe: "http://a/", probe_timeout: 3s}
  fixed:
    backend: {type: alb, listeners: ["arn:aws:x:listener/a"], health_timeout: 1h}
  log:
    backend: {type: log, path: steps.log, delay: 4m59s}
)",
                                      "l.yaml");
  const std::string text = all_errors(c);
  EXPECT_NE(text.find("l.yaml:2:10: store.lease: 5m is not longer than "
                      "environments.prod.backend.health_timeout (10m, the default of "
                      "elb-classic): the lease is renewed only between backend steps"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("l.yaml:2:10: store.lease: 5m is not longer than "
                      "environments.staging.backend.timeout (5m, l.yaml line 11)"),
            std::string::npos)
      << text;
  EXPECT_EQ(c.errors.size(), 2u) << "a 4m health wait, a 3s probe, a 4m59s delay fit; an ALB in "
                                    "fixed-response mode waits for no health"
                                 << text;

  // The default lease (15m): the error is at the wait's line.
  const LoadedConfig d = parse_config(R"(environments:
  prod:
    backend:
      type: alb
      listeners: ["arn:aws:x:listener/a"]
      mode: target-group
      target_group: tg
      health_timeout: 15m
)",
                                      "d.yaml");
  const std::string dtext = all_errors(d);
  EXPECT_NE(dtext.find("d.yaml:8:23: store.lease: 15m (the default) is not longer than "
                       "environments.prod.backend.health_timeout (15m, d.yaml line 8)"),
            std::string::npos)
      << dtext;
  EXPECT_EQ(d.errors.size(), 1u) << dtext;
  EXPECT_TRUE(parse_config(R"(store: {lease: 16m}
environments:
  prod:
    backend: {type: alb, listeners: ["arn:aws:x:listener/a"], mode: target-group,
              target_group: tg, health_timeout: 15m}
)",
                           "e.yaml")
                  .errors.empty());
}

TEST(YamlConfig, ValidFileBecomesTheModel) {
  const auto c = parse_config(kValid, "/etc/intermission/config.yaml");
  ASSERT_TRUE(c.errors.empty()) << all_errors(c);
  EXPECT_EQ(c.config.store.path, "/etc/intermission/state/intermission.db");
  ASSERT_EQ(c.config.routes.size(), 2u);
  EXPECT_EQ(c.config.routes[1].deployment_group, "*");
  const auto& prod = c.config.environments.at("prod");
  EXPECT_EQ(prod.max_duration, std::chrono::minutes(90));  // from defaults
  EXPECT_EQ(prod.failure_policy, core::FailurePolicy::kLift);  // overridden
  EXPECT_EQ(prod.failure_grace, std::chrono::minutes(2));
  EXPECT_EQ(prod.skip_creators, std::vector<std::string>{"autoscaling"});
  EXPECT_EQ(prod.backend.type, "log");
  const auto& staging = c.config.environments.at("staging");
  EXPECT_EQ(staging.failure_policy, core::FailurePolicy::kHold);
  EXPECT_EQ(staging.unknown_creator, core::UnknownCreatorPolicy::kIgnore);
  EXPECT_EQ(
      staging.skip_creators,
      (std::vector<std::string>{"autoscaling", "autoscalingTermination", "CodeDeployAutoUpdate"}))
      << "the built-in default";
}

TEST(YamlConfig, EveryMistakeIsReportedWithLineAndField) {
  const auto c = parse_config(R"(store:
  type: postgres
defaults:
  max_duration: 30
  colour: blue
routes:
  - deployment_group: "*"
    environment: "{2}"
  - environment: qa
environments:
  prod:
    backend:
      type: haproxi
  staging:
    backend:
      type: log
      pth: x
    failure_policy: maybe
)",
                              "c.yaml");
  const std::string text = all_errors(c);
  EXPECT_NE(text.find("c.yaml:2:9: store.type: 'postgres' is not a known store"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("c.yaml:4:17: defaults.max_duration: '30' is not a duration"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("c.yaml:5:3: defaults.colour: unknown field"), std::string::npos) << text;
  EXPECT_NE(text.find("c.yaml:8:18: routes[0].environment: placeholder {2}"), std::string::npos)
      << text;
  EXPECT_NE(text.find("c.yaml:9:18: routes[1].environment: 'qa' is not one of the configured"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("c.yaml:13:13: environments.prod.backend.type: 'haproxi' is not a known"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("environments.staging.backend.path: missing"), std::string::npos) << text;
  EXPECT_NE(text.find("c.yaml:17:12: environments.staging.backend.pth: unknown setting"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("c.yaml:18:21: environments.staging.failure_policy: 'maybe'"),
            std::string::npos)
      << text;
  EXPECT_EQ(c.errors.size(), 9u) << text;
}

TEST(YamlConfig, KubernetesBackendMistakesNameFileLineAndField) {
  const auto c = parse_config(R"(environments:
  prod:
    backend:
      type: kubernetes
      namespace: Web
      mode: service
      route: shop
      page_service: page
      min_ready: 0
      bypass_secret: s3cret
  staging:
    backend:
      type: kubernetes
      namespace: web
      mode: gateway
      page_service: page
  qa:
    backend:
      type: kubernetes
      namespace: web
      mode: httproute
      route: shop
      page_service: page
      paths: [/api]
      health_timeout: 5
  dev:
    backend: {type: kubernetes, namespace: web, mode: service, service: app, page_service: page,
              bypass_secret: x, kubeconfig: kc.yaml, context: dev, poll_interval: 1s}
)",
                              "k.yaml");
  const std::string text = all_errors(c);
  for (const char* want : {
           "k.yaml:5:18: environments.prod.backend.namespace: 'Web' is not a Kubernetes name",
           "k.yaml:9:18: environments.prod.backend.min_ready: '0' is not a whole number",
           "k.yaml:15:13: environments.staging.backend.mode: 'gateway' is not service, httproute",
           "k.yaml:24:14: environments.qa.backend.paths: only for mode ingress",
           "k.yaml:25:23: environments.qa.backend.health_timeout: '5' is not a duration",
           "k.yaml:28:30: environments.dev.backend.bypass_secret: only for mode httproute",
           "environments.prod.backend.service: missing (required by mode service",
           "k.yaml:7:14: environments.prod.backend.route: only for mode httproute",
           "k.yaml:10:22: environments.prod.backend.bypass_secret: only for mode httproute",
       }) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  EXPECT_EQ(c.errors.size(), 9u) << text;
}

TEST(YamlConfig, TheKubernetesStoreTakesANamespaceKubeconfigAndContext) {
  const auto c = parse_config(R"(store: {type: kubernetes, namespace: ops, kubeconfig: kube/config, context: prod}
environments:
  prod:
    backend: {type: log, path: steps.log}
)",
                              "/etc/intermission/config.yaml");
  ASSERT_TRUE(c.errors.empty()) << all_errors(c);
  EXPECT_EQ(c.config.store.type, "kubernetes");
  EXPECT_EQ(c.config.store.namespace_name, "ops");
  EXPECT_EQ(c.config.store.kubeconfig, "/etc/intermission/kube/config");
  EXPECT_EQ(c.config.store.context, "prod");
  const auto bad = parse_config(R"(store: {type: kubernetes, namespace: Ops_1}
environments:
  prod:
    backend: {type: log, path: steps.log}
)",
                                "c.yaml");
  EXPECT_NE(all_errors(bad).find("store.namespace: 'Ops_1' is not a Kubernetes namespace name"),
            std::string::npos)
      << all_errors(bad);
  const auto misplaced = parse_config(R"(store: {type: sqlite, namespace: ops}
environments:
  prod:
    backend: {type: log, path: steps.log}
)",
                                      "c.yaml");
  EXPECT_NE(all_errors(misplaced).find("namespace, kubeconfig and context are for the kubernetes"),
            std::string::npos)
      << all_errors(misplaced);
}

// A key given twice in a mapping is a mistake, wherever it is: which copy won depended on the
// field (the first for most settings, the last for backend settings and a whole environment).
TEST(YamlConfig, ARepeatedKeyIsAMistakeWithFileLineAndColumn) {
  const auto c = parse_config(R"(store:
  path: a.db
  path: b.db
environments:
  prod:
    backend: {type: log, path: one.log, path: two.log}
    max_duration: 1h
    max_duration: 2h
  staging:
    backend: {type: log}
  prod:
    backend: {type: log}
routes:
  - {application: a, environment: prod, application: b}
)",
                              "dup.yaml");
  const std::string text = all_errors(c);
  EXPECT_NE(text.find("dup.yaml:3:3: store.path: repeated key (first at line 2, column 3)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dup.yaml:6:41: environments.prod.backend.path: repeated key"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dup.yaml:8:5: environments.prod.max_duration: repeated key"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dup.yaml:11:3: environments.prod: repeated key (first at line 5, column 3)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("dup.yaml:14:41: routes[0].application: repeated key"), std::string::npos)
      << text;
  EXPECT_TRUE(parse_config(kValid, "ok.yaml").errors.empty());
}

TEST(YamlConfig, SyntaxErrorNamesTheLine) {
  const auto c = parse_config("environments:\n  prod: [unclosed\n", "bad.yaml");
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].where.file, "bad.yaml");
  EXPECT_GT(c.errors[0].where.line, 0);
}

TEST(YamlConfig, EmptyAndMissingFiles) {
  EXPECT_NE(all_errors(parse_config("", "e.yaml")).find("empty"), std::string::npos);
  EXPECT_NE(all_errors(parse_config("store: {}\n", "e.yaml")).find("environments: missing"),
            std::string::npos);
  const auto missing = load_config_file("/nonexistent/intermission.yaml");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_NE(missing.errors[0].to_string().find("/nonexistent/intermission.yaml: cannot read"),
            std::string::npos);
}

TEST(YamlConfig, ServeAdminHostsAndStatusToken) {
  const auto c = parse_config(R"(serve:
  admin_hosts: [ops.example.internal, 10.0.0.5]
  status_requires_token: true
environments:
  prod: {backend: {type: log, path: steps.log}}
)",
                              "/etc/intermission/config.yaml");
  ASSERT_TRUE(c.errors.empty()) << all_errors(c);
  EXPECT_EQ(c.config.serve.admin_hosts,
            (std::vector<std::string>{"ops.example.internal", "10.0.0.5"}));
  EXPECT_TRUE(c.config.serve.status_requires_token);
  EXPECT_FALSE(parse_config("environments: {prod: {backend: {type: log, path: x}}}\n", "c.yaml")
                   .config.serve.status_requires_token)
      << "off by default";

  const auto bad = parse_config(R"(serve:
  admin_hosts: evil.example
  status_requires_token: maybe
environments:
  prod: {backend: {type: log, path: steps.log}}
)",
                                "c.yaml");
  const std::string errors = all_errors(bad);
  EXPECT_NE(errors.find("serve.admin_hosts"), std::string::npos) << errors;
  EXPECT_NE(errors.find("serve.status_requires_token"), std::string::npos) << errors;
}

TEST(YamlConfig, ServeNativeWebhooks) {
  const auto c = parse_config(R"(serve:
  flux:
    secret_file: secrets/flux
    objects: {Kustomization/apps/webapp: prod, HelmRelease/web/podinfo: prod}
  argocd: {token_file: /run/argocd-token}
  github:
    secret_file: gh
    environments: {production: prod}
environments:
  prod: {backend: {type: log, path: steps.log}}
)",
                              "/etc/intermission/config.yaml");
  ASSERT_TRUE(c.errors.empty()) << all_errors(c);
  const auto& s = c.config.serve;
  EXPECT_EQ(s.flux_secret_file, "/etc/intermission/secrets/flux");
  EXPECT_EQ(s.flux_objects, (std::map<std::string, std::string>{
                                {"Kustomization/apps/webapp", "prod"}, {"HelmRelease/web/podinfo", "prod"}}));
  EXPECT_EQ(s.argocd_token_file, "/run/argocd-token");
  EXPECT_EQ(s.github_secret_file, "/etc/intermission/gh");
  EXPECT_EQ(s.github_environments, (std::map<std::string, std::string>{{"production", "prod"}}));

  const auto bad = parse_config(R"(serve:
  flux:
    objects: {webapp: prod, Kustomization/apps/x: nowhere}
    secret: inline
  github: {environments: [production]}
environments:
  prod: {backend: {type: log, path: steps.log}}
)",
                                "c.yaml");
  const std::string errors = all_errors(bad);
  EXPECT_NE(errors.find("'webapp' is not Kind/namespace/name"), std::string::npos) << errors;
  EXPECT_NE(errors.find("'nowhere' is not a configured environment"), std::string::npos) << errors;
  EXPECT_NE(errors.find("serve.flux"), std::string::npos) << errors;
  EXPECT_NE(errors.find("serve.github.environments"), std::string::npos) << errors;
}

}  // namespace
}  // namespace intermission::adapters

namespace intermission::adapters {
namespace {

constexpr const char* kEnvs = R"(environments:
  prod:
    backend: {type: log, path: steps.log}
  staging:
    backend: {type: log, path: steps.log}
)";

TEST(YamlConfig, NotificationsAreReadWithDefaults) {
  const LoadedConfig c = parse_config(std::string(R"(notifications:
  stuck_after: 5m
  timeout: 2s
  attempts: 3
  targets:
    - type: slack
      url_env: SLACK_URL
      events: [switched-on, switched-off]
    - type: webhook
      name: ops
      url: https://ops.example.com/hooks/intermission
      secret_file: secrets/ops
      environments: [prod]
)") + kEnvs,
                                      "/etc/intermission/n.yaml");
  ASSERT_TRUE(c.errors.empty()) << all_errors(c);
  const core::NotificationsConfig& n = c.config.notifications;
  EXPECT_EQ(n.stuck_after, std::chrono::minutes(5));
  EXPECT_EQ(n.timeout, std::chrono::seconds(2));
  EXPECT_EQ(n.attempts, 3);
  EXPECT_EQ(n.backoff, std::chrono::seconds(1)) << "the default";
  ASSERT_EQ(n.targets.size(), 2u);
  EXPECT_EQ(n.targets[0].name, "slack-0");
  EXPECT_EQ(n.targets[0].url_env, "SLACK_URL");
  EXPECT_EQ(n.targets[0].events, (std::vector<std::string>{"switched-on", "switched-off"}));
  EXPECT_EQ(n.targets[1].name, "ops");
  EXPECT_EQ(n.targets[1].url, "https://ops.example.com/hooks/intermission");
  EXPECT_EQ(n.targets[1].secret_file, "/etc/intermission/secrets/ops");
  EXPECT_EQ(n.targets[1].environments, std::vector<std::string>{"prod"});
}

TEST(YamlConfig, NotificationMistakesNameTheLineAndField) {
  const LoadedConfig c = parse_config(std::string(R"(notifications:
  attempts: 0
  targets:
    - type: slack
      url: ftp://example.com/x
    - type: webhook
      url: http://example.com/x
    - type: teams
      url_env: A
      url_file: b
    - type: slack
      url: http://example.com/y
      events: [switched]
      environments: [nowhere]
      secret_env: X
)") + kEnvs,
                                      "n.yaml");
  const std::string text = all_errors(c);
  EXPECT_NE(text.find("n.yaml:2:13: notifications.attempts: must be a whole number from 1 to 20"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("n.yaml:5:12: notifications.targets[0].url: 'ftp://example.com/x' is not "
                      "an http:// or https:// URL"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("n.yaml:6:7: notifications.targets[1].secret_file: a webhook target signs"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("n.yaml:8:13: notifications.targets[2].type: 'teams' is not slack or "
                      "webhook"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("notifications.targets[2].url: give exactly one of url, url_file, url_env"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("n.yaml:13:16: notifications.targets[3].events: 'switched' is not a notice"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("n.yaml:14:22: notifications.targets[3].environments: 'nowhere' is not a "
                      "configured environment"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("a slack target has no signing secret"), std::string::npos) << text;
}

TEST(YamlConfig, NotificationUrlsMustHaveAHost) {
  for (const char* url : {"http://", "https:///path", "http://user@host/", "https://a b/"}) {
    const LoadedConfig c = parse_config(std::string("notifications:\n  targets:\n    - type: "
                                                    "slack\n      url: \"") +
                                            url + "\"\n" + kEnvs,
                                        "u.yaml");
    EXPECT_NE(all_errors(c).find("is not an http:// or https:// URL"), std::string::npos) << url;
  }
}

}  // namespace
}  // namespace intermission::adapters
