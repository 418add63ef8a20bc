#include "core/ledger.h"

#include <gtest/gtest.h>

#include "core/backend.h"
#include "core/event_parser.h"
#include "core/state_codec.h"

#include <boost/json.hpp>
#include "testing/fakes.h"

namespace intermission::core {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

class LedgerTest : public ::testing::Test {
 protected:
  LedgerTest() {
    env_.name = "prod";
    state_.environment = "prod";
  }

  DeploymentEvent event(const std::string& id, DeploymentStatus status,
                        const std::string& message_id = "") {
    DeploymentEvent e;
    e.application = "shop";
    e.deployment_group = "prod-web";
    e.deployment_id = id;
    e.status = status;
    e.message_id = message_id;
    return e;
  }

  // Applies `e` at the current time and keeps the new state.
  Transition feed(const DeploymentEvent& e) {
    Transition t = apply_deployment_event(state_, e, env_, now_);
    state_ = t.state;
    return t;
  }
  Transition command(OperatorAction action, std::optional<Duration> d = std::nullopt) {
    OperatorCommand c;
    c.environment = "prod";
    c.action = action;
    c.reason = "database upgrade";
    c.who = "alice";
    c.duration = d;
    Transition t = apply_operator_command(state_, c, now_);
    state_ = t.state;
    return t;
  }
  bool on() const { return decide(state_, env_, now_).on; }

