#include "app/dashboard.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace intermission::app {
namespace {

using core::AuditEntry;
using core::Time;
using std::chrono::hours;
using std::chrono::minutes;

Time at(const char* iso) { return *core::parse_iso8601(iso); }

class DashboardTest : public ::testing::Test {
 protected:
  DashboardTest() {
    config_.name = "prod";
    env_.config = &config_;
    env_.state.environment = "prod";
  }

  void switched(Time t, bool on) {
    env_.audit.push_back(
        AuditEntry{t, "prod", "switched",
                   std::string("maintenance ") + (on ? "on via log: x" : "off via log"), "", ""});
    env_.state.applied = core::Applied{on, t, ""};
  }

  core::EnvironmentConfig config_;
  DashboardEnv env_;
  const Time now_ = at("2026-12-02T12:00:00Z");
};

TEST_F(DashboardTest, IntervalsFollowTheSwitchedLinesAndTheLastOneStaysOpen) {
  switched(now_ - hours(5), true);
  switched(now_ - hours(4), false);
  env_.audit.push_back(
      AuditEntry{now_ - hours(3), "prod", "deployment", "maintenance on? no", "", "d-1"});
  switched(now_ - minutes(30), true);
  const auto iv = maintenance_intervals(env_, now_ - hours(24), now_);
  ASSERT_EQ(iv.size(), 4u);
  EXPECT_FALSE(iv[0].on);
  EXPECT_TRUE(iv[0].known) << "the whole trail was read: before the first switch it was off";
  EXPECT_EQ(iv[0].start, now_ - hours(24));
  EXPECT_TRUE(iv[1].on);
  EXPECT_EQ(iv[1].start, now_ - hours(5));
  EXPECT_EQ(iv[1].end, now_ - hours(4));
  EXPECT_FALSE(iv[2].on);
  EXPECT_TRUE(iv[3].on) << "still up";
  EXPECT_EQ(iv[3].start, now_ - minutes(30));
  EXPECT_EQ(iv[3].end, now_);
}

TEST_F(DashboardTest, IntervalsAreClippedAtTheEdgeOfTheScale) {
  switched(now_ - hours(30), true);  // went up 30 h ago: the 24 h picture starts with it up
  switched(now_ - hours(20), false);
  auto day = maintenance_intervals(env_, now_ - hours(24), now_);
  ASSERT_EQ(day.size(), 2u);
  EXPECT_TRUE(day[0].on);
  EXPECT_EQ(day[0].start, now_ - hours(24));
  EXPECT_EQ(day[0].end, now_ - hours(20));
  auto week = maintenance_intervals(env_, now_ - hours(24 * 7), now_);
  ASSERT_EQ(week.size(), 3u);
  EXPECT_EQ(week[1].start, now_ - hours(30));
}

TEST_F(DashboardTest, ATrailCutAtItsLimitSaysNothingBeforeItsOldestLine) {
  env_.audit_complete = false;
  switched(now_ - hours(2), false);
  const auto iv = maintenance_intervals(env_, now_ - hours(24), now_);
  ASSERT_EQ(iv.size(), 2u);
  EXPECT_FALSE(iv[0].known);
  EXPECT_EQ(iv[0].end, now_ - hours(2));
  EXPECT_TRUE(iv[1].known);
  EXPECT_FALSE(iv[1].on);
}

TEST_F(DashboardTest, TheStoredStateWinsForTheOpenEnd) {
  // The trail's last switch was cut off; the state says the page went up an hour ago.
  switched(now_ - hours(3), false);
  env_.state.applied = core::Applied{true, now_ - hours(1), "x"};
  const auto iv = maintenance_intervals(env_, now_ - hours(24), now_);
  ASSERT_FALSE(iv.empty());
  EXPECT_TRUE(iv.back().on);
  EXPECT_EQ(iv.back().start, now_ - hours(1));
}

TEST_F(DashboardTest, MarksForDeploymentsFailuresAndHoldsAndUpcomingWindowsDrawn) {
  core::DeploymentRecord ok;
  ok.id = "d-ok";
  ok.application = "shop";
  ok.deployment_group = "prod-web";
  ok.status = core::DeploymentStatus::kSucceeded;
  ok.first_seen = now_ - hours(6);
  ok.ended_at = now_ - hours(5);
  core::DeploymentRecord bad = ok;
  bad.id = "d-bad";
  bad.status = core::DeploymentStatus::kFailed;
  bad.first_seen = now_ - hours(3);
  bad.ended_at = now_ - hours(2);
  core::DeploymentRecord old = ok;
  old.id = "d-old";
  old.first_seen = now_ - hours(40);
  old.ended_at = now_ - hours(39);
  env_.state.deployments = {{ok.id, ok}, {bad.id, bad}, {old.id, old}};
  env_.audit.push_back(
      AuditEntry{now_ - hours(1), "prod", "hold", "maintenance on by alice", "alice", ""});
  env_.audit.push_back(
      AuditEntry{now_ - minutes(10), "prod", "lifted", "maintenance off by bob", "bob", ""});
  core::Window w{"w1", now_ + hours(1), now_ + hours(2), "disk swap", "carol", now_ - hours(1),
                 false};
  core::Window far{"w2", now_ + hours(20), now_ + hours(21), "", "carol", now_ - hours(1), false};
  env_.state.windows = {{"w1", w}, {"w2", far}};

  const Timeline t = build_timeline(env_, hours(24), "24 h", now_);
  std::vector<MarkKind> kinds;
  for (const auto& m : t.marks) kinds.push_back(m.kind);
  EXPECT_EQ(kinds,
            (std::vector<MarkKind>{MarkKind::kDeploymentStarted, MarkKind::kDeploymentSucceeded,
                                   MarkKind::kDeploymentStarted, MarkKind::kDeploymentFailed,
                                   MarkKind::kHoldOn, MarkKind::kHoldOff}))
      << "d-old is outside the 24 h scale";
  ASSERT_EQ(t.windows.size(), 1u) << "w2 starts beyond the 3 h shown to come";
  EXPECT_EQ(t.windows[0].id, "w1");
  const Timeline week = build_timeline(env_, hours(24 * 7), "7 d", now_);
  EXPECT_EQ(week.marks.size(), 8u) << "d-old is on the week";
  EXPECT_EQ(week.windows.size(), 2u);

  const std::string svg = timeline_svg(t);
  EXPECT_NE(svg.find("class=\"failed\""), std::string::npos);
  EXPECT_NE(svg.find("d-bad (shop/prod-web) Failed"), std::string::npos);
  EXPECT_NE(svg.find("class=\"hold-on\""), std::string::npos);
  EXPECT_NE(svg.find("class=\"hold-off\""), std::string::npos);
  EXPECT_NE(svg.find("class=\"window\""), std::string::npos);
  EXPECT_NE(svg.find("disk swap"), std::string::npos);
  EXPECT_NE(svg.find("1 failed"), std::string::npos) << "the text alternative counts failures";
}

TEST_F(DashboardTest, TheAxisIsLabelledInUtcOnBothScales) {
  const std::string day = timeline_svg(build_timeline(env_, hours(24), "24 h", now_));
  for (const char* label : {">18:00<", ">00:00<", ">06:00<", ">12:00<"}) {
    EXPECT_NE(day.find(label), std::string::npos) << label;
  }
  const std::string week = timeline_svg(build_timeline(env_, hours(24 * 7), "7 d", now_));
  // 2026-12-02 is a Wednesday.
  for (const char* label : {">Wed 02<", ">Tue 01<", ">Fri 27<"}) {
    EXPECT_NE(week.find(label), std::string::npos) << label;
  }
}

TEST_F(DashboardTest, HostileTextIsEscapedEverywhere) {
  const std::string evil = "<script>alert(1)</script>\"'&";
  env_.state.hold = core::Hold{true, evil, evil, now_ - hours(1), std::nullopt};
  env_.audit.push_back(
      AuditEntry{now_ - hours(1), "prod", "hold", "maintenance on by " + evil, evil, ""});
  env_.state.windows["w1"] =
      core::Window{"w1", now_ + hours(1), now_ + hours(2), evil, evil, now_ - hours(1), false};
  switched(now_ - hours(1), true);
  config_.name = evil;
  const std::string html = dashboard_html({env_}, now_, true);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_EQ(html.find("\"'&"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"), std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos) << "no inline script at all";
  const auto doc = dashboard_json({env_}, now_);
  const std::string fragment(doc.at("environments").at(0).at("html").as_string());
  EXPECT_EQ(fragment.find("<script>alert"), std::string::npos) << "the fragment the script inserts";
  EXPECT_NE(fragment.find("&lt;script&gt;"), std::string::npos);
}

TEST_F(DashboardTest, ThePageShowsStateReasonWhoSinceAndACountdown) {
  env_.state.hold = core::Hold{true, "database move", "alice", now_ - hours(1), now_ + minutes(90)};
  switched(now_ - hours(1), true);
  const std::string html = environment_status_html(env_, now_);
  EXPECT_NE(html.find("<span class=\"badge on\">ON</span>"), std::string::npos);
  EXPECT_NE(html.find("database move"), std::string::npos);
  EXPECT_NE(html.find("<dd>alice</dd>"), std::string::npos);
  EXPECT_NE(html.find("2026-12-02 11:00 UTC"), std::string::npos) << "since";
  EXPECT_NE(html.find("data-end=\"2026-12-02T13:30:00.000Z\">in 1h30m<"), std::string::npos);
  const auto doc = dashboard_json({env_}, now_).as_object();
  const auto& e = doc.at("environments").as_array()[0].as_object();
  EXPECT_TRUE(e.at("on").as_bool());
  EXPECT_EQ(e.at("who").as_string(), "alice");
  EXPECT_EQ(e.at("since").as_string(), "2026-12-02T11:00:00.000Z");
  EXPECT_EQ(e.at("expected_end").as_string(), "2026-12-02T13:30:00.000Z");
  EXPECT_FALSE(e.at("pending").as_bool());
  EXPECT_TRUE(e.at("switching").is_null());
  EXPECT_EQ(e.at("html").as_string(), html);
}

TEST_F(DashboardTest, AnUnreadableEnvironmentSaysSoEscapedAndNothingElse) {
  env_.error = "stored state is not JSON: <syntax> error";
  env_.state.hold = core::Hold{true, "not to be shown", "alice", now_ - hours(1), std::nullopt};
  const std::string html = environment_status_html(env_, now_);
  EXPECT_NE(html.find("unreadable"), std::string::npos);
  EXPECT_NE(html.find("not JSON: &lt;syntax&gt; error"), std::string::npos) << html;
  EXPECT_EQ(html.find("not to be shown"), std::string::npos);
  EXPECT_EQ(html.find("<svg"), std::string::npos) << "no timeline from a state not read";
  const auto doc = dashboard_json({env_}, now_).as_object();
  const auto& e = doc.at("environments").as_array()[0].as_object();
  EXPECT_EQ(e.at("error").as_string(), *env_.error);
  EXPECT_EQ(e.if_contains("on"), nullptr);
  EXPECT_EQ(e.at("html").as_string(), html);
}

TEST_F(DashboardTest, ALiveLeaseNamesItsHolderAnExpiredOneDoesNot) {
  env_.lease = core::Lease{"replica-a", now_ + minutes(1)};
  EXPECT_NE(environment_status_html(env_, now_).find("replica-a holds the lease"),
            std::string::npos);
  env_.lease = core::Lease{"replica-a", now_ - minutes(1)};
  EXPECT_EQ(environment_status_html(env_, now_).find("replica-a"), std::string::npos);
}

TEST(DashboardPalette, TextAndBadgesMeetWcagAaContrast) {
  EXPECT_NEAR(contrast_ratio("#000000", "#ffffff"), 21.0, 0.01);
  EXPECT_NEAR(contrast_ratio("#777777", "#ffffff"), 4.48, 0.01);
  for (auto fg : {Palette::kText, Palette::kMuted, Palette::kOn, Palette::kOff, Palette::kFailed,
                  Palette::kStarted, Palette::kHold, Palette::kFocus}) {
    EXPECT_GE(contrast_ratio(fg, Palette::kBackground), 4.5) << fg;
  }
  EXPECT_GE(contrast_ratio("#ffffff", Palette::kOn), 4.5) << "white on the ON badge";
  EXPECT_GE(contrast_ratio("#ffffff", Palette::kOff), 4.5) << "white on the off badge";
  EXPECT_GE(contrast_ratio("#ffffff", Palette::kFailed), 4.5) << "white on the unreadable badge";
}

TEST(DashboardAssets, TheCssHoldsThePaletteAndTheScriptPollsTheJson) {
  const std::string css = dashboard_css();
  EXPECT_NE(css.find(std::string(".badge.on{background:") + std::string(Palette::kOn)),
            std::string::npos);
  EXPECT_NE(css.find(":focus-visible"), std::string::npos);
  const std::string_view js = dashboard_script();
  EXPECT_NE(js.find("/dashboard.json"), std::string_view::npos);
  EXPECT_NE(js.find("'Bearer '"), std::string_view::npos);
  EXPECT_EQ(js.find("http"), std::string_view::npos) << "no external resource";
}

}  // namespace
}  // namespace intermission::app
