#include "core/controller.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <set>
#include <utility>

#include "core/event_parser.h"
#include "testing/fakes.h"

namespace intermission::core {
namespace {

using namespace intermission::testing;  // NOLINT
using std::chrono::minutes;

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest() {
    config_.file = "test.yaml";
    EnvironmentConfig prod;
    prod.name = "prod";
    prod.backend.type = "fake";
    config_.environments["prod"] = prod;
    EnvironmentConfig staging = prod;
    staging.name = "staging";
    config_.environments["staging"] = staging;
    config_.routes = {{"*", "*-*", "{1}", {}}};
  }

  Controller controller(DeploymentLookup* lookup = nullptr, const std::string& holder = "a") {
    return Controller(
        config_, {store_, backends_, clock_, log_, lookup, holder, nullptr, nullptr, &notices_});
  }

  struct RecordingNotifier final : Notifier {
    void notify(const Notice& n) override { sent.push_back(n); }
    std::vector<NoticeKind> kinds() const {
      std::vector<NoticeKind> out;
      for (const auto& n : sent) out.push_back(n.kind);
      return out;
    }
    std::vector<Notice> sent;
  };

  static DeploymentEvent event(const std::string& id, DeploymentStatus status,
                               const std::string& group = "prod-web",
                               const std::string& message_id = "") {
    DeploymentEvent e;
    e.application = "shop";
    e.deployment_group = group;
    e.deployment_id = id;
    e.status = status;
    e.message_id = message_id.empty() ? id + "/" + std::string(to_string(status)) : message_id;
    return e;
  }

  Config config_;
  MemoryStore store_;
  FakeBackendFactory backends_;
  ManualClock clock_;
  RecordingLogger log_;
  RecordingNotifier notices_;
};

TEST_F(ControllerTest, CreatedSwitchesOnAndSucceededSwitchesOff) {
  auto c = controller();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->environment, "prod");
  EXPECT_TRUE(o->decision.on);
  ASSERT_EQ(o->applied.size(), 1u);
  EXPECT_EQ(std::get<SetSwitch>(o->applied[0]).reason, "")
      << "deployment ids and names never reach the public page";
  EXPECT_TRUE(backends_.switches["prod"].on);
  EXPECT_FALSE(backends_.switches["staging"].on);
  auto s = store_.load("prod");
  EXPECT_TRUE(s->applied.on);
  clock_.advance(minutes(4));
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kSucceeded)).ok());
  EXPECT_FALSE(backends_.switches["prod"].on);
  EXPECT_EQ(backends_.switches["prod"].applied.size(), 2u);
}

TEST_F(ControllerTest, AScheduledWindowSwitchesOnAtItsStartAndOffAtItsEnd) {
  auto c = controller();
  WindowCommand w;
  w.environment = "prod";
  w.start_in = minutes(10);
  w.duration = minutes(20);
  w.reason = "database upgrade";
  auto o = c.handle_window(w);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->note, "w1");
  EXPECT_TRUE(o->recorded);
  EXPECT_FALSE(backends_.switches["prod"].on);
  clock_.advance(minutes(10));
  ASSERT_TRUE(c.tick("prod").ok());
  EXPECT_TRUE(backends_.switches["prod"].on);
  ASSERT_FALSE(backends_.switches["prod"].applied.empty());
  EXPECT_EQ(std::get<SetSwitch>(backends_.switches["prod"].applied.back()).reason,
            "database upgrade")
      << "the window's reason is the page's message";
  clock_.advance(minutes(20));
  ASSERT_TRUE(c.tick("prod").ok());
  EXPECT_FALSE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, ARefusedWindowIsAnErrorAndChangesNothing) {
  auto c = controller();
  WindowCommand w;
  w.environment = "prod";
  w.start = clock_.now() - minutes(1);
  w.duration = minutes(20);
  const int writes = store_.writes;
  auto o = c.handle_window(w);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, ErrorCode::kRefused) << "only the window rules refuse";
  EXPECT_EQ(store_.writes, writes);
  WindowCommand latin1;
  latin1.environment = "prod";
  latin1.start_in = minutes(5);
  latin1.duration = minutes(20);
  latin1.reason = "caf\xe9 closed";
  auto text = c.handle_window(latin1);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code, ErrorCode::kRefused);
  EXPECT_NE(text.error().message.find("not valid UTF-8"), std::string::npos);
  latin1.reason = "ok";
  latin1.who = "j\xf6rg";
  EXPECT_EQ(c.handle_window(latin1).error().code, ErrorCode::kRefused);
  EXPECT_EQ(store_.writes, writes);
  w.environment = "nowhere";
  EXPECT_EQ(c.handle_window(w).error().code, ErrorCode::kNotFound);
  WindowCommand cancel;
  cancel.environment = "prod";
  cancel.action = WindowAction::kCancel;
  cancel.id = "w7";
  EXPECT_EQ(c.handle_window(cancel).error().code, ErrorCode::kNotFound);
}