  EnvironmentConfig env_;
  EnvState state_;
  Time now_ = from_epoch_ms(1'700'000'000'000);
};

TEST_F(LedgerTest, StartTurnsMaintenanceOnAndSuccessTurnsItOff) {
  EXPECT_FALSE(on());
  EXPECT_TRUE(feed(event("d-1", DeploymentStatus::kCreated, "m1")).changed);
  EXPECT_TRUE(on());
  now_ += minutes(5);
  EXPECT_TRUE(feed(event("d-1", DeploymentStatus::kSucceeded, "m2")).changed);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, DuplicateDeliveryChangesNothingAndPlansNoStep) {
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  const EnvState before = state_;
  now_ += seconds(20);  // SNS retries 20 s later with the same MessageId
  const Transition t = feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  EXPECT_FALSE(t.changed);
  EXPECT_TRUE(t.audit.empty());
  EXPECT_NE(t.note.find("duplicate"), std::string::npos);
  EXPECT_EQ(encode_state(state_), encode_state(before));
  // The backend is already on from the first delivery: nothing to do.
  const auto steps = plan(on(), SwitchObservation{true, ""}, PageContext{});
  EXPECT_TRUE(steps.empty());
}

TEST_F(LedgerTest, SameStatusWithoutMessageIdIsAlsoADuplicate) {
  feed(event("d-1", DeploymentStatus::kInProgress));
  const Transition t = feed(event("d-1", DeploymentStatus::kInProgress));
  EXPECT_FALSE(t.changed);
  const Transition late = feed(event("d-1", DeploymentStatus::kCreated));  // reordered
  EXPECT_FALSE(late.changed);
  EXPECT_EQ(state_.deployments.at("d-1").status, DeploymentStatus::kInProgress);
}

TEST_F(LedgerTest, TerminalStatusIsFinalAgainstALateCreated) {
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  feed(event("d-1", DeploymentStatus::kSucceeded, "m2"));
  const Transition t = feed(event("d-1", DeploymentStatus::kCreated, "m3"));
  EXPECT_FALSE(t.changed);
  EXPECT_NE(t.note.find("final"), std::string::npos);
  EXPECT_EQ(state_.deployments.at("d-1").status, DeploymentStatus::kSucceeded);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, SuccessArrivingBeforeCreatedNeverRaisesThePage) {
  feed(event("d-1", DeploymentStatus::kSucceeded, "m2"));
  EXPECT_FALSE(on());
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, OverlappingDeploymentsLiftOnlyAfterBothEnd) {
  feed(event("d-1", DeploymentStatus::kCreated, "a1"));
  EXPECT_TRUE(on());
  now_ += minutes(1);
  feed(event("d-2", DeploymentStatus::kCreated, "b1"));
  EXPECT_TRUE(on());
  now_ += minutes(1);
  feed(event("d-1", DeploymentStatus::kSucceeded, "a2"));
  EXPECT_TRUE(on()) << "d-2 is still running";
  now_ += minutes(1);
  feed(event("d-2", DeploymentStatus::kSucceeded, "b2"));
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, SkippedCreatorsRaiseNoPage) {
  for (const std::string creator : {"autoscaling", "CodeDeployAutoUpdate"}) {
    auto e = event("d-" + creator, DeploymentStatus::kCreated);
    e.creator = creator;
    const Transition t = feed(e);
    EXPECT_FALSE(on()) << creator;
    ASSERT_FALSE(t.audit.empty());
    EXPECT_EQ(t.audit.back().kind, "skipped");
  }
  auto user = event("d-user", DeploymentStatus::kCreated);
  user.creator = "user";
  feed(user);
  EXPECT_TRUE(on());
}

// aws-behaviour.md §6: termination-hook deployments on scale-in (creator
// `autoscalingTermination`) are not releases either; by default they raise no page.
TEST_F(LedgerTest, AutoscalingTerminationIsSkippedByDefault) {
  env_ = EnvironmentConfig{};
  env_.name = "prod";
  auto e = event("d-scale-in", DeploymentStatus::kCreated);
  e.creator = "autoscalingTermination";
  const Transition t = feed(e);
  EXPECT_FALSE(on()) << "a scale-in must not put the site into maintenance";
  ASSERT_FALSE(t.audit.empty());
  EXPECT_EQ(t.audit.back().kind, "skipped");
}

TEST_F(LedgerTest, SkipListIsConfigurable) {
  env_.skip_creators = {"CloudFormation"};
  auto e = event("d-1", DeploymentStatus::kCreated);
  e.creator = "autoscaling";
  feed(e);
  EXPECT_TRUE(on()) << "autoscaling is no longer skipped";
  auto cf = event("d-2", DeploymentStatus::kCreated);
  cf.creator = "CloudFormation";
  feed(cf);
  EXPECT_EQ(decide(state_, env_, now_).reasons.size(), 1u);
}

TEST_F(LedgerTest, UnknownCreatorFollowsPolicy) {
  feed(event("d-1", DeploymentStatus::kCreated));
  EXPECT_TRUE(on()) << "default policy maintain: an unknown creator counts";
  env_.unknown_creator = UnknownCreatorPolicy::kIgnore;
  EXPECT_FALSE(on());
  // Once the lookup says it was a user, it counts under either policy.
  state_ =
      apply_lookup(state_, DeploymentInfo{"d-1", std::nullopt, "user", std::nullopt}, now_).state;
  EXPECT_TRUE(on());
  // And if it says autoscaling, it never did.
  state_ =
      apply_lookup(state_, DeploymentInfo{"d-1", std::nullopt, "autoscaling", std::nullopt}, now_)
          .state;
  EXPECT_FALSE(on());
}

// The real sequence of a failed ECS deployment and its automatic rollback, as CodeDeploy sent
// it (fixtures/aws/lambda-sns-codedeploy-lifecycle-2022.json), replayed with the delays seen.
std::vector<DeploymentEvent> failed_then_rolled_back() {
  const std::string text = testing::read_fixture("aws/lambda-sns-codedeploy-lifecycle-2022.json");
  auto wrapper = boost::json::parse(text).as_object();
  std::vector<DeploymentEvent> out;
  for (const auto& record : wrapper.at("failedDeployment").as_array()) {
    auto items = parse_events(boost::json::serialize(record));
    EXPECT_TRUE(items.ok());
    for (auto& item : *items) out.push_back(std::get<DeploymentEvent>(item));
  }
  return out;
}

TEST_F(LedgerTest, FailureThenRollbackTurnsThePageOnOnceAndOffOnceWithLift) {
  env_.failure_policy = FailurePolicy::kLift;
  env_.failure_grace = minutes(3);
  const auto events = failed_then_rolled_back();
  ASSERT_EQ(events.size(), 5u);
  std::vector<bool> seen;
  for (const auto& e : events) {
    now_ = *e.time;  // the clock follows the real delivery times
    feed(e);
    seen.push_back(on());
  }
  EXPECT_EQ(seen, (std::vector<bool>{true, true, true, true, false}));
  EXPECT_EQ(state_.deployments.at("d-RollbackDeploy").rollback_of, "d-MainDeployment");
}

TEST_F(LedgerTest, FailureWithoutRollbackLiftsAfterGrace) {
  env_.failure_grace = minutes(3);
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  feed(event("d-1", DeploymentStatus::kFailed, "m2"));
  EXPECT_TRUE(on());
  const auto d = decide(state_, env_, now_);
  ASSERT_TRUE(d.recheck_at.has_value());
  EXPECT_EQ(*d.recheck_at, now_ + minutes(3));
  now_ += minutes(2);
  EXPECT_TRUE(on());
  now_ += minutes(1);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, AFailureHeardOfLateHasHadPartOfItsGraceAlready) {
  // The grace runs from the deployment's own end: a Failed delivered 2 minutes late (a queue
  // drained late, an SNS retry) keeps the page up for the 1 minute left, not 3 more.
  env_.failure_grace = minutes(3);
  auto start = event("d-1", DeploymentStatus::kCreated, "m1");
  start.time = now_ - minutes(10);
  feed(start);
  auto failed = event("d-1", DeploymentStatus::kFailed, "m2");
  failed.time = now_ - minutes(2);
  feed(failed);
  EXPECT_TRUE(on());
  EXPECT_EQ(decide(state_, env_, now_).expected_end, now_ + minutes(1));
  now_ += minutes(1);
  EXPECT_FALSE(on());
  // An end time ahead of our clock (skew) does not stretch the grace beyond our own.
  auto ahead = event("d-2", DeploymentStatus::kFailed, "m3");
  ahead.time = now_ + hours(1);
  feed(ahead);
  now_ += minutes(3);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, FailureWithHoldPolicyKeepsThePageUntilAnOperatorLifts) {
  env_.failure_policy = FailurePolicy::kHold;
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  feed(event("d-1", DeploymentStatus::kFailed, "m2"));
  now_ += hours(30);
  state_ = tick(state_, env_, now_).state;
  EXPECT_TRUE(on()) << "held: no grace, no expiry";
  command(OperatorAction::kOff);
  EXPECT_FALSE(on());
  // The next deployment raises the page again as usual.
  feed(event("d-2", DeploymentStatus::kCreated, "m3"));
  EXPECT_TRUE(on());
}

TEST_F(LedgerTest, HoldPolicyLiftsWhenTheRollbackSucceeds) {
  env_.failure_policy = FailurePolicy::kHold;
  const auto events = failed_then_rolled_back();
  std::vector<bool> seen;
  for (const auto& e : events) {
    now_ = *e.time;
    feed(e);
    seen.push_back(on());
  }
  EXPECT_EQ(seen, (std::vector<bool>{true, true, true, true, false}));
}

TEST_F(LedgerTest, OperatorOnWinsOverNoDeployments) {
  command(OperatorAction::kOn);
  EXPECT_TRUE(on());
  const auto d = decide(state_, env_, now_);
  EXPECT_NE(d.reason_text().find("alice"), std::string::npos);
  EXPECT_NE(d.reason_text().find("database upgrade"), std::string::npos);
  // A deployment finishing does not lift an operator's hold.
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  feed(event("d-1", DeploymentStatus::kSucceeded, "m2"));
  EXPECT_TRUE(on());
  command(OperatorAction::kOff);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, OperatorOffWinsOverARunningDeployment) {
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  EXPECT_TRUE(on());
  command(OperatorAction::kOff);
  EXPECT_FALSE(on());
  feed(event("d-1", DeploymentStatus::kInProgress, "m2"));
  EXPECT_FALSE(on()) << "a dismissed deployment no longer counts";
}

TEST_F(LedgerTest, TimedOperatorOffKeepsNewDeploymentsFromRaisingThePage) {
  command(OperatorAction::kOff, hours(1));
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  EXPECT_FALSE(on());
  now_ += hours(1);
  EXPECT_TRUE(on()) << "the hold ended; d-1 still runs";
}

TEST_F(LedgerTest, OperatorHoldExpires) {
  command(OperatorAction::kOn, minutes(30));
  const auto d = decide(state_, env_, now_);
  EXPECT_TRUE(d.on);
  EXPECT_EQ(d.expected_end, now_ + minutes(30));
  now_ += minutes(30);
  EXPECT_FALSE(on());
  const Transition t = tick(state_, env_, now_);
  EXPECT_TRUE(t.changed);
  EXPECT_FALSE(t.state.hold.has_value());
  ASSERT_EQ(t.audit.size(), 1u);
  EXPECT_EQ(t.audit[0].kind, "hold-expired");
}

TEST_F(LedgerTest, DeploymentActiveLongerThanMaxDurationExpiresLoudly) {
  env_.max_duration = hours(2);
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  now_ += hours(2) - seconds(1);
  EXPECT_FALSE(tick(state_, env_, now_).changed);
  EXPECT_TRUE(on());
  now_ += seconds(1);
  const Transition t = tick(state_, env_, now_);
  state_ = t.state;
  EXPECT_FALSE(on());
  ASSERT_EQ(t.audit.size(), 1u);
  EXPECT_EQ(t.audit[0].kind, "expired");
  EXPECT_NE(t.audit[0].message.find("max_duration"), std::string::npos);
  EXPECT_TRUE(state_.deployments.at("d-1").expired);
}

// max_duration counts from the deployment's own start when the input says it, not from
// when we first heard of it.
TEST_F(LedgerTest, MaxDurationCountsFromTheDeploymentsOwnStart) {
  env_.max_duration = hours(1);
  auto e = event("d-1", DeploymentStatus::kCreated, "m1");
  e.time = now_ - minutes(50);  // first heard of 50 minutes after it began
  feed(e);
  EXPECT_TRUE(on());
  now_ += minutes(10);
  const Transition t = tick(state_, env_, now_);
  state_ = t.state;
  EXPECT_FALSE(on()) << "an hour after its start, not an hour after we saw it";
  ASSERT_EQ(t.audit.size(), 1u);
  EXPECT_EQ(t.audit[0].kind, "expired");
}

// A deployment whose creator is skipped never kept the page up: when it runs past
// max_duration it is dropped without an error line (which would also be announced).
TEST_F(LedgerTest, ASkippedDeploymentPastMaxDurationIsDroppedQuietly) {
  env_.max_duration = hours(1);
  auto e = event("d-scale", DeploymentStatus::kCreated, "m1");
  e.creator = "autoscaling";
  feed(e);
  EXPECT_FALSE(on());
  now_ += hours(1);
  const Transition t = tick(state_, env_, now_);
  state_ = t.state;
  EXPECT_TRUE(state_.deployments.at("d-scale").expired);
  for (const auto& a : t.audit) EXPECT_NE(a.kind, "expired") << a.message;
  auto old = event("d-old-scale", DeploymentStatus::kCreated, "m2");
  old.creator = "autoscaling";
  old.time = now_ - hours(3);
  for (const auto& a : feed(old).audit) EXPECT_NE(a.kind, "expired") << a.message;
}

TEST_F(LedgerTest, EventOlderThanMaxDurationArrivesExpired) {
  auto e = event("d-old", DeploymentStatus::kCreated, "m1");
  e.time = now_ - hours(3);
  const Transition t = feed(e);
  EXPECT_FALSE(on());
  EXPECT_EQ(t.audit.back().kind, "expired");
}

TEST_F(LedgerTest, LookupHealsALostFinishedNotification) {
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  EXPECT_TRUE(on());
  const Transition t = apply_lookup(
      state_, DeploymentInfo{"d-1", DeploymentStatus::kSucceeded, "user", std::nullopt}, now_);
  state_ = t.state;
  EXPECT_TRUE(t.changed);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, FinishedDeploymentsAreForgottenAfterRetention) {
  feed(event("d-1", DeploymentStatus::kSucceeded, "m1"));
  now_ += kRetention - seconds(1);
  EXPECT_EQ(tick(state_, env_, now_).state.deployments.size(), 1u);
  now_ += seconds(1);
  EXPECT_TRUE(tick(state_, env_, now_).state.deployments.empty());
}

TEST_F(LedgerTest, RecentMessageIdsAreBounded) {
  for (std::size_t i = 0; i < kRecentMessageIds + 10; ++i) {
    feed(event("d-" + std::to_string(i), DeploymentStatus::kSucceeded, "m" + std::to_string(i)));
  }
  EXPECT_EQ(state_.recent_message_ids.size(), kRecentMessageIds);
  EXPECT_EQ(state_.recent_message_ids.back(), "m" + std::to_string(kRecentMessageIds + 9));
}

TEST_F(LedgerTest, FarFutureHoldStaysReadable) {
  // A command built by a front end that did not bound it: 20,000 years.
  command(OperatorAction::kOn, hours(24 * 365 * 20000));
  ASSERT_TRUE(state_.hold && state_.hold->until);
  EXPECT_EQ(*state_.hold->until, kLatestTime) << "kept within year 9999";
  auto back = decode_state(encode_state(state_), "prod", 1);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->hold->until, state_.hold->until);
  EXPECT_TRUE(on());
  OperatorCommand until;
  until.environment = "prod";
  until.until = from_epoch_ms(1'000'000'000'000'000);  // 10^12 seconds: the year 33658
  state_ = apply_operator_command(state_, until, now_).state;
  EXPECT_TRUE(decode_state(encode_state(state_), "prod", 1).ok());
}

// EventBridge deliveries START main, START rollback, SUCCESS rollback, and the main's FAILURE
// late: the deployments' own times say the rollback began after the failure.
TEST_F(LedgerTest, SupersededIsJudgedByTheDeploymentsOwnTimes) {
  for (const FailurePolicy policy : {FailurePolicy::kHold, FailurePolicy::kLift}) {
    state_ = EnvState{};
    state_.environment = "prod";
    env_.failure_policy = policy;
    env_.failure_grace = minutes(30);
    const Time t0 = now_;
    auto at = [&](const std::string& id, DeploymentStatus status, Time happened, Time delivered) {
      DeploymentEvent e = event(id, status, id + std::string(to_string(status)));
      e.source = EventSource::kEventBridge;
      e.time = happened;
      now_ = delivered;
      feed(e);
    };
    at("d-main", DeploymentStatus::kInProgress, t0, t0 + seconds(1));
    at("d-back", DeploymentStatus::kInProgress, t0 + minutes(2), t0 + minutes(2));
    at("d-back", DeploymentStatus::kSucceeded, t0 + minutes(5), t0 + minutes(5));
    at("d-main", DeploymentStatus::kFailed, t0 + minutes(1), t0 + minutes(6));
    EXPECT_FALSE(on()) << "the rollback that began after the failure took over (policy "
                       << (policy == FailurePolicy::kHold ? "hold" : "lift") << ")";
    now_ = t0 + minutes(6);
  }
}

TEST_F(LedgerTest, HeldFailuresAreKeptUntilLifted) {
  env_.failure_policy = FailurePolicy::kHold;
  feed(event("d-1", DeploymentStatus::kCreated, "m1"));
  feed(event("d-1", DeploymentStatus::kFailed, "m2"));
  for (int day = 0; day < 30; ++day) {
    now_ += hours(24);
    state_ = tick(state_, env_, now_).state;
  }
  EXPECT_TRUE(on()) << "a held failure waits for an operator, however long";
  command(OperatorAction::kOff);
  EXPECT_FALSE(on());
}

TEST_F(LedgerTest, SettledAndSkippedRecordsAreBoundedByCount) {
  env_.skip_creators = {"autoscaling"};
  for (std::size_t i = 0; i < 3 * kMaxSettledRecords; ++i) {
    DeploymentEvent e =
        event("d-" + std::to_string(i), DeploymentStatus::kInProgress, "m" + std::to_string(i));
    if (i % 2 == 0) e.creator = "autoscaling";
    feed(e);
    if (i % 2 == 1) {
      feed(event("d-" + std::to_string(i), DeploymentStatus::kSucceeded, "s" + std::to_string(i)));
    }
    now_ += seconds(10);
  }
  feed(event("d-running", DeploymentStatus::kInProgress, "r"));
  state_ = tick(state_, env_, now_).state;
  EXPECT_LE(state_.deployments.size(), kMaxSettledRecords + 1);
  EXPECT_TRUE(state_.deployments.contains("d-running")) << "what counts is never dropped";
  // Finished records go first (they are over), then the oldest skipped ones still running.
  EXPECT_FALSE(state_.deployments.contains("d-" + std::to_string(3 * kMaxSettledRecords - 1)));
  EXPECT_TRUE(state_.deployments.contains("d-" + std::to_string(3 * kMaxSettledRecords - 2)))
      << "the newest are kept";
  EXPECT_FALSE(state_.deployments.contains("d-0")) << "the oldest are not";
  EXPECT_TRUE(on());
  EXPECT_TRUE(check_state_size(state_, encode_state(state_)).ok());
}

// A message may be replayed (a genuine signed one, by whoever captured it) for as long as its
// signature's Timestamp is accepted; a daemon that restarted has only the ledger to tell. A
// record the count bound drops is remembered by id for kReplayWindow: a replayed start of it
// changes nothing, where it would have been taken for a new deployment.
TEST_F(LedgerTest, ARecordDroppedByTheCountIsRememberedForTheReplayWindow) {
  const std::size_t n = kMaxSettledRecords + 50;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string id = "d-" + std::to_string(i);
    feed(event(id, DeploymentStatus::kCreated, "c" + std::to_string(i)));
    feed(event(id, DeploymentStatus::kSucceeded, "s" + std::to_string(i)));
    now_ += seconds(1);
  }
  state_ = tick(state_, env_, now_).state;
  EXPECT_EQ(state_.deployments.size(), kMaxSettledRecords);
  ASSERT_FALSE(state_.deployments.contains("d-0"));
  EXPECT_TRUE(state_.forgotten.contains("d-0"));
  const auto replay = feed(event("d-0", DeploymentStatus::kCreated, "c0-replayed-id"));
  EXPECT_FALSE(replay.changed);
  EXPECT_NE(replay.note.find("forgotten"), std::string::npos) << replay.note;
  EXPECT_FALSE(on()) << "a replayed start of a finished deployment raised the page";
  auto back = decode_state(encode_state(state_), "prod", state_.version);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->forgotten, state_.forgotten) << "stored and read back";
  // Past the window the id goes too (a message that old is refused by its Timestamp).
  now_ += kReplayWindow;
  state_ = tick(state_, env_, now_).state;
  EXPECT_TRUE(state_.forgotten.empty());
  // And their number is bounded, the newest kept.
  for (std::size_t i = 0; i < 2010; ++i) {
    state_.forgotten["x-" + std::to_string(i)] = now_ - milliseconds(2010 - i);
  }
  state_.deployments.clear();
  for (std::size_t i = 0; i <= kMaxSettledRecords; ++i) {
    feed(event("y-" + std::to_string(i), DeploymentStatus::kSucceeded, "y" + std::to_string(i)));
  }
  state_ = tick(state_, env_, now_ + seconds(1)).state;
  EXPECT_GT(state_.forgotten.size(), 500u) << "hundreds of CodeDeploy-sized ids";
  EXPECT_LT(state_.forgotten.size(), 2010u);
  EXPECT_TRUE(state_.forgotten.contains("y-0")) << "the newest are kept";
  EXPECT_FALSE(state_.forgotten.contains("x-0"));
}

