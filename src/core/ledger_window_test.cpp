// Scheduled maintenance windows in the ledger: how they start and end by the clock, how they
// combine with operator holds and deployments, and what is refused (docs/ledger.md).
#include "core/ledger.h"

#include <gtest/gtest.h>

#include "core/state_codec.h"
#include "testing/fakes.h"

namespace intermission::core {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

class WindowTest : public ::testing::Test {
 protected:
  WindowTest() {
    env_.name = "prod";
    state_.environment = "prod";
  }
  Time now() const { return clock_.now(); }

  // Schedules a window starting `in` from now for `d`; returns its id ("" when refused).
  Result<Transition> schedule(Duration in, Duration d, const std::string& reason = "db upgrade") {
    WindowCommand c;
    c.environment = "prod";
    c.start = now() + in;
    c.duration = d;
    c.reason = reason;
    c.who = "alice";
    return apply(c);
  }
  Result<Transition> apply(const WindowCommand& c) {
    auto t = apply_window_command(state_, c, now());
    if (t.ok()) state_ = t->state;
    return t;
  }
  Transition advance(Duration d) {
    clock_.advance(d);
    Transition t = tick(state_, env_, now());
    state_ = t.state;
    return t;
  }
  Decision decision() const { return decide(state_, env_, now()); }
  static std::vector<std::string> kinds(const Transition& t) {
    std::vector<std::string> out;
    for (const auto& a : t.audit) out.push_back(a.kind);
    return out;
  }
  void operator_says(OperatorAction action, std::optional<Duration> d = std::nullopt) {
    OperatorCommand c;
    c.environment = "prod";
    c.action = action;
    c.who = "bob";
    c.duration = d;
    state_ = apply_operator_command(state_, c, now()).state;
  }
  DeploymentEvent deployment(const std::string& id, DeploymentStatus status) {
    DeploymentEvent e;
    e.application = "shop";
    e.deployment_group = "prod-web";
    e.deployment_id = id;
    e.status = status;
    return e;
  }

  EnvironmentConfig env_;
  EnvState state_;
  testing::ManualClock clock_{from_epoch_ms(1'700'000'000'000)};
};

TEST_F(WindowTest, AWindowRaisesThePageAtItsStartAndLiftsItAtItsEnd) {
  const Time start = now() + hours(1);
  auto t = schedule(hours(1), minutes(30), "database upgrade");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->note, "w1");
  EXPECT_EQ(kinds(*t), std::vector<std::string>{"window-scheduled"});
  EXPECT_FALSE(decision().on);
  EXPECT_EQ(next_wake(state_, env_, now()), start);

  EXPECT_TRUE(advance(minutes(59)).audit.empty());
  EXPECT_FALSE(decision().on);
  const Transition started = advance(minutes(1));
  EXPECT_EQ(kinds(started), std::vector<std::string>{"window-started"});
  EXPECT_TRUE(started.changed);
  const Decision d = decision();
  EXPECT_TRUE(d.on);
  EXPECT_EQ(d.page_message, "database upgrade");
  EXPECT_EQ(d.expected_end, start + minutes(30));
  EXPECT_EQ(d.recheck_at, start + minutes(30));
  EXPECT_EQ(next_wake(state_, env_, now()), start + minutes(30));

  const Transition ended = advance(minutes(30));
  EXPECT_EQ(kinds(ended), std::vector<std::string>{"window-ended"});
  EXPECT_FALSE(decision().on);
  EXPECT_TRUE(state_.windows.empty()) << "an ended window is dropped";
  EXPECT_EQ(next_wake(state_, env_, now()), std::nullopt);
}

TEST_F(WindowTest, ADecisionCountsAWindowEvenBeforeATickMarksItStarted) {
  ASSERT_TRUE(schedule(minutes(10), minutes(10)).ok());
  clock_.advance(minutes(15));
  EXPECT_TRUE(decision().on);
  clock_.advance(minutes(5));
  EXPECT_FALSE(decision().on);
}

TEST_F(WindowTest, AReasonOrWhoLongerThanAnOperatorsTextIsRefused) {
  EXPECT_TRUE(schedule(hours(1), hours(1), std::string(kMaxOperatorText, 'r')).ok());
  const auto t = schedule(hours(3), hours(1), std::string(kMaxOperatorText + 1, 'r'));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("at most 500 bytes"), std::string::npos) << t.error().message;
  EXPECT_EQ(state_.windows.size(), 1u);
}

