#include "core/backend.h"

#include <gtest/gtest.h>

namespace intermission::core {
namespace {

TEST(Planner, SwitchStepsOnlyWhenSomethingDiffers) {
  const PageContext page{"db upgrade", std::nullopt};
  EXPECT_TRUE(plan(true, SwitchObservation{true, "", true}, page).empty());
  EXPECT_TRUE(plan(false, SwitchObservation{false, "", true}, page).empty());
  const auto on = plan(true, SwitchObservation{false, "", true}, page);
  ASSERT_EQ(on.size(), 1u);
  EXPECT_TRUE(std::get<SetSwitch>(on[0]).on);
  EXPECT_EQ(std::get<SetSwitch>(on[0]).reason, "db upgrade");
  const auto off = plan(false, SwitchObservation{true, "", true}, page);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_FALSE(std::get<SetSwitch>(off[0]).on);
  EXPECT_EQ(std::get<SetSwitch>(off[0]).reason, "");
}

TEST(Planner, LiveStateRightButDurableCopyWrongIsRepaired) {
  // HAProxy switched, but the map file write failed: a reload would lose the state.
  const auto steps = plan(true, SwitchObservation{true, "", false}, PageContext{});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_TRUE(std::get<SetSwitch>(steps[0]).on);
}

ElbObservation serving_app() {
  ElbObservation o;
  o.page_instances = {"i-page"};
  o.group_attached = true;
  o.group_state = "InService";
  o.app_in_service = 2;
  return o;
}

std::vector<std::string> described(const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(describe(s));
  return out;
}

TEST(ElbPlanner, OnIsRegisterThenWaitThenDetachNeverDetachFirst) {
  const auto steps = plan(true, serving_app(), PageContext{});
  EXPECT_EQ(described(steps),
            (std::vector<std::string>{
                "register page instance(s) i-page with the load balancer",
                "wait until page instance(s) i-page serve every zone",
                "detach the Auto Scaling group from the load balancer"}));
}

TEST(ElbPlanner, OnResumesWhereAnInterruptedRunStopped) {
  ElbObservation registered = serving_app();
  registered.page_registered = {"i-page"};
  EXPECT_EQ(plan(true, registered, {}).size(), 2u) << "wait, then detach";
  registered.page_in_service = {"i-page"};
  EXPECT_EQ(described(plan(true, registered, {})),
            std::vector<std::string>{"detach the Auto Scaling group from the load balancer"});
  registered.group_attached = false;
  EXPECT_TRUE(plan(true, registered, {}).empty()) << "done: a repeated run does nothing";
}

TEST(ElbPlanner, OffIsAttachThenWaitThenDeregister) {
  ElbObservation in_maintenance;
  in_maintenance.page_instances = {"i-page", "i-page2"};
  in_maintenance.page_registered = {"i-page", "i-page2"};
  in_maintenance.page_in_service = {"i-page", "i-page2"};
  in_maintenance.min_app_in_service = 2;
  EXPECT_EQ(described(plan(false, in_maintenance, {})),
            (std::vector<std::string>{
                "attach the Auto Scaling group to the load balancer",
                "wait until 2 of the group's instances are InService",
                "deregister page instance(s) i-page, i-page2 from the load balancer"}));
  in_maintenance.group_attached = true;
  in_maintenance.app_in_service = 2;
  EXPECT_EQ(plan(false, in_maintenance, {}).size(), 1u);
  EXPECT_TRUE(plan(false, serving_app(), {}).empty());
}

TEST(ElbPlanner, ADrainingPageInstanceIsRegisteredAgainNotTrusted) {
  // A deployment starting while the page instance drains from the last switch off: it is
  // reported InService, but takes no new requests (aws-behaviour.md §1).
  ElbObservation o = serving_app();
  o.page_draining = {"i-page"};
  EXPECT_EQ(described(plan(true, o, {})),
            (std::vector<std::string>{
                "register page instance(s) i-page with the load balancer",
                "wait until page instance(s) i-page serve every zone",
                "detach the Auto Scaling group from the load balancer"}));
}

ElbObservation two_zones(bool cross_zone) {
  ElbObservation o = serving_app();
  o.page_instances = {"i-page-a", "i-page-b"};
  o.page_registered = {"i-page-a", "i-page-b"};
  o.page_in_service = {"i-page-a"};
  o.cross_zone = cross_zone;
  o.zones = {{"eu-west-1a", 1, 1, 1, 1}, {"eu-west-1b", 1, 0, 1, 1}};
  return o;
}

TEST(ElbPlanner, WithCrossZoneOffEveryZoneNeedsAServingPageInstance) {
  EXPECT_FALSE(page_ready(two_zones(false)));
  EXPECT_EQ(described(plan(true, two_zones(false), {})),
            (std::vector<std::string>{"wait until page instance(s) i-page-a, i-page-b serve every zone",
                                      "detach the Auto Scaling group from the load balancer"}));
  EXPECT_TRUE(page_ready(two_zones(true)));
  EXPECT_EQ(plan(true, two_zones(true), {}).size(), 1u) << "detach only";
  ElbObservation one_page = two_zones(false);
  one_page.page_instances = {"i-page-a"};
  one_page.page_registered = one_page.page_in_service = {};
  one_page.zones[1].page_configured = 0;
  EXPECT_EQ(zones_without_page(one_page), std::vector<std::string>{"eu-west-1b"});
  EXPECT_EQ(described(plan(true, one_page, {})),
            (std::vector<std::string>{"wait until page instance(s) i-page-a serve every zone",
                                      "detach the Auto Scaling group from the load balancer"}))
      << "nothing registered: the wait step refuses at once, naming the zone";
  EXPECT_TRUE(zones_without_page(two_zones(false)).empty());
  one_page.cross_zone = true;
  EXPECT_TRUE(zones_without_page(one_page).empty());
}

TEST(ElbPlanner, OffWaitsForEveryZoneWithGroupInstancesWhenCrossZoneIsOff) {
  ElbObservation o = two_zones(false);
  o.page_in_service = o.page_registered;
  o.zones[0].app_serving = 2;
  o.zones[1].app_serving = 0;  // its instance is still passing its first health checks
  EXPECT_FALSE(app_ready(o));
  EXPECT_EQ(plan(false, o, {}).size(), 2u) << "wait, then deregister";
  o.cross_zone = true;
  EXPECT_TRUE(app_ready(o));
  EXPECT_EQ(plan(false, o, {}).size(), 1u);
}

TEST(ElbPlanner, MinHealthyIsBoundedByWhatTheGroupCanGive) {
  ElbObservation o;
  o.page_instances = o.page_registered = o.page_in_service = {"i-page"};
  o.group_attached = true;
  o.min_app_in_service = 2;
  o.app_capacity = 1;  // scaled in to one instance during the deployment
  o.app_in_service = 1;
  EXPECT_EQ(effective_min_app(o), 1);
  EXPECT_EQ(described(plan(false, o, {})),
            std::vector<std::string>{"deregister page instance(s) i-page from the load balancer"});
  o.app_capacity = 0;
  EXPECT_EQ(effective_min_app(o), 1) << "an empty group: the page stays until one serves";
  o.app_in_service = 0;
  EXPECT_EQ(plan(false, o, {}).size(), 2u);
  o.app_capacity = -1;  // unknown: the config's number
  EXPECT_EQ(effective_min_app(o), 2);
}

RuleSpec rule(const std::string& role, int priority) {
  RuleSpec r;
  r.role = role;
  r.priority = priority;
  r.conditions = {{"path-pattern", "", {"/*"}}};
  r.actions = {{"fixed-response", "503", "text/html", "<p>back soon</p>", {}, {}}};
  return r;
}

AlbObservation listener_with(std::vector<RuleSpec> desired, std::vector<OwnedRule> owned) {
  AlbObservation o;
  o.listeners.push_back({"arn:listener/1", std::move(desired), std::move(owned)});
  return o;
}

OwnedRule owned(const RuleSpec& r, const std::string& arn) {
  return {arn, r.role, r.priority, fingerprint(r)};
}

TEST(AlbPlanner, OnCreatesBypassRulesBeforeTheMaintenanceRule) {
  const auto o = listener_with({rule("maintenance", 3), rule("bypass-header", 2)}, {});
  const auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(std::get<CreateRule>(steps[0]).spec.role, "bypass-header");
  EXPECT_EQ(std::get<CreateRule>(steps[1]).spec.role, "maintenance");
}

TEST(AlbPlanner, NothingToDoWhenTheRulesAreThereAndNothingLeftWhenOff) {
  const RuleSpec m = rule("maintenance", 1);
  const RuleSpec b = rule("bypass-cidr-1", 2);
  auto o = listener_with({m, b}, {owned(b, "arn:b"), owned(m, "arn:m")});
  EXPECT_TRUE(plan(true, o, {}).empty());
  const auto off = plan(false, o, {});
  ASSERT_EQ(off.size(), 2u);
  EXPECT_EQ(std::get<DeleteRule>(off[0]).rule_arn, "arn:m") << "maintenance goes first";
  EXPECT_EQ(std::get<DeleteRule>(off[1]).rule_arn, "arn:b");
}

TEST(AlbPlanner, ChangedOrDuplicateRulesAreReplacedAndAHandDeletedOneRecreated) {
  RuleSpec m = rule("maintenance", 2);
  RuleSpec old = rule("maintenance", 1);
  old.actions[0].body = "<p>old page</p>";
  auto o = listener_with({m}, {owned(old, "arn:old"), owned(m, "arn:dup-ok"), owned(m, "arn:dup")});
  o.listeners[0].owned[2].priority = 3;
  const auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(std::get<DeleteRule>(steps[0]).rule_arn, "arn:old");
  EXPECT_EQ(std::get<DeleteRule>(steps[1]).rule_arn, "arn:dup");
  // Deleted by hand during maintenance: the next run creates it again.
  const auto again = plan(true, listener_with({m}, {}), {});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(std::get<CreateRule>(again[0]).spec.priority, 2);
}

TEST(AlbPlanner, AChangedRuleIsCreatedBeforeTheOldOneIsDeleted) {
  // A page change: the old maintenance rule stays until its replacement exists, so there is
  // never a moment without one (a failed create leaves the old page up).
  RuleSpec page = rule("maintenance", 3);
  RuleSpec old_page = rule("maintenance", 2);
  old_page.actions[0].body = "<p>old page</p>";
  RuleSpec bypass = rule("bypass-header", 1);
  RuleSpec old_bypass = rule("bypass-header", 4);
  old_bypass.conditions[0].values = {"/old/*"};
  const auto o =
      listener_with({bypass, page}, {owned(old_page, "arn:m-old"), owned(old_bypass, "arn:b-old")});
  const auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(std::get<CreateRule>(steps[0]).spec.role, "bypass-header");
  EXPECT_EQ(std::get<CreateRule>(steps[1]).spec.role, "maintenance");
  EXPECT_EQ(std::get<DeleteRule>(steps[2]).rule_arn, "arn:m-old");
  EXPECT_EQ(std::get<DeleteRule>(steps[3]).rule_arn, "arn:b-old");
}

TEST(AlbPlanner, EveryListenerGetsItsBypassRulesBeforeAnyGetsItsMaintenanceRule) {
  AlbObservation o;
  o.listeners.push_back({"arn:listener/1", {rule("bypass-header", 1), rule("maintenance", 2)}, {}});
  o.listeners.push_back({"arn:listener/2", {rule("bypass-header", 1), rule("maintenance", 2)}, {}});
  const auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(std::get<CreateRule>(steps[0]).spec.role, "bypass-header");
  EXPECT_EQ(std::get<CreateRule>(steps[1]).spec.role, "bypass-header");
  EXPECT_EQ(std::get<CreateRule>(steps[2]).spec.role, "maintenance");
  EXPECT_EQ(std::get<CreateRule>(steps[3]).spec.role, "maintenance");
}

TEST(AlbPlanner, NeverSwitchesToAnEmptyTargetGroup) {
  auto o = listener_with({rule("maintenance", 1)}, {});
  o.target_group = "arn:tg/maintenance";
  o.healthy_targets = 0;
  const auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<WaitTargetGroupHealthy>(steps[0]));
  o.healthy_targets = 1;
  EXPECT_EQ(plan(true, o, {}).size(), 1u);
}

TEST(AlbPlanner, TheWarmUpRuleComesFirstSoThatTheGroupIsCheckedBeforeTheWait) {
  // An unused target group is never health-checked (aws-behaviour.md §7): waiting for a
  // healthy target before anything forwards to the group would wait forever.
  RuleSpec warm = rule(kWarmUpRole, 1);
  warm.conditions = {{"http-header", "X-Intermission-Warm-Up", {"k3y"}}};
  auto o = listener_with({warm, rule("bypass-header", 2), rule("maintenance", 3)}, {});
  o.target_group = "arn:tg/maintenance";
  o.healthy_targets = 0;
  auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(std::get<CreateRule>(steps[0]).spec.role, kWarmUpRole);
  EXPECT_TRUE(std::holds_alternative<WaitTargetGroupHealthy>(steps[1]));
  EXPECT_EQ(std::get<CreateRule>(steps[3]).spec.role, "maintenance");
  // Off: maintenance first, then bypass, then the warm-up rule.
  o.listeners[0].owned = {owned(warm, "arn:w"), owned(o.listeners[0].desired[1], "arn:b"),
                          owned(o.listeners[0].desired[2], "arn:m")};
  steps = plan(false, o, {});
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(std::get<DeleteRule>(steps[0]).rule_arn, "arn:m");
  EXPECT_EQ(std::get<DeleteRule>(steps[1]).rule_arn, "arn:b");
  EXPECT_EQ(std::get<DeleteRule>(steps[2]).rule_arn, "arn:w");
  EXPECT_FALSE(observed_on(AlbObservation{{{"l", {}, {owned(warm, "arn:w")}}}, "", -1, ""}))
      << "a warm-up rule alone is not maintenance";
}

TEST(AlbPlanner, FingerprintIgnoresPriorityAndClientSecretButNotContent) {
  RuleSpec oidc = rule("bypass-header", 1);
  oidc.actions[0] = {
      "authenticate-oidc", "", "", "", {}, {{"Issuer", "https://idp"}, {"ClientSecret", "a"}}};
  RuleSpec other = oidc;
  other.actions[0].config[1].second = "b";
  EXPECT_EQ(fingerprint(oidc), fingerprint(other)) << "no secret in a tag, even hashed";
  other.actions[0].config[0].second = "https://other-idp";
  EXPECT_NE(fingerprint(oidc), fingerprint(other));
}

TEST(AlbPlanner, FingerprintIgnoresPriorityButNotContent) {
  RuleSpec a = rule("maintenance", 1);
  RuleSpec b = rule("maintenance", 7);
  EXPECT_EQ(fingerprint(a), fingerprint(b));
  b.conditions[0].values = {"/api/*"};
  EXPECT_NE(fingerprint(a), fingerprint(b));
  EXPECT_EQ(fingerprint(a).size(), 16u);
}


KubeObservation kube_app_serving() {
  KubeObservation o;
  o.mode = "service";
  o.object = "Service web/app";
  o.page_service = "web/page";
  o.page_ready = 0;
  o.app_ready = 3;
  o.min_ready = 2;
  return o;
}

TEST(KubePlanner, OnWaitsForThePagePodsBeforeTheObjectIsPointedAtThem) {
  const KubeObservation o = kube_app_serving();
  EXPECT_EQ(described(plan(true, o, {})),
            (std::vector<std::string>{
                "wait until 2 pods of the page Service web/page are ready",
                "point Service web/app at the page (original kept in an annotation)"}));
  KubeObservation ready = o;
  ready.page_ready = 2;
  EXPECT_EQ(described(plan(true, ready, {})),
            std::vector<std::string>{
                "point Service web/app at the page (original kept in an annotation)"})
      << "no wait once enough page endpoints are ready";
  ready.switched = true;
  EXPECT_TRUE(plan(true, ready, {}).empty()) << "done: a repeated run does nothing";
  EXPECT_TRUE(observed_on(ready));
  EXPECT_FALSE(observed_on(o));
}

TEST(KubePlanner, ABlockerIsReportedByTheWaitAndNothingIsWritten) {
  KubeObservation o = kube_app_serving();
  o.page_ready = 5;
  o.blocker = "the page pods do not serve port 8080";
  const auto steps = plan(true, o, {});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<WaitKubePageReady>(steps[0]))
      << "the wait step refuses, so the write after it never runs";
}

