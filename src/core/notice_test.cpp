#include "core/notice.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "testing/fakes.h"

namespace intermission::core {
namespace {

namespace json = boost::json;
using std::chrono::minutes;
using std::chrono::seconds;

const Time kT0 = from_epoch_ms(1'700'000'000'000);  // 2023-11-14T22:13:20Z

std::string str(const json::value& v) { return std::string(v.as_string()); }

Notice switched_on() {
  Notice n;
  n.kind = NoticeKind::kSwitchedOn;
  n.environment = "prod";
  n.time = kT0;
  n.reason = "maintenance window w1 by alice: db <upgrade> & more";
  n.who = "alice";
  n.deployment_ids = {"d-1", "d-2"};
  n.expected_end = kT0 + minutes(30);
  return n;
}

TEST(NoticeKind, NamesRoundTripAndUnknownNamesAreRefused) {
  for (const NoticeKind k : kNoticeKinds) EXPECT_EQ(parse_notice_kind(to_string(k)), k);
  EXPECT_EQ(to_string(NoticeKind::kDeploymentExpired), "deployment-expired");
  EXPECT_FALSE(parse_notice_kind("switched"));
  EXPECT_FALSE(parse_notice_kind(""));
}

TEST(Notice, IdIsEnvironmentKindAndTime) {
  EXPECT_EQ(switched_on().id(), "prod/switched-on/1700000000000");
}

// https://api.slack.com/reference/surfaces/formatting#escaping: only &, < and > are control
// characters, and only they are replaced by HTML entities.
TEST(SlackEscape, ReplacesOnlyTheThreeControlCharacters) {
  EXPECT_EQ(slack_escape("a & b <!channel> c > d 'e' \"f\" *g*"),
            "a &amp; b &lt;!channel&gt; c &gt; d 'e' \"f\" *g*");
  EXPECT_EQ(slack_escape("&amp;"), "&amp;amp;") << "text is escaped as given, never half-decoded";
}

TEST(SlackPayload, HasAnEscapedFallbackTextAndMrkdwnBlocks) {
  const json::object p = json::parse(slack_payload(switched_on())).as_object();
  const std::string text(p.at("text").as_string());
  EXPECT_NE(text.find("prod: maintenance ON"), std::string::npos) << text;
  EXPECT_NE(text.find("db &lt;upgrade&gt; &amp; more"), std::string::npos) << text;
  EXPECT_EQ(text.find('<'), std::string::npos);
  const json::array& blocks = p.at("blocks").as_array();
  ASSERT_EQ(blocks.size(), 2u);
  const json::object& section = blocks[0].as_object();
  EXPECT_EQ(str(section.at("type")), "section");
  EXPECT_EQ(str(section.at("text").at("type")), "mrkdwn");
  const std::string body(section.at("text").at("text").as_string());
  EXPECT_NE(body.find("*prod*: maintenance ON"), std::string::npos) << body;
  EXPECT_NE(body.find("*why*: maintenance window w1 by alice: db &lt;upgrade&gt; &amp; more"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("*by*: alice"), std::string::npos) << body;
  EXPECT_NE(body.find("*deployments*: d-1, d-2"), std::string::npos) << body;
  EXPECT_NE(body.find("*expected end*: 2023-11-14T22:43:20.000Z"), std::string::npos) << body;
  const json::object& context = blocks[1].as_object();
  EXPECT_EQ(str(context.at("type")), "context");
  const std::string line(context.at("elements").at(0).at("text").as_string());
  EXPECT_NE(line.find("switched-on"), std::string::npos) << line;
}

TEST(SlackPayload, ALongReasonIsCutToSlacksSectionLimitWithoutSplittingAnEntity) {
  Notice n = switched_on();
  // The cut (at 2997 characters, before "...") falls among the escaped ampersands.
  n.reason = std::string(2940, 'x') + std::string(40, '&');
  const json::object p = json::parse(slack_payload(n)).as_object();
  const std::string body(p.at("blocks").at(0).at("text").at("text").as_string());
  EXPECT_LE(body.size(), 3000u);
  EXPECT_GE(body.size(), 2990u);
  EXPECT_EQ(body.substr(body.size() - 3), "...");
  std::size_t entities = 0;
  for (auto at = body.find('&'); at != std::string::npos; at = body.find('&', at + 1)) {
    EXPECT_EQ(body.substr(at, 5), "&amp;") << "an entity is whole or absent, at " << at;
    ++entities;
  }
  EXPECT_GT(entities, 0u);
  EXPECT_LE(std::string(p.at("text").as_string()).size(), 3000u);
}

TEST(SlackPayload, EachKindHasItsHeadline) {
  Notice n;
  n.environment = "staging";
  n.time = kT0;
  n.kind = NoticeKind::kSwitchedOff;
  EXPECT_NE(slack_payload(n).find("maintenance OFF"), std::string::npos);
  n.kind = NoticeKind::kSwitchFailed;
  n.wanted_on = true;
  n.reason = "haproxy: connection refused";
  const std::string failed = slack_payload(n);
  EXPECT_NE(failed.find("switching maintenance on FAILED"), std::string::npos) << failed;
  EXPECT_NE(failed.find("*error*: haproxy: connection refused"), std::string::npos) << failed;
  n.kind = NoticeKind::kSwitchStuck;
  n.failing_since = kT0 - minutes(10);
  const std::string stuck = slack_payload(n);
  EXPECT_NE(stuck.find("is STUCK"), std::string::npos) << stuck;
  EXPECT_NE(stuck.find("*failing since*: 2023-11-14T22:03:20.000Z"), std::string::npos) << stuck;
  n = Notice{};
  n.kind = NoticeKind::kDeploymentExpired;
  n.environment = "prod";
  n.deployment_ids = {"d-9"};
  EXPECT_NE(slack_payload(n).find("*deployment*: d-9"), std::string::npos);
}

TEST(WebhookBody, CarriesEveryFieldUnescaped) {
  const json::object b = json::parse(webhook_body(switched_on())).as_object();
  EXPECT_EQ(str(b.at("id")), "prod/switched-on/1700000000000");
  EXPECT_EQ(str(b.at("kind")), "switched-on");
  EXPECT_EQ(str(b.at("environment")), "prod");
  EXPECT_EQ(str(b.at("time")), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(str(b.at("reason")), "maintenance window w1 by alice: db <upgrade> & more");
  EXPECT_EQ(str(b.at("who")), "alice");
  EXPECT_EQ(json::serialize(b.at("deployment_ids")), R"(["d-1","d-2"])");
  EXPECT_EQ(str(b.at("expected_end")), "2023-11-14T22:43:20.000Z");
  EXPECT_FALSE(b.contains("wanted"));
  Notice f;
  f.kind = NoticeKind::kSwitchStuck;
  f.environment = "prod";
  f.wanted_on = false;
  f.failing_since = kT0;
  const json::object s = json::parse(webhook_body(f)).as_object();
  EXPECT_EQ(str(s.at("wanted")), "off");
  EXPECT_EQ(str(s.at("failing_since")), "2023-11-14T22:13:20.000Z");
  EXPECT_TRUE(s.at("expected_end").is_null());
}

TEST(WebhookSignedText, IsTimestampDotBody) {
  EXPECT_EQ(webhook_signed_text("1700000000", "{\"a\":1}"), "1700000000.{\"a\":1}");
}

TEST(SwitchNotice, NamesTheHoldsOperatorOrTheWindowsAuthorsAndTheDeploymentsThatCount) {
  EnvironmentConfig env;
  env.name = "prod";
  EnvState s;
  s.environment = "prod";
  Window w;
  w.id = "w1";
  w.start = kT0 - minutes(1);
  w.end = kT0 + minutes(20);
  w.who = "alice";
  w.reason = "upgrade";
  s.windows["w1"] = w;
  DeploymentRecord r;
  r.id = "d-1";
  r.status = DeploymentStatus::kInProgress;
  r.creator = "user";
  r.first_seen = r.last_seen = kT0;
  s.deployments["d-1"] = r;
  DeploymentRecord done = r;
  done.id = "d-0";
  done.status = DeploymentStatus::kSucceeded;
  done.ended_at = kT0;
  s.deployments["d-0"] = done;
  Notice n = switch_notice(s, env, decide(s, env, kT0), kT0);
  EXPECT_EQ(n.kind, NoticeKind::kSwitchedOn);
  EXPECT_EQ(n.who, "alice");
  EXPECT_EQ(n.deployment_ids, std::vector<std::string>{"d-1"});
  EXPECT_FALSE(n.expected_end) << "a deployment is running: nobody knows when it ends";
  s.hold = Hold{true, "freeze", "bob", kT0, std::nullopt};
  n = switch_notice(s, env, decide(s, env, kT0), kT0);
  EXPECT_EQ(n.who, "bob");
  EnvState empty;
  n = switch_notice(empty, env, decide(empty, env, kT0), kT0);
  EXPECT_EQ(n.kind, NoticeKind::kSwitchedOff);
  EXPECT_EQ(n.reason, "nothing keeps the page up any more");
  EXPECT_TRUE(n.deployment_ids.empty());
}

TEST(AuditNotices, OneExpiredNoticePerExpiredLine) {
  const std::vector<AuditEntry> audit = {
      {kT0, "prod", "deployment", "d-1 InProgress", "", "d-1"},
      {kT0, "prod", "expired", "d-1 has been active for longer than max_duration", "", "d-1"},
      {kT0, "prod", "switched", "maintenance off", "", ""}};
  const auto n = audit_notices(audit);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].kind, NoticeKind::kDeploymentExpired);
  EXPECT_EQ(n[0].deployment_ids, std::vector<std::string>{"d-1"});
  EXPECT_EQ(n[0].reason, "d-1 has been active for longer than max_duration");
}

TEST(FailureTracker, FirstFailureThenStuckOnceAfterTheThresholdAndASuccessEndsTheRun) {
  testing::ManualClock clock(kT0);
  FailureTracker t(minutes(10));
  auto n = t.failed("prod", true, "refused", clock.now());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->kind, NoticeKind::kSwitchFailed);
  EXPECT_EQ(n->failing_since, kT0);
  EXPECT_TRUE(n->wanted_on);
  clock.advance(minutes(5));
  EXPECT_FALSE(t.failed("prod", true, "refused", clock.now())) << "one notice per run";
  EXPECT_TRUE(t.failed("staging", false, "refused", clock.now())) << "runs are per environment";
  clock.advance(minutes(5) - Duration(1));
  EXPECT_FALSE(t.failed("prod", true, "refused", clock.now())) << "not yet stuck";
  clock.advance(Duration(1));
  n = t.failed("prod", true, "timed out", clock.now());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->kind, NoticeKind::kSwitchStuck);
  EXPECT_EQ(n->failing_since, kT0);
  EXPECT_EQ(n->reason, "timed out");
  clock.advance(minutes(30));
  EXPECT_FALSE(t.failed("prod", true, "refused", clock.now())) << "stuck is said once";
  t.succeeded("prod");
  n = t.failed("prod", false, "refused", clock.now());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->kind, NoticeKind::kSwitchFailed) << "a new run after a success";
}