TEST_F(ControllerTest, DuplicateDeliveryWritesNothingAndAppliesNothing) {
  auto c = controller();
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  const int writes = store_.writes;
  const auto applied = backends_.switches["prod"].applied.size();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->recorded);
  EXPECT_TRUE(o->applied.empty());
  EXPECT_EQ(store_.writes, writes);
  EXPECT_EQ(backends_.switches["prod"].applied.size(), applied);
}

TEST_F(ControllerTest, RetriedDeliveryFinishesASwitchThatFailedHalfWay) {
  auto c = controller();
  backends_.switches["prod"].fail_next_applies = 1;
  auto first = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_FALSE(first.ok()) << "a backend failure is an error, so SNS/Lambda retry";
  EXPECT_TRUE(first.error().retryable());
  EXPECT_FALSE(backends_.switches["prod"].on);
  // SNS redelivers the same message: the event is a duplicate, but the switch is finished.
  auto retry = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(retry.ok());
  EXPECT_FALSE(retry->recorded);
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, AStepThatLostAWriteRaceIsPlannedAgainFromAFreshObservation) {
  // A Kubernetes write carries the resourceVersion it read: a 409 means someone else wrote
  // first. The controller observes again and plans from what is there now.
  auto c = controller();
  backends_.switches["prod"].conflict_next_applies = 3;
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(backends_.switches["prod"].on);
  EXPECT_EQ(o->applied.size(), 1u);
  EXPECT_EQ(backends_.switches["prod"].observations, 5) << "one more per lost race";
  EXPECT_TRUE(log_.contains(LogLevel::kWarn, "lost a write race"));

  // A race lost again and again is an error (retryable: the next tick tries again).
  backends_.switches["prod"].conflict_next_applies = 1000;
  auto storm = c.handle(event("d-1", DeploymentStatus::kSucceeded));
  ASSERT_FALSE(storm.ok());
  EXPECT_EQ(storm.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, ManualChangeOnTheLoadBalancerIsRepairedFromObservation) {
  auto c = controller();
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  backends_.switches["prod"].on = false;  // someone flipped it by hand
  auto o = c.reconcile("prod");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->applied.size(), 1u);
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, DryRunPlansButChangesNothing) {
  auto c = controller();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated), /*dry_run=*/true);
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(o->planned.size(), 1u);
  EXPECT_TRUE(std::get<SetSwitch>(o->planned[0]).on);
  EXPECT_TRUE(o->applied.empty());
  EXPECT_EQ(store_.writes, 0);
  EXPECT_FALSE(backends_.switches["prod"].on);
  EXPECT_TRUE(backends_.switches["prod"].applied.empty());
}

TEST_F(ControllerTest, UnroutedAndUnconfiguredAreIgnoredNotErrors) {
  auto c = controller();
  auto nodash = c.handle(event("d-1", DeploymentStatus::kCreated, "nodash"));
  ASSERT_TRUE(nodash.ok());
  EXPECT_TRUE(nodash->ignored);
  auto unknown_env = c.handle(event("d-2", DeploymentStatus::kCreated, "qa-web"));
  ASSERT_TRUE(unknown_env.ok());
  EXPECT_TRUE(unknown_env->ignored);
  EXPECT_NE(unknown_env->note.find("'qa'"), std::string::npos);
  EXPECT_TRUE(log_.contains(LogLevel::kWarn, "not configured"));
  EXPECT_EQ(store_.writes, 0);
}