// An id may be up to kMaxDeploymentText bytes (a webhook's, a Flux object's): the forgotten
// ids are bounded by their bytes too, so long ids cannot push the stored item past the size
// every store writes (every write would then be refused for the replay window).
TEST_F(LedgerTest, ForgottenIdsAreBoundedByTheirBytes) {
  const std::string pad(kMaxDeploymentText - 8, 'x');
  for (std::size_t i = 0; i < 2000; ++i) {
    state_.forgotten[pad + std::to_string(100000 + i)] = now_ - milliseconds(2000 - i);
  }
  ASSERT_FALSE(check_state_size(state_, encode_state(state_)).ok()) << "a real bound is tested";
  for (std::size_t i = 0; i <= kMaxSettledRecords; ++i) {
    feed(event("y-" + std::to_string(i), DeploymentStatus::kSucceeded, "y" + std::to_string(i)));
  }
  state_ = tick(state_, env_, now_ + seconds(1)).state;
  std::size_t bytes = 0;
  for (const auto& f : state_.forgotten) bytes += f.first.size() + kForgottenEntryBytes;
  EXPECT_LE(bytes, kMaxForgottenBytes);
  EXPECT_GT(bytes, kMaxForgottenBytes - kMaxDeploymentText - kForgottenEntryBytes);
  EXPECT_TRUE(state_.forgotten.contains("y-0")) << "the newest are kept";
  EXPECT_FALSE(state_.forgotten.contains(pad + "100000")) << "the oldest are not";
  EXPECT_TRUE(check_state_size(state_, encode_state(state_)).ok());
}