TEST(ClassifyDelivery, SuccessRetryAndGiveUp) {
  EXPECT_EQ(classify_delivery(200), DeliveryVerdict::kDelivered);
  EXPECT_EQ(classify_delivery(204), DeliveryVerdict::kDelivered);
  EXPECT_EQ(classify_delivery(std::nullopt), DeliveryVerdict::kRetry);
  EXPECT_EQ(classify_delivery(500), DeliveryVerdict::kRetry);
  EXPECT_EQ(classify_delivery(503), DeliveryVerdict::kRetry);
  EXPECT_EQ(classify_delivery(429), DeliveryVerdict::kRetry);
  EXPECT_EQ(classify_delivery(408), DeliveryVerdict::kRetry);
  EXPECT_EQ(classify_delivery(400), DeliveryVerdict::kGiveUp);
  EXPECT_EQ(classify_delivery(403), DeliveryVerdict::kGiveUp);
  EXPECT_EQ(classify_delivery(404), DeliveryVerdict::kGiveUp);
  EXPECT_EQ(classify_delivery(301), DeliveryVerdict::kGiveUp);
}

// RFC 9110 §10.2.3: delay-seconds or an HTTP-date, the delay then being from now (a date
// already past means at once).
TEST(RetryAfter, DelaySecondsOrHttpDate) {
  const Time now = *parse_iso8601("2015-10-21T07:27:00Z");
  EXPECT_EQ(parse_retry_after("2", now), Duration(seconds(2)));
  EXPECT_EQ(parse_retry_after(" 120 ", now), Duration(seconds(120)));
  EXPECT_EQ(parse_retry_after("0", now), Duration(0));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Duration(seconds(60)));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:26:00 GMT", now), Duration(0)) << "past";
  EXPECT_FALSE(parse_retry_after("-1", now));
  EXPECT_FALSE(parse_retry_after("1.5", now));
  EXPECT_FALSE(parse_retry_after("", now));
  EXPECT_FALSE(parse_retry_after("99999999999999999999", now));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015", now));
}