// Each record keeps its id, application and group in the one stored item: one that is longer
// than any deployment tool makes is malformed input, logged and acknowledged, nothing kept.
TEST_F(ControllerTest, ADeploymentWithAnOverlongFieldIsIgnoredAndNothingKept) {
  auto c = controller();
  auto fits = event(std::string(kMaxDeploymentText, 'd'), DeploymentStatus::kCreated, "prod-web",
                    std::string(kMaxMessageId, 'm'));
  auto id = event(std::string(kMaxDeploymentText + 1, 'd'), DeploymentStatus::kCreated);
  auto app = event("d-1", DeploymentStatus::kCreated);
  app.application = "shop" + std::string(kMaxDeploymentText, 'p');
  auto group =
      event("d-2", DeploymentStatus::kCreated, "prod-" + std::string(kMaxDeploymentText, 'w'));
  for (const auto& [e, field] :
       {std::pair{id, "deployment id"}, {app, "application"}, {group, "deployment group"}}) {
    auto o = c.handle(e);
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_TRUE(o->ignored) << field;
    EXPECT_NE(o->note.find(field), std::string::npos) << o->note;
    EXPECT_NE(o->note.find("512"), std::string::npos) << o->note;
  }
  auto message =
      event("d-3", DeploymentStatus::kCreated, "prod-web", std::string(kMaxMessageId + 1, 'm'));
  auto control = event("d-4\n", DeploymentStatus::kCreated);
  for (const auto& [e, words] :
       {std::pair{message, "message id is"}, {control, "control character"}}) {
    auto o = c.handle(e);
    ASSERT_TRUE(o.ok()) << o.error().message;
    EXPECT_TRUE(o->ignored);
    EXPECT_NE(o->note.find(words), std::string::npos) << o->note;
  }
  EXPECT_EQ(store_.writes, 0);
  EXPECT_TRUE(log_.contains(LogLevel::kError, "a deployment may carry"));
  auto o = c.handle(fits);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->ignored) << o->note;
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, CreatorFromLookupSkipsAutoscalingDeployments) {
  FakeLookup lookup;
  lookup.known["d-scale"] =
      DeploymentInfo{"d-scale", DeploymentStatus::kInProgress, "autoscaling", std::nullopt};
  auto c = controller(&lookup);
  auto o = c.handle(event("d-scale", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->decision.on);
  EXPECT_FALSE(backends_.switches["prod"].on);
  EXPECT_EQ(lookup.calls, 1);
}

TEST_F(ControllerTest, LookupDownUsesTheUnknownCreatorPolicyAndTickHeals) {
  FakeLookup lookup;
  lookup.unavailable = true;
  auto c = controller(&lookup);
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  EXPECT_TRUE(backends_.switches["prod"].on) << "default: unknown creator counts";
  EXPECT_TRUE(log_.contains(LogLevel::kWarn, "creator lookup failed"));
  // CodeDeploy answers again on the next tick: it was a scale-out, and it is over anyway.
  lookup.unavailable = false;
  lookup.known["d-1"] =
      DeploymentInfo{"d-1", DeploymentStatus::kSucceeded, "autoscaling", std::nullopt};
  ASSERT_TRUE(c.tick("prod").ok());
  EXPECT_FALSE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, ADeploymentFromAWebhookIsNeverLookedUpInCodeDeploy) {
  // Its id is the pipeline's (a GitHub deployment, an Argo CD sync), not CodeDeploy's: asking
  // CodeDeploy about it on every tick only logs a failure, or, should the id happen to be a
  // CodeDeploy id, applies another deployment's status to it.
  FakeLookup lookup;
  lookup.known["d-1"] =
      DeploymentInfo{"d-1", DeploymentStatus::kSucceeded, "someone", std::nullopt};
  auto c = controller(&lookup);
  auto e = event("d-1", DeploymentStatus::kInProgress);
  e.source = EventSource::kWebhook;
  e.environment = "prod";
  e.creator = "github";
  ASSERT_TRUE(c.handle(e).ok());
  EXPECT_TRUE(backends_.switches["prod"].on);
  ASSERT_TRUE(c.tick("prod").ok());
  EXPECT_EQ(lookup.calls, 0);
  EXPECT_TRUE(backends_.switches["prod"].on) << "only the pipeline ends its deployment";
  // The record keeps where it came from across the store.
  auto s = store_.load("prod");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->deployments.at("d-1").codedeploy);
}