TEST_F(WindowTest, ABadWindowIsRefusedWithAReason) {
  auto message = [&](Result<Transition> t) { return t.ok() ? std::string("accepted") : t.error().message; };
  EXPECT_NE(message(schedule(-minutes(1), hours(1))).find("in the past"), std::string::npos);
  EXPECT_NE(message(schedule(hours(1), Duration(0))).find("after its start"), std::string::npos);
  EXPECT_NE(message(schedule(hours(1), -hours(1))).find("after its start"), std::string::npos);
  EXPECT_NE(message(schedule(kLongestDuration + hours(1), hours(1))).find("too far ahead"),
            std::string::npos);
  EXPECT_NE(message(schedule(hours(1), kLongestDuration + hours(1))).find("too long"),
            std::string::npos);
  WindowCommand c;
  c.environment = "prod";
  c.start = kLatestTime - hours(1);
  c.end = kLatestTime + hours(1);
  EXPECT_FALSE(apply(c).ok());
  WindowCommand no_start;
  no_start.environment = "prod";
  no_start.duration = hours(1);
  EXPECT_NE(message(apply(no_start)).find("start"), std::string::npos);
  WindowCommand no_end;
  no_end.environment = "prod";
  no_end.start_in = hours(1);
  EXPECT_NE(message(apply(no_end)).find("end"), std::string::npos);
  EXPECT_TRUE(state_.windows.empty());
  EXPECT_EQ(state_.last_window_id, 0);
}

TEST_F(WindowTest, RelativeTimesCountFromWhenTheLedgerRecordsThem) {
  WindowCommand c;
  c.environment = "prod";
  c.start_in = Duration(0);
  c.duration = seconds(3);
  auto t = apply(c);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(decision().on) << "a window starting now is not in the past";
  EXPECT_EQ(kinds(*t), (std::vector<std::string>{"window-scheduled", "window-started"}));
  EXPECT_EQ(state_.windows.at("w1").end, now() + seconds(3));
}

TEST_F(WindowTest, TheNumberOfWindowsIsBounded) {
  for (std::size_t i = 0; i < kMaxWindows; ++i) {
    ASSERT_TRUE(schedule(hours(1 + static_cast<int>(i)), minutes(10)).ok());
  }
  auto t = schedule(hours(100), minutes(10));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("at most"), std::string::npos) << t.error().message;
  // Ended ones make room.
  advance(hours(2));
  EXPECT_EQ(state_.windows.size(), kMaxWindows - 1);
  EXPECT_TRUE(schedule(hours(100), minutes(10)).ok());
}

TEST_F(WindowTest, ChangingAndCancellingAWindow) {
  ASSERT_TRUE(schedule(hours(1), hours(1)).ok());
  WindowCommand change;
  change.environment = "prod";
  change.action = WindowAction::kChange;
  change.id = "w1";
  change.duration = hours(2);  // from the (kept) start
  change.reason = "longer";
  auto t = apply(change);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(kinds(*t), std::vector<std::string>{"window-changed"});
  EXPECT_EQ(state_.windows.at("w1").end, now() + hours(3));
  EXPECT_EQ(state_.windows.at("w1").reason, "longer");

  advance(hours(1));
  EXPECT_TRUE(decision().on);
  WindowCommand move_start = change;
  move_start.duration.reset();
  move_start.start = now() + hours(1);
  auto refused = apply(move_start);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("already started"), std::string::npos);
  WindowCommand shorten;
  shorten.environment = "prod";
  shorten.action = WindowAction::kChange;
  shorten.id = "w1";
  shorten.end = now() + minutes(5);
  ASSERT_TRUE(apply(shorten).ok());
  EXPECT_EQ(decision().expected_end, now() + minutes(5));

  WindowCommand cancel;
  cancel.environment = "prod";
  cancel.action = WindowAction::kCancel;
  cancel.id = "w1";
  auto c = apply(cancel);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(kinds(*c), std::vector<std::string>{"window-cancelled"});
  EXPECT_FALSE(decision().on);
  auto unknown = apply(cancel);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

TEST_F(WindowTest, OverlappingWindowsKeepThePageUpUntilTheLastEnds) {
  ASSERT_TRUE(schedule(minutes(10), minutes(30)).ok());  // 10..40
  ASSERT_TRUE(schedule(minutes(30), minutes(30)).ok());  // 30..60
  ASSERT_TRUE(schedule(minutes(60), minutes(10)).ok());  // 60..70, touching
  ASSERT_TRUE(schedule(minutes(90), minutes(10)).ok());  // 90..100, apart
  advance(minutes(10));
  EXPECT_TRUE(decision().on);
  EXPECT_EQ(decision().expected_end, now() + minutes(60)) << "the end of the whole stretch";
  advance(minutes(30));  // 40: the second window
  EXPECT_TRUE(decision().on);
  advance(minutes(20));  // 60: the third, touching the second
  EXPECT_TRUE(decision().on);
  advance(minutes(10));  // 70: a gap until 90
  EXPECT_FALSE(decision().on);
  EXPECT_EQ(next_wake(state_, env_, now()), now() + minutes(20));
  EXPECT_EQ(state_.windows.size(), 1u);
}

