// The backend interface (one per load balancer kind) and the planner that turns
// (desired, observed) into idempotent steps. Backends only observe and execute; the core
// decides. A run that died half-way is finished by the next one, because planning always
// starts from what the load balancer looks like now.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/config.h"
#include "core/result.h"
#include "core/time.h"

namespace intermission::core {

// A backend whose maintenance state is one switch (a HAProxy map entry, the log backend).
struct SwitchObservation {
  bool on = false;
  std::string detail;     // what was seen, for people ("map entry prod=1")
  bool persisted = true;  // the durable copy (a map file on disk) agrees with `on`
};

// One enabled Availability Zone of a Classic ELB, as far as the switch cares. "Serving" means
// the load balancer would send the instance the next request: InService and not draining
// (a deregistering instance is reported InService while it drains; aws-behaviour.md §1).
struct ElbZone {
  std::string name;
  int page_configured = 0;  // configured page instances in this zone
  int page_serving = 0;
  int app_instances = 0;  // the group's healthy instances in this zone (Auto Scaling's view)
  int app_serving = 0;
};

// A Classic ELB in front of an Auto Scaling group, with maintenance page instance(s).
struct ElbObservation {
  std::vector<std::string> page_instances;   // configured
  std::vector<std::string> page_registered;  // of those, registered and not draining
  std::vector<std::string> page_in_service;  // of those, serving
  std::vector<std::string> page_draining;    // deregistration in progress: not serving
  std::vector<std::string> page_outside;     // in zones the load balancer does not have
  bool group_attached = false;  // the group lists the load balancer as Adding/Added/InService
  std::string group_state;      // what Auto Scaling says ("" when the group does not list it)
  int app_in_service = 0;       // serving instances of the group (draining ones excluded)
  int min_app_in_service = 1;   // how many the off switch waits for (config: min_healthy)
  int app_capacity = -1;        // the group's healthy instances in enabled zones; -1 unknown
  // With cross-zone load balancing off (the default for load balancers made with the API, CLI
  // or CloudFormation), each zone's node sends its share of the users only to instances in
  // that zone (aws-behaviour.md §4).
  bool cross_zone = true;
  std::vector<ElbZone> zones;  // the enabled zones; empty when not known
  std::string detail;
};

// How many serving group instances the off switch waits for: min_healthy, bounded by what the
// group can give (a group scaled in below min_healthy), and at least one.
int effective_min_app(const ElbObservation& o);
// The page serves every zone's share of the users: one serving page instance with cross-zone
// on, one in every enabled zone with it off.
bool page_ready(const ElbObservation& o);
// The application serves again: effective_min_app() serving instances and, with cross-zone
// off, one in every zone where the group has an instance.
bool app_ready(const ElbObservation& o);
// Enabled zones that cannot get a page instance (cross-zone off and none configured there):
// switching on would answer their share of the users with the load balancer's 503.
std::vector<std::string> zones_without_page(const ElbObservation& o);

// An ALB listener rule as intermission wants it. Conditions and actions mirror the ELBv2 API
// (aws-facts.md §7); the adapter encodes them.
struct RuleCondition {
  std::string field;        // host-header | path-pattern | source-ip | http-header
  std::string header_name;  // http-header only
  std::vector<std::string> values;
};
struct RuleAction {
  // fixed-response | forward | redirect | authenticate-oidc | authenticate-cognito
  std::string type;
  std::string status_code;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, int>> target_groups;  // forward: ARN and weight
  // The other members of its ForwardConfig (target group stickiness), RedirectConfig,
  // AuthenticateOidcConfig or AuthenticateCognitoConfig, as the Query API names them
  // ("TargetGroupStickinessConfig.Enabled", "Issuer",
  // "AuthenticationRequestExtraParams.entry.1.key", ...): what a copy of a listener's default
  // action carries over. A "ClientSecret" member is sent but left out of the fingerprint.
  std::vector<std::pair<std::string, std::string>> config;
};
// Rule roles. The maintenance rule answers users; bypass rules ("bypass-...") sit above it and
// send chosen clients where the listener would; the warm-up rule (target-group mode) forwards
// to the maintenance target group under a condition no real request meets, so that the group
// is "in use" and its targets get health-checked before users are sent there
// (aws-behaviour.md §7).
inline constexpr const char* kMaintenanceRole = "maintenance";
inline constexpr const char* kWarmUpRole = "warm-up";
struct RuleSpec {
  std::string role;  // kMaintenanceRole, kWarmUpRole or "bypass-..."
  int priority = 0;
  std::vector<RuleCondition> conditions;
  std::vector<RuleAction> actions;
};
// A stable digest of a rule's conditions and actions (not its priority, not a client secret),
// kept in a tag so that an existing rule can be compared with the wanted one without parsing
// it back.
std::string fingerprint(const RuleSpec& spec);

// A rule intermission created (found by its tags on the live listener).
struct OwnedRule {
  std::string arn;
  std::string role;
  int priority = 0;
  std::string fingerprint;
};
struct AlbListener {
  std::string arn;
  // The rules maintenance needs here, priorities allocated: a wanted rule keeps the priority
  // of an owned rule with the same role and fingerprint; any other gets a priority no rule
  // holds now (so a replacement is created before the rule it replaces is deleted), with
  // every bypass rule above the maintenance rule.
  std::vector<RuleSpec> desired;
  std::vector<OwnedRule> owned;  // what is there now
};
struct AlbObservation {
  std::vector<AlbListener> listeners;
  std::string target_group;  // target-group mode: the maintenance target group
  int healthy_targets = -1;  // its healthy targets; -1 when there is none to wait for
  std::string detail;
};

// A Kubernetes object that routes users (mode "service": the application's Service and its
// selector; "httproute": a Gateway API HTTPRoute's backendRefs; "ingress": an Ingress's
// backends), pointed at the page Service during maintenance, with what it pointed at before
// kept in an annotation on the object itself for an exact restore.
struct KubeObservation {
  std::string mode;          // service | httproute | ingress
  std::string object;        // "Service web/app", for people
  std::string page_service;  // "web/maintenance"
  // The object is in its maintenance form: it points at the page, and the annotation holds
  // what it pointed at before.
  bool switched = false;
  // The maintenance form is the one wanted now (false when the config's bypass changed, or
  // someone edited the object while it was switched): written again when on.
  bool current = true;
  // The annotation is there although the object is not switched (a deployment tool re-applied
  // the object during maintenance): dropped when off, replaced when on.
  bool stale_annotation = false;
  int page_ready = 0;  // ready endpoints of the page Service
  int app_ready = -1;  // ready application pods / endpoints to go back to; -1: none to wait for
  int min_ready = 1;   // how many of each the switches wait for
  // Why the object cannot be pointed at the page at all (the page pods do not serve the port
  // the application Service targets, a Service without selector...); empty when it can.
  std::string blocker;
  std::string detail;
};

// What a backend sees right now. Each backend kind adds its own alternative.
using Observation =
    std::variant<SwitchObservation, ElbObservation, AlbObservation, KubeObservation>;

// Steps. Each is idempotent: applying it twice is the same as once.
struct SetSwitch {
  bool on = false;
  std::string reason;         // shown by backends that can (page text, map value)
  std::optional<Time> until;  // expected end, if known
};
struct RegisterInstances {  // with the load balancer
  std::vector<std::string> ids;
};
struct WaitPageInService {  // until page_ready() (every zone served by the page), or a deadline
  std::vector<std::string> ids;
};
struct DetachGroup {};  // the Auto Scaling group from the load balancer
struct AttachGroup {};
struct WaitGroupInService {  // until app_ready(): `min_count` group instances serve
  int min_count = 1;
};
struct DeregisterInstances {
  std::vector<std::string> ids;
};

struct CreateRule {
  std::string listener;
  RuleSpec spec;
};
struct DeleteRule {
  std::string listener;
  std::string rule_arn;
  std::string role;
  int priority = 0;
};
struct WaitTargetGroupHealthy {  // never switch to an empty maintenance target group
  std::string target_group;
};

// Kubernetes. The writes re-read the object and carry its resourceVersion: one that lost a
// race fails with ErrorCode::kConflict, and the controller observes and plans again.
struct WaitKubePageReady {  // the page Service has `min_ready` ready endpoints (or a blocker)
  std::string page_service;
  int min_ready = 1;
};
struct KubePointAtPage {  // write the maintenance form, keeping the original in an annotation
  std::string object;
};
struct WaitKubeAppReady {  // the application has `min_ready` ready pods / endpoints again
  std::string object;
  int min_ready = 1;
};
struct KubeRestore {  // put back what the annotation kept, exactly, and drop the annotation
  std::string object;
};

using Step = std::variant<SetSwitch, RegisterInstances, WaitPageInService, DetachGroup, AttachGroup,
                          WaitGroupInService, DeregisterInstances, CreateRule, DeleteRule,
                          WaitTargetGroupHealthy, WaitKubePageReady, KubePointAtPage,
                          WaitKubeAppReady, KubeRestore>;

// Whether what was observed amounts to maintenance on (for status): the switch is set, or
// the Auto Scaling group is detached with the page registered.
bool observed_on(const Observation& observed);

// What the backend saw, for people (status): map entries, per-zone serving counts, rules.
const std::string& observed_detail(const Observation& observed);

// One line for people: "switch maintenance on (reason: ...)".
std::string describe(const Step& step);

// What the page should say, carried into steps that can show it.
struct PageContext {
  std::string reason;
  std::optional<Time> until;
};

// The steps that take the backend from `observed` to `desired_on`, in order; empty when it is
// already there. Pure. The order is the safety argument for the Classic ELB: on = register
// the page, wait until it is InService, only then detach the group; off = attach the group,
// wait until enough of it is InService, only then deregister the page. The load balancer is
// never left without an InService instance by us.
// For the ALB: on = warm-up rules, then (target-group mode) wait for a healthy maintenance
// target, then bypass rules on every listener, then maintenance rules on every listener, and
// only then delete stale rules (maintenance first) — make before break, so a rule change never
// leaves a moment without a maintenance rule; off = delete maintenance, bypass, warm-up rules.
// For Kubernetes: on = wait until the page Service has min_ready ready endpoints, then point
// the object at it; off = wait until the application has min_ready ready pods (endpoints),
// then restore the object. A stale annotation is dropped (off) or replaced (on) by the same
// writes.
std::vector<Step> plan(bool desired_on, const Observation& observed, const PageContext& page);

// One environment's load balancer. Implementations are not required to be thread-safe; a
// Backend is used by one thread at a time.
class Backend {
 public:
  virtual ~Backend() = default;
  // Reads the live state back from the load balancer (never what was last written).
  virtual Result<Observation> observe() = 0;
  // Executes one step. Must be idempotent.
  virtual Status apply(const Step& step) = 0;
  // "haproxy map /etc/haproxy/maintenance.map key prod", for logs and status.
  [[nodiscard]] virtual std::string describe() const = 0;
};

// Makes the backend an environment's config names. Unknown types are errors.
class BackendFactory {
 public:
  virtual ~BackendFactory() = default;
  virtual Result<std::unique_ptr<Backend>> make(const EnvironmentConfig& env) = 0;
};

}  // namespace intermission::core