// Every text of a deployment may be at its bound: the settled records are bounded by their
// bytes too, and a ledger with every bounded part full (settled records, forgotten ids,
// recent message ids, windows, a hold) still leaves room for twenty running deployments with
// every text at its bound. The codec, not an estimate, says whether it fits.
TEST_F(LedgerTest, ALedgerWithEveryBoundFullStillFitsAnItem) {
  const auto text = [](char c, std::size_t n) { return std::string(n, c); };
  const auto big = [&](const std::string& id, DeploymentStatus status, std::size_t i) {
    DeploymentEvent e = event(id + text('i', kMaxDeploymentText - id.size()), status);
    e.application = "shop" + text('a', kMaxDeploymentText - 4);
    e.deployment_group = "prod-" + text('g', kMaxDeploymentText - 5);
    e.creator = text('c', kMaxDeploymentText);
    e.rollback_of = text('r', kMaxDeploymentText);
    e.message_id = std::to_string(i) + text('m', kMaxMessageId - std::to_string(i).size());
    EXPECT_TRUE(check_deployment_event(e).ok());
    return e;
  };
  std::size_t n = 0;
  for (; n < std::max(kMaxSettledRecords, kRecentMessageIds); ++n) {
    feed(big("s" + std::to_string(n), DeploymentStatus::kSucceeded, n));
    now_ += seconds(1);
  }
  state_ = tick(state_, env_, now_).state;
  std::size_t settled = 0;
  for (const auto& [id, r] : state_.deployments) {
    settled += r.id.size() + r.application.size() + r.deployment_group.size() +
               r.creator.value_or("").size() + r.rollback_of.value_or("").size() +
               kRecordOverheadBytes;
  }
  EXPECT_LE(settled, kMaxSettledBytes);
  EXPECT_LT(state_.deployments.size(), kMaxSettledRecords) << "the bytes bound, not the count";
  for (std::size_t i = 0; i < 100; ++i) {  // more than the bound: as full as can be after it
    state_.forgotten[std::to_string(i) + text('f', kMaxDeploymentText)] = now_;
  }
  for (int w = 0; w < static_cast<int>(kMaxWindows); ++w) {
    state_.windows["w" + std::to_string(w)] = Window{"w" + std::to_string(w),
                                                     now_ + hours(1 + w),
                                                     now_ + hours(2 + w),
                                                     text('r', kMaxOperatorText),
                                                     text('w', kMaxOperatorText),
                                                     now_,
                                                     false};
  }
  state_.hold = Hold{true, text('h', kMaxOperatorText), text('o', kMaxOperatorText), now_, {}};
  for (std::size_t i = 0; i < 20; ++i)
    feed(big("run" + std::to_string(i), DeploymentStatus::kInProgress, n + i));
  state_ = tick(state_, env_, now_ + seconds(1)).state;
  std::size_t forgotten = 0;
  for (const auto& f : state_.forgotten) forgotten += f.first.size() + kForgottenEntryBytes;
  EXPECT_LE(forgotten, kMaxForgottenBytes);
  EXPECT_EQ(state_.recent_message_ids.size(), kRecentMessageIds);
  const std::string encoded = encode_state(state_);
  EXPECT_TRUE(check_state_size(state_, encoded).ok())
      << encoded.size() << " bytes, more than " << kMaxEncodedStateBytes;
  EXPECT_LE(encoded.size(),
            kBoundedLedgerBytes + 20 * (5 * kMaxDeploymentText + kRecordOverheadBytes))
      << "the estimate in ledger.h holds";
}