TEST_F(ControllerTest, TickExpiresAStuckDeploymentAndLiftsThePage) {
  auto c = controller();
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  clock_.advance(config_.environments["prod"].max_duration);
  auto o = c.tick("prod");
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(backends_.switches["prod"].on);
  EXPECT_TRUE(log_.contains(LogLevel::kError, "max_duration"));
  bool audited = false;
  for (const auto& a : store_.all_audit) audited = audited || a.kind == "expired";
  EXPECT_TRUE(audited);
}

TEST_F(ControllerTest, OperatorCommandsNeedAConfiguredEnvironment) {
  auto c = controller();
  OperatorCommand cmd;
  cmd.environment = "nope";
  auto o = c.handle(cmd);
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, ErrorCode::kNotFound);
  cmd.environment = "staging";
  cmd.reason = "db";
  ASSERT_TRUE(c.handle(cmd).ok());
  EXPECT_TRUE(backends_.switches["staging"].on);
  const auto& step = std::get<SetSwitch>(backends_.switches["staging"].applied.back());
  EXPECT_EQ(step.reason, "db") << "the operator's words reach the page";
}

// The core checks every operator command itself, whichever front end built it: one the CLI
// would refuse is refused here too, before anything is written.
TEST_F(ControllerTest, ARefusedOperatorCommandIsAnErrorAndChangesNothing) {
  auto c = controller();
  const int writes = store_.writes;
  OperatorCommand past;
  past.environment = "prod";
  past.until = clock_.now() - minutes(1);
  EXPECT_FALSE(c.check(past).ok());
  for (const auto* cmd : {&past}) {
    auto o = c.handle(*cmd);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.error().code, ErrorCode::kRefused);
    auto r = c.record(*cmd);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kRefused);
  }
  OperatorCommand latin1;
  latin1.environment = "prod";
  latin1.reason = "caf\xe9 closed";
  EXPECT_EQ(c.handle(latin1).error().code, ErrorCode::kRefused);
  EXPECT_EQ(store_.writes, writes);
  EXPECT_FALSE(backends_.switches["prod"].on);
  OperatorCommand fine = latin1;
  fine.reason = "caf\xc3\xa9 closed";
  EXPECT_TRUE(c.check(fine).ok());
  EXPECT_TRUE(c.check(event("d-1", DeploymentStatus::kCreated)).ok());
  ASSERT_TRUE(c.handle(fine).ok());
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, ConflictsAreRetriedFromAFreshRead) {
  auto c = controller();
  store_.conflicts_to_inject = 3;
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(store_.load("prod")->deployments.contains("d-1"));
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, EndlessConflictsAreAnErrorNotALoop) {
  auto c = controller();
  store_.conflicts_to_inject = 1000;
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, ErrorCode::kConflict);
}