TEST(KubePlanner, OffWaitsForTheApplicationBeforeRestoring) {
  KubeObservation on = kube_app_serving();
  on.switched = true;
  on.page_ready = 2;
  on.app_ready = 1;
  EXPECT_EQ(described(plan(false, on, {})),
            (std::vector<std::string>{"wait until 2 application pods behind Service web/app are ready",
                                      "restore Service web/app exactly as it was"}));
  on.app_ready = 2;
  EXPECT_EQ(plan(false, on, {}).size(), 1u);
  on.app_ready = -1;
  EXPECT_EQ(plan(false, on, {}).size(), 1u) << "-1: nothing to wait for";
  EXPECT_TRUE(plan(false, kube_app_serving(), {}).empty());
}

TEST(KubePlanner, ARewrittenObjectIsSwitchedAgainAndAStaleAnnotationDropped) {
  // A deployment tool (Argo CD self-heal) re-applied the Service during maintenance: the
  // selector is the application's again, the annotation is left over.
  KubeObservation reapplied = kube_app_serving();
  reapplied.page_ready = 2;
  reapplied.stale_annotation = true;
  EXPECT_EQ(described(plan(true, reapplied, {})),
            std::vector<std::string>{
                "point Service web/app at the page (original kept in an annotation)"});
  EXPECT_EQ(described(plan(false, reapplied, {})),
            std::vector<std::string>{"restore Service web/app exactly as it was"})
      << "no wait: the object already points at the application";
  KubeObservation edited = kube_app_serving();
  edited.switched = true;
  edited.current = false;
  edited.page_ready = 2;
  EXPECT_EQ(plan(true, edited, {}).size(), 1u) << "the maintenance form is written again";
}

}  // namespace
}  // namespace intermission::core