TEST_F(WindowTest, OperatorOffEndsTheActiveWindowButNotUpcomingOnes) {
  ASSERT_TRUE(schedule(Duration(0), hours(1)).ok());
  ASSERT_TRUE(schedule(hours(2), hours(1)).ok());
  advance(minutes(1));
  EXPECT_TRUE(decision().on);
  operator_says(OperatorAction::kOff);
  EXPECT_FALSE(decision().on);
  EXPECT_FALSE(state_.windows.contains("w1")) << "off ends the window early";
  ASSERT_TRUE(state_.windows.contains("w2"));
  advance(hours(2));
  EXPECT_TRUE(decision().on) << "the next window still comes";
}

TEST_F(WindowTest, AnOperatorHoldWinsOverAWindowBothWays) {
  ASSERT_TRUE(schedule(hours(1), hours(1)).ok());
  operator_says(OperatorAction::kOff, hours(3));  // e.g. "no maintenance today"
  advance(hours(1));
  EXPECT_FALSE(decision().on) << "a timed off keeps the page off through the window";
  ASSERT_TRUE(schedule(hours(3), hours(1)).ok());  // 4h..5h
  advance(hours(3));
  EXPECT_TRUE(decision().on) << "after the hold, a window raises the page again";
  operator_says(OperatorAction::kOn, minutes(10));
  advance(hours(1));
  EXPECT_FALSE(state_.windows.contains("w2"));
  EXPECT_FALSE(decision().on) << "the hold ended and so did the window";
}

TEST_F(WindowTest, AnOperatorOnOutlastsTheWindow) {
  ASSERT_TRUE(schedule(Duration(0), hours(1)).ok());
  operator_says(OperatorAction::kOn);
  advance(hours(2));
  EXPECT_TRUE(decision().on) << "an open hold stays until an operator says off";
}

TEST_F(WindowTest, WindowsAndDeploymentsCombine) {
  ASSERT_TRUE(schedule(minutes(10), minutes(20)).ok());
  state_ = apply_deployment_event(state_, deployment("d-1", DeploymentStatus::kInProgress), env_,
                                  now()).state;
  advance(minutes(15));
  EXPECT_TRUE(decision().on);
  EXPECT_EQ(decision().expected_end, std::nullopt) << "a deployment is still running";
  state_ = apply_deployment_event(state_, deployment("d-1", DeploymentStatus::kSucceeded), env_,
                                  now()).state;
  EXPECT_TRUE(decision().on) << "the window goes on after the deployment";
  EXPECT_EQ(decision().expected_end, now() + minutes(15));
  state_ = apply_deployment_event(state_, deployment("d-2", DeploymentStatus::kInProgress), env_,
                                  now()).state;
  advance(minutes(15));
  EXPECT_TRUE(decision().on) << "the deployment goes on after the window";
}

TEST_F(WindowTest, WindowsSurviveTheStoreAndOldStatesHaveNone) {
  ASSERT_TRUE(schedule(hours(1), hours(1), "upgrade \"quoted\"").ok());
  ASSERT_TRUE(schedule(Duration(0), hours(1)).ok());
  advance(seconds(1));
  auto back = decode_state(encode_state(state_), "prod", 3);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->windows.size(), 2u);
  const Window& w = back->windows.at("w1");
  EXPECT_EQ(w.start, state_.windows.at("w1").start);
  EXPECT_EQ(w.end, state_.windows.at("w1").end);
  EXPECT_EQ(w.reason, "upgrade \"quoted\"");
  EXPECT_EQ(w.who, "alice");
  EXPECT_EQ(w.created, state_.windows.at("w1").created);
  EXPECT_FALSE(w.started);
  EXPECT_TRUE(back->windows.at("w2").started);
  EXPECT_EQ(back->last_window_id, 2);

  const std::string old = R"({"format":1,"deployments":[],"hold":null,"applied":{"on":false,)"
                          R"("since":null,"reason":""},"recent_message_ids":[]})";
  auto before = decode_state(old, "prod", 1);
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_TRUE(before->windows.empty());
  EXPECT_EQ(before->last_window_id, 0);
}

TEST_F(WindowTest, UpcomingWindowsAreListedByStart) {
  ASSERT_TRUE(schedule(hours(5), hours(1)).ok());
  ASSERT_TRUE(schedule(hours(1), hours(1)).ok());
  auto list = upcoming_windows(state_, now());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, "w2");
  EXPECT_EQ(list[1].id, "w1");
  EXPECT_TRUE(upcoming_windows(state_, now() + hours(7)).empty());
}

}  // namespace
}  // namespace intermission::core