TEST_F(ControllerTest, TickRequestTicksEveryEnvironment) {
  auto c = controller();
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  clock_.advance(config_.environments["prod"].max_duration);
  auto all = c.handle_all(TickRequest{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_FALSE(backends_.switches["prod"].on) << "the stuck deployment expired on the tick";
}

TEST_F(ControllerTest, RecordStoresTheEventAndLeavesTheBackendForReconcile) {
  auto c = controller();
  auto o = c.record(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->recorded);
  EXPECT_TRUE(o->decision.on);
  EXPECT_EQ(backends_.switches["prod"].observations, 0) << "no backend call before the answer";
  ASSERT_TRUE(c.reconcile("prod").ok());
  EXPECT_TRUE(backends_.switches["prod"].on);
}

TEST_F(ControllerTest, AnEventThatNamesItsEnvironmentSkipsRouting) {
  auto c = controller();
  auto e = event("pipeline-7", DeploymentStatus::kInProgress, "does-not-route");
  e.environment = "staging";
  ASSERT_TRUE(c.handle(e).ok());
  EXPECT_TRUE(backends_.switches["staging"].on);
  e.environment = "nope";
  auto o = c.handle(e);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->ignored);
}

TEST_F(ControllerTest, IgnoredItemsAreLogged) {
  auto c = controller();
  auto o = c.handle(Ignored{"instance-level CodeDeploy notification"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->ignored);
  EXPECT_TRUE(log_.contains(LogLevel::kInfo, "instance-level"));
}

TEST_F(ControllerTest, LeaseHeldElsewhereRecordsButLeavesTheBackendToTheHolder) {
  const Time now = clock_.now();
  store_.leases["prod"] = Lease{"b", now + minutes(5)};
  auto c = controller();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(o->recorded);
  EXPECT_TRUE(o->deferred);
  EXPECT_TRUE(o->decision.on) << "what was decided, though another process applies it";
  EXPECT_NE(o->note.find("b is switching prod"), std::string::npos) << o->note;
  EXPECT_TRUE(o->applied.empty());
  EXPECT_EQ(backends_.switches["prod"].observations, 0) << "the backend is not even looked at";
  EXPECT_EQ(store_.leases["prod"].holder, "b") << "a live lease is not taken over";
  EXPECT_EQ(store_.load("prod")->deployments.size(), 1u);
}

TEST_F(ControllerTest, LeaseThatRanOutIsTakenOverAndGivenUpAfterwards) {
  store_.leases["prod"] = Lease{"b", clock_.now() - minutes(1)};
  auto c = controller();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_FALSE(o->deferred);
  EXPECT_TRUE(backends_.switches["prod"].on);
  EXPECT_EQ(store_.leases.count("prod"), 0u) << "released when done";
}

TEST_F(ControllerTest, LeaseIsGivenUpWhenTheBackendFails) {
  backends_.switches["prod"].fail_next_applies = 1;
  auto c = controller();
  EXPECT_FALSE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  EXPECT_EQ(store_.leases.count("prod"), 0u);
}

// Process b records "succeeded" while process a is switching on. Changes that land before a's
// last look at the ledger are caught by that look; this one lands after it, just before a
// gives the lease up: b finds the lease taken and leaves it, and a, having given it up, looks
// once more and switches off.
TEST_F(ControllerTest, ChangeRecordedAsTheHolderFinishesIsAppliedByTheHolder) {
  auto a = controller(nullptr, "a");
  auto b = controller(nullptr, "b");
  Result<Outcome> from_b = Error::internal("b did not run");
  store_.before_next_release = [&] {
    from_b = b.handle(event("d-1", DeploymentStatus::kSucceeded));
  };
  auto from_a = a.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(from_a.ok()) << from_a.error().message;
  ASSERT_TRUE(from_b.ok()) << from_b.error().message;
  EXPECT_TRUE(from_b->recorded);
  EXPECT_TRUE(from_b->deferred) << "a still held the lease";
  EXPECT_FALSE(backends_.switches["prod"].on) << "a applied b's change after its own";
  EXPECT_EQ(backends_.switches["prod"].applied.size(), 2u);
  EXPECT_FALSE(from_a->decision.on);
  EXPECT_EQ(store_.leases.count("prod"), 0u);
}

TEST_F(ControllerTest, LostLeaseStopsBeforeTheNextStep) {
  auto c = controller();
  // a takes the lease; before its renewal ahead of the first step, b has taken it over (as if
  // a's lease had run out while a was stalled).
  store_.before_next_acquire = [&] {
    store_.before_next_acquire = [&] {
      store_.leases["prod"] = Lease{"b", clock_.now() + minutes(5)};
    };
  };
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().code, ErrorCode::kConflict);
  EXPECT_NE(o.error().message.find("lost the switching lease of prod to b"), std::string::npos)
      << o.error().message;
  EXPECT_FALSE(backends_.switches["prod"].on) << "no step after the lease was lost";
  EXPECT_EQ(store_.leases["prod"].holder, "b") << "b's lease is not released by a";
  EXPECT_EQ(store_.load("prod")->deployments.size(), 1u) << "the event itself stays recorded";
}

TEST_F(ControllerTest, DryRunTakesNoLease) {
  store_.leases["prod"] = Lease{"b", clock_.now() + minutes(5)};
  auto c = controller();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated), true);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->deferred);
  EXPECT_EQ(o->planned.size(), 1u);
  EXPECT_EQ(store_.lease_calls, 0);
}