// A rollback that took over a failure must not be forgotten before the failure, or the
// failure would count again.
TEST_F(LedgerTest, PruningNeverRaisesThePageAgain) {
  env_.failure_policy = FailurePolicy::kHold;
  feed(event("d-back", DeploymentStatus::kInProgress, "b1"));
  state_.deployments.at("d-back").rollback_of = "d-main";
  feed(event("d-back", DeploymentStatus::kSucceeded, "b2"));
  now_ += minutes(1);
  feed(event("d-main", DeploymentStatus::kFailed, "m1"));  // late
  EXPECT_FALSE(on());
  now_ += kRetention - seconds(30);
  state_ = tick(state_, env_, now_).state;
  EXPECT_FALSE(state_.deployments.contains("d-back"));
  EXPECT_FALSE(on()) << "d-back aged out; d-main must not count again";
  now_ += minutes(1);
  state_ = tick(state_, env_, now_).state;
  EXPECT_FALSE(on()) << "d-back aged out first; d-main must go with it";
}

TEST_F(LedgerTest, AnOversizedStateIsRefusedWithAReason) {
  command(OperatorAction::kOn);
  state_.hold->reason = std::string(kMaxEncodedStateBytes, 'x');
  auto st = check_state_size(state_, encode_state(state_));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(st.error().message.find("prod"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("400 KB"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace intermission::core