TEST(RetryDelay, FullJitterUnderADoublingCeilingAndRetryAfterUpToTheCap) {
  const Duration base(1000), cap(60'000);
  EXPECT_EQ(retry_delay(1, base, cap, 1000, std::nullopt), Duration(1000));
  EXPECT_EQ(retry_delay(1, base, cap, 1001, std::nullopt), Duration(0)) << "random % 1001";
  EXPECT_EQ(retry_delay(3, base, cap, 4000, std::nullopt), Duration(4000));
  EXPECT_EQ(retry_delay(3, base, cap, 4001, std::nullopt), Duration(0));
  for (std::uint64_t r = 0; r < 5000; r += 7) {
    EXPECT_LE(retry_delay(2, base, cap, r, std::nullopt), Duration(2000));
  }
  EXPECT_EQ(retry_delay(30, base, cap, 60'000, std::nullopt), cap) << "capped, no overflow";
  EXPECT_EQ(retry_delay(1, base, cap, 0, Duration(seconds(5))), Duration(seconds(5)));
  EXPECT_EQ(retry_delay(1, base, cap, 0, Duration(seconds(3600))), cap);
}

TEST(AppendAudit, KeepsTheStateAndRetriesAConflict) {
  testing::MemoryStore store;
  EnvState s;
  s.environment = "prod";
  s.applied.on = true;
  ASSERT_TRUE(store.compare_and_set(s, 0, {}).ok());
  store.conflicts_to_inject = 2;
  const std::vector<AuditEntry> line = {{kT0, "prod", "notified", "sent", "", ""}};
  ASSERT_TRUE(append_audit(store, "prod", line).ok());
  auto after = store.load("prod");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->applied.on) << "the state is kept";
  auto audit = store.audit("prod", 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_FALSE(audit->empty());
  EXPECT_EQ(audit->back().kind, "notified");
  store.conflicts_to_inject = 100;
  EXPECT_FALSE(append_audit(store, "prod", line, 3).ok());
}

}  // namespace
}  // namespace intermission::core