// A Classic-ELB-like backend in memory: registering the page, waiting for it, detaching the
// group, and back. `during_wait` runs inside the wait for the page (a long wait in real life).
class FakeElb final : public Backend {
 public:
  FakeElb(ElbObservation& o, std::vector<Step>& applied, std::function<void()>& during_wait)
      : o_(o), applied_(applied), during_wait_(during_wait) {}
  Result<Observation> observe() override { return Observation{o_}; }
  Status apply(const Step& step) override {
    applied_.push_back(step);
    if (const auto* r = std::get_if<RegisterInstances>(&step)) {
      for (const auto& id : r->ids) o_.page_registered.push_back(id);
    } else if (std::holds_alternative<WaitPageInService>(step)) {
      if (during_wait_) std::exchange(during_wait_, nullptr)();
      o_.page_in_service = o_.page_registered;
    } else if (std::holds_alternative<DetachGroup>(step)) {
      o_.group_attached = false;
    } else if (std::holds_alternative<AttachGroup>(step)) {
      o_.group_attached = true;
    } else if (std::holds_alternative<DeregisterInstances>(step)) {
      o_.page_registered.clear();
      o_.page_in_service.clear();
    }
    return {};
  }
  std::string describe() const override { return "fake elb"; }

 private:
  ElbObservation& o_;
  std::vector<Step>& applied_;
  std::function<void()>& during_wait_;
};

class FakeElbFactory final : public BackendFactory {
 public:
  FakeElbFactory() {
    elb.page_instances = {"i-page"};
    elb.group_attached = true;
    elb.app_in_service = 2;
  }
  Result<std::unique_ptr<Backend>> make(const EnvironmentConfig&) override {
    return std::unique_ptr<Backend>(std::make_unique<FakeElb>(elb, applied, during_wait));
  }
  ElbObservation elb;
  std::vector<Step> applied;
  std::function<void()> during_wait;
};

// Issue 12: the deployment ends while the holder waits for the page host. Detaching the group
// after the wait would be a pointless outage (and a re-attach, and a wait for health checks).
TEST_F(ControllerTest, ADecisionGoneStaleDuringAWaitIsNotApplied) {
  FakeElbFactory elbs;
  Controller a(config_, {store_, elbs, clock_, log_, nullptr, "a"});
  Controller b(config_, {store_, elbs, clock_, log_, nullptr, "b"});
  Result<Outcome> from_b = Error::internal("b did not run");
  elbs.during_wait = [&] {
    clock_.advance(minutes(3));
    from_b = b.handle(event("d-1", DeploymentStatus::kSucceeded));
  };
  auto from_a = a.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(from_a.ok()) << from_a.error().message;
  ASSERT_TRUE(from_b.ok()) << from_b.error().message;
  EXPECT_TRUE(from_b->deferred);
  for (const auto& step : elbs.applied) {
    EXPECT_FALSE(std::holds_alternative<DetachGroup>(step))
        << "the group was detached after the deployment had ended: " << describe(step);
  }
  EXPECT_TRUE(elbs.elb.group_attached);
  EXPECT_TRUE(elbs.elb.page_registered.empty()) << "and the page is taken away again";
  EXPECT_FALSE(from_a->decision.on);
  EXPECT_FALSE(store_.load("prod")->applied.on);
}

// The same with an operator: `off` recorded during the wait wins over the wait's plan.
TEST_F(ControllerTest, AnOperatorOffDuringAWaitIsApplied) {
  FakeElbFactory elbs;
  Controller a(config_, {store_, elbs, clock_, log_, nullptr, "a"});
  Controller b(config_, {store_, elbs, clock_, log_, nullptr, "b"});
  elbs.during_wait = [&] {
    OperatorCommand off;
    off.environment = "prod";
    off.action = OperatorAction::kOff;
    ASSERT_TRUE(b.handle(off).ok());
  };
  ASSERT_TRUE(a.handle(event("d-1", DeploymentStatus::kInProgress)).ok());
  EXPECT_TRUE(elbs.elb.group_attached);
  EXPECT_TRUE(elbs.elb.page_registered.empty());
}

// Issue 14: a convergence fails, and meanwhile another process recorded a change and left it
// to this holder. The holder looks at the ledger again and applies it, instead of leaving it
// to the next tick.
TEST_F(ControllerTest, AfterAFailedConvergenceTheHolderLooksAtTheLedgerAgain) {
  auto a = controller(nullptr, "a");
  auto b = controller(nullptr, "b");
  backends_.switches["prod"].fail_next_applies = 1;
  Result<Outcome> from_b = Error::internal("b did not run");
  store_.before_next_release = [&] {
    OperatorCommand on;
    on.environment = "prod";
    on.reason = "database upgrade";
    from_b = b.handle(on);
  };
  auto from_a = a.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(from_b.ok()) << from_b.error().message;
  EXPECT_TRUE(from_b->deferred);
  EXPECT_TRUE(backends_.switches["prod"].on) << "b's change was applied by a";
  ASSERT_FALSE(backends_.switches["prod"].applied.empty());
  EXPECT_EQ(std::get<SetSwitch>(backends_.switches["prod"].applied.back()).reason,
            "database upgrade");
  EXPECT_TRUE(from_a.ok()) << "converged in the end: " << from_a.error().message;
}

// The store made the write that records the switch, but its answer was lost and the retry
// found the version moved (a PostgreSQL server restarting after COMMIT, a DynamoDB PutItem
// retried after a timeout). The switch is recorded once, announced once.
TEST_F(ControllerTest, ASwitchRecordWhoseAnswerWasLostIsNotRecordedTwice) {
  auto c = controller();
  backends_.switches["prod"].after_next_apply = [&] { store_.lost_replies_to_inject = 1; };
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(backends_.switches["prod"].on);
  int switched = 0;
  for (const auto& a : store_.all_audit) switched += a.kind == "switched" ? 1 : 0;
  EXPECT_EQ(switched, 1);
  EXPECT_EQ(notices_.kinds(), std::vector<NoticeKind>{NoticeKind::kSwitchedOn});
  auto s = store_.load("prod");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->applied.on);
}

TEST_F(ControllerTest, AFailedConvergenceWithNothingNewIsStillAnError) {
  auto a = controller();
  backends_.switches["prod"].fail_next_applies = 1;
  auto o = a.handle(event("d-1", DeploymentStatus::kCreated));
  ASSERT_FALSE(o.ok()) << "SNS/Lambda retry it";
  EXPECT_FALSE(backends_.switches["prod"].on);
}

class RecordingSleeper final : public Sleeper {
 public:
  void sleep_for(Duration d) override { slept.push_back(d); }
  std::vector<Duration> slept;
};

class SeededRandom final : public Random {
 public:
  std::uint64_t next() override { return engine(); }
  std::mt19937_64 engine{42};
};

TEST_F(ControllerTest, ConflictsBackOffWithJitter) {
  RecordingSleeper sleeper;
  SeededRandom random;
  Controller::Deps deps{store_, backends_, clock_, log_, nullptr, "a"};
  deps.sleeper = &sleeper;
  deps.random = &random;
  Controller c(config_, deps);
  store_.conflicts_to_inject = 6;
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  ASSERT_EQ(sleeper.slept.size(), 6u) << "one pause after each conflict, none after success";
  std::set<Duration::rep> distinct;
  for (std::size_t i = 0; i < sleeper.slept.size(); ++i) {
    EXPECT_GE(sleeper.slept[i], Duration(1));
    EXPECT_LE(sleeper.slept[i], std::min(kCasBackoffBase * (1 << i), kCasBackoffCap)) << i;
    distinct.insert(sleeper.slept[i].count());
  }
  EXPECT_GT(distinct.size(), 3u) << "jittered, not a fixed schedule";
  store_.conflicts_to_inject = 1000;
  sleeper.slept.clear();
  EXPECT_FALSE(c.handle(event("d-2", DeploymentStatus::kCreated)).ok());
  Duration total{0};
  for (const auto d : sleeper.slept) total += d;
  EXPECT_LE(total, kCasAttempts * kCasBackoffCap) << "bounded";
  for (const auto d : sleeper.slept) EXPECT_LE(d, kCasBackoffCap);
}

}  // namespace
}  // namespace intermission::core

namespace intermission::core {
namespace {

TEST_F(ControllerTest, ASwitchIsAnnouncedOnceHoweverManyProcessesConverge) {
  auto a = controller(nullptr, "a");
  auto b = controller(nullptr, "b");
  ASSERT_TRUE(a.tick("prod").ok());
  EXPECT_TRUE(notices_.sent.empty()) << "the first record of a backend that already was off";
  ASSERT_TRUE(a.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  ASSERT_TRUE(b.reconcile("prod").ok());
  ASSERT_TRUE(a.tick("prod").ok());
  ASSERT_EQ(notices_.kinds(), std::vector<NoticeKind>{NoticeKind::kSwitchedOn});
  EXPECT_EQ(notices_.sent[0].environment, "prod");
  EXPECT_EQ(notices_.sent[0].deployment_ids, std::vector<std::string>{"d-1"});
  EXPECT_EQ(notices_.sent[0].time, clock_.now());
  clock_.advance(minutes(1));
  ASSERT_TRUE(b.handle(event("d-1", DeploymentStatus::kSucceeded)).ok());
  ASSERT_TRUE(a.reconcile("prod").ok());
  EXPECT_EQ(notices_.kinds(),
            (std::vector<NoticeKind>{NoticeKind::kSwitchedOn, NoticeKind::kSwitchedOff}));
}

TEST_F(ControllerTest, ADryRunAnnouncesNothing) {
  auto c = controller();
  auto o = c.handle(event("d-1", DeploymentStatus::kCreated), true);
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->planned.empty());
  EXPECT_TRUE(notices_.sent.empty());
}

TEST_F(ControllerTest, AFailingSwitchIsAnnouncedThenStuckAfterTheThreshold) {
  config_.notifications.stuck_after = minutes(10);
  auto c = controller();
  backends_.switches["prod"].fail_next_applies = 1000;
  EXPECT_FALSE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  ASSERT_EQ(notices_.kinds(), std::vector<NoticeKind>{NoticeKind::kSwitchFailed});
  EXPECT_TRUE(notices_.sent[0].wanted_on);
  EXPECT_FALSE(notices_.sent[0].reason.empty());
  for (int i = 0; i < 9; ++i) {
    clock_.advance(minutes(1));
    EXPECT_FALSE(c.tick("prod").ok());
  }
  EXPECT_EQ(notices_.sent.size(), 1u) << "nine minutes of failures: not stuck yet";
  clock_.advance(minutes(1));
  EXPECT_FALSE(c.tick("prod").ok());
  ASSERT_EQ(notices_.kinds(),
            (std::vector<NoticeKind>{NoticeKind::kSwitchFailed, NoticeKind::kSwitchStuck}));
  EXPECT_EQ(notices_.sent[1].failing_since, notices_.sent[0].time);
  clock_.advance(minutes(1));
  EXPECT_FALSE(c.tick("prod").ok());
  EXPECT_EQ(notices_.sent.size(), 2u);
  backends_.switches["prod"].fail_next_applies = 0;
  ASSERT_TRUE(c.tick("prod").ok());
  EXPECT_EQ(notices_.kinds().back(), NoticeKind::kSwitchedOn) << "the switch, when it works";
}

TEST_F(ControllerTest, AnExpiredDeploymentIsAnnounced) {
  auto c = controller();
  ASSERT_TRUE(c.handle(event("d-1", DeploymentStatus::kCreated)).ok());
  clock_.advance(config_.environments["prod"].max_duration);
  ASSERT_TRUE(c.tick("prod").ok());
  EXPECT_EQ(notices_.kinds(),
            (std::vector<NoticeKind>{NoticeKind::kSwitchedOn, NoticeKind::kDeploymentExpired,
                                     NoticeKind::kSwitchedOff}));
  EXPECT_EQ(notices_.sent[1].deployment_ids, std::vector<std::string>{"d-1"});
}

}  // namespace
}  // namespace intermission::core
