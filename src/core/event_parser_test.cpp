#include "core/event_parser.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "testing/fakes.h"

namespace intermission::core {
namespace {

using testing::read_fixture;

std::vector<ParsedItem> parse_ok(const std::string& text) {
  auto r = parse_events(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<ParsedItem>{};
}

DeploymentEvent only_event(const std::vector<ParsedItem>& items) {
  EXPECT_EQ(items.size(), 1u);
  if (items.size() != 1 || !std::holds_alternative<DeploymentEvent>(items[0])) {
    ADD_FAILURE() << "not one deployment event";
    return {};
  }
  return std::get<DeploymentEvent>(items[0]);
}

std::string ignored_reason(const std::vector<ParsedItem>& items) {
  if (items.size() != 1 || !std::holds_alternative<Ignored>(items[0])) return "<not ignored>";
  return std::get<Ignored>(items[0]).reason;
}

TEST(EventParser, LambdaSnsEventFrom2016Capture) {
  const auto e = only_event(parse_ok(read_fixture("aws/lambda-sns-codedeploy-created-2016.json")));
  EXPECT_EQ(e.source, EventSource::kLambdaSns);
  EXPECT_EQ(e.application, "Portal");
  EXPECT_EQ(e.deployment_group, "Acceptance");
  EXPECT_EQ(e.deployment_id, "d-OJSFEI0CI");
  EXPECT_EQ(e.status, DeploymentStatus::kCreated);
  EXPECT_EQ(e.message_id, "fc94858f-129b-546f-83c6-d5feec49dbdb");
  EXPECT_EQ(e.region, "us-east-1");
  ASSERT_TRUE(e.time.has_value());
  EXPECT_EQ(format_iso8601(*e.time), "2016-10-07T19:50:41.000Z");  // createTime, Java format
  EXPECT_FALSE(e.creator.has_value());
}

TEST(EventParser, RealLifecycleWithDoubleEncodedFields) {
  const auto wrapper =
      boost::json::parse(read_fixture("aws/lambda-sns-codedeploy-lifecycle-2022.json")).as_object();
  const auto& failed = wrapper.at("failedDeployment").as_array();
  const auto f = only_event(parse_ok(boost::json::serialize(failed[1])));
  EXPECT_EQ(f.status, DeploymentStatus::kFailed);
  EXPECT_EQ(f.error_code, "ECS_UPDATE_ERROR");
  EXPECT_EQ(format_iso8601(*f.time), "2022-10-14T08:46:18.000Z");  // completeTime
  EXPECT_FALSE(f.rollback_of.has_value()) << "rollbackInformation \"{}\" names nobody";
  const auto rb = only_event(parse_ok(boost::json::serialize(failed[2])));
  EXPECT_EQ(rb.deployment_id, "d-RollbackDeploy");
  EXPECT_EQ(rb.rollback_of, "d-MainDeployment");
  const auto progress = only_event(parse_ok(boost::json::serialize(failed[3])));
  EXPECT_EQ(progress.status, DeploymentStatus::kInProgress);
}

TEST(EventParser, BareDocumentedMessageWithObjectsAndEpochTimes) {
  const auto e =
      only_event(parse_ok(read_fixture("aws/codedeploy-sns-message-deployment.docs.json")));
  EXPECT_EQ(e.source, EventSource::kCodeDeploy);
  EXPECT_EQ(e.status, DeploymentStatus::kFailed);  // "Failed", mixed case
  EXPECT_EQ(e.application, "ProductionApp-us-west-3");
  EXPECT_EQ(e.error_code, "IAM_ROLE_MISSING");
  EXPECT_EQ(format_iso8601(*e.time), "2015-11-05T17:23:10.402Z");
}

TEST(EventParser, InstanceLevelMessagesAreIgnored) {
  EXPECT_NE(ignored_reason(parse_ok(read_fixture("aws/codedeploy-sns-message-instance.docs.json")))
                .find("instance-level"),
            std::string::npos);
  EXPECT_NE(ignored_reason(parse_ok(read_fixture("aws/eventbridge-codedeploy-instance.json")))
                .find("instance-level"),
            std::string::npos);
}

TEST(EventParser, EventBridgeDeploymentEvent) {
  const auto e = only_event(parse_ok(read_fixture("aws/eventbridge-codedeploy-deployment.json")));
  EXPECT_EQ(e.source, EventSource::kEventBridge);
  EXPECT_EQ(e.application, "myApplication");
  EXPECT_EQ(e.deployment_group, "myDeploymentGroup");
  EXPECT_EQ(e.status, DeploymentStatus::kSucceeded);  // "SUCCESS"
  EXPECT_EQ(e.message_id, "c071bfbf-83c4-49ca-a6ff-3df053957145");
  EXPECT_EQ(format_iso8601(*e.time), "2016-06-30T22:06:31.000Z");
}

TEST(EventParser, SnsHttpBodyWithUrlSpelling) {
  const std::string body =
      R"({"Type":"Notification","MessageId":"m-1","TopicArn":"arn:aws:sns:eu-west-1:1:t",
    "Subject":"CREATED: AWS CodeDeploy d-1","Timestamp":"2024-01-01T00:00:00.000Z",
    "SigningCertURL":"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "UnsubscribeURL":"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    "Message":"{\"applicationName\":\"a\",\"deploymentGroupName\":\"g\",\"deploymentId\":\"d-1\",\"status\":\"CREATED\",\"completeTime\":null}"})";
  const auto e = only_event(parse_ok(body));
  EXPECT_EQ(e.source, EventSource::kSnsHttp);
  EXPECT_EQ(e.message_id, "m-1");
  EXPECT_EQ(format_iso8601(*e.time), "2024-01-01T00:00:00.000Z");  // no createTime: SNS time
}

// A FAILED message without completeTime is dated by the notification, never by createTime:
// dated by its start, the failure would seem to end before deployments that began meanwhile.
TEST(EventParser, AnEndWithoutCompleteTimeIsNotDatedByItsStart) {
  const std::string body =
      R"({"Type":"Notification","MessageId":"m-2","TopicArn":"arn:aws:sns:eu-west-1:1:t",
    "Subject":"FAILED: AWS CodeDeploy d-1","Timestamp":"2024-01-01T00:10:00.000Z",
    "SigningCertURL":"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a.pem",
    "UnsubscribeURL":"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    "Message":"{\"applicationName\":\"a\",\"deploymentGroupName\":\"g\",\"deploymentId\":\"d-1\",\"status\":\"FAILED\",\"createTime\":\"2024-01-01T00:00:00.000Z\",\"completeTime\":null}"})";
  const auto e = only_event(parse_ok(body));
  EXPECT_EQ(e.status, DeploymentStatus::kFailed);
  ASSERT_TRUE(e.time.has_value());
  EXPECT_EQ(format_iso8601(*e.time), "2024-01-01T00:10:00.000Z");  // the SNS Timestamp
}

TEST(EventParser, SnsNonNotificationsAndNonJsonMessagesAreIgnored) {
  const auto sample =
      parse_ok(read_fixture("aws/lambda-sns-event.docs.json"));  // "Hello from SNS!"
  EXPECT_NE(ignored_reason(sample).find("not JSON"), std::string::npos);
  const auto confirm = parse_ok(
      R"({"Type":"SubscriptionConfirmation","MessageId":"x","TopicArn":"t","Message":"m"})");
  EXPECT_NE(ignored_reason(confirm).find("SubscriptionConfirmation"), std::string::npos);
  const auto unknown_status = parse_ok(
      R"({"applicationName":"a","deploymentGroupName":"g","deploymentId":"d","status":"unknown"})");
  EXPECT_NE(ignored_reason(unknown_status).find("unknown"), std::string::npos);
}

TEST(EventParser, WrongFieldTypesAreNeverACrash) {
  for (const char* text :
       {R"({"deploymentId":5,"status":"CREATED"})", R"({"deploymentId":"d","status":["x"]})",
        R"({"Records":"nope"})", R"({"Records":[1,null,{"Sns":5}]})",
        R"({"Records":[{"Sns":{"Message":7}}]})", R"({"detail-type":3,"source":"aws.codedeploy"})",
        R"({"applicationName":{},"deploymentGroupName":"g","deploymentId":"d","status":"FAILED",
            "errorInformation":"{not json","rollbackInformation":42,"completeTime":{}})",
        R"({"operator":{"environment":"prod","action":"sideways"}})", "[]", "[[[[[[[1]]]]]]]",
        "\"text\"", "null", "17"}) {
    auto r = parse_events(text);
    ASSERT_TRUE(r.ok()) << text;
    for (const auto& item : *r) {
      if (const auto* e = std::get_if<DeploymentEvent>(&item)) {
        EXPECT_FALSE(e->deployment_id.empty()) << text;
      }
    }
  }
}

TEST(EventParser, MalformedJsonIsAClearError) {
  for (const char* text : {"", "{", "{\"Records\":[", "not json", "{\"a\":1}}"}) {
    auto r = parse_events(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidInput);
    EXPECT_NE(r.error().message.find("malformed JSON"), std::string::npos);
  }
  std::string deep(100000, '[');
  EXPECT_FALSE(parse_events(deep).ok());
}

TEST(EventParser, OperatorCommand) {
  const auto items = parse_ok(
      R"({"operator":{"environment":"prod","action":"on","reason":"db","for":"30m","who":"bob"}})");
  ASSERT_EQ(items.size(), 1u);
  const auto& c = std::get<OperatorCommand>(items[0]);
  EXPECT_EQ(c.environment, "prod");
  EXPECT_EQ(c.action, OperatorAction::kOn);
  EXPECT_EQ(c.duration, std::chrono::minutes(30));
  EXPECT_EQ(c.who, "bob");
}

// An operator command whose values cannot be carried out is not "ignored" (exit 0, nothing
// done): it reaches check_operator_command, which refuses it with the reason, as the CLI does.
TEST(EventParser, AnOperatorCommandWithABadValueIsRefusedNotIgnored) {
  const Time now = *parse_iso8601("2026-06-01T12:00:00Z");
  const auto check = [&now](const std::string& text) -> Status {
    const auto items = parse_ok(text);
    EXPECT_EQ(items.size(), 1u) << text;
    const auto* c = items.empty() ? nullptr : std::get_if<OperatorCommand>(&items[0]);
    if (c == nullptr) return Error::internal("not an operator command: " + text);
    return check_operator_command(*c, now);
  };
  for (
      const char* text :
      {R"({"operator":{"environment":"prod","action":"on","until":"2001-01-01T00:00:00Z"}})",
       R"({"operator":{"environment":"prod","action":"on","for":"30m","until":"2027-01-01T00:00:00Z"}})",
       R"({"operator":{"environment":"prod","action":"on","until":900000000000}})",
       R"({"operator":{"environment":"prod","action":"on","until":"tomorrow"}})",
       R"({"operator":{"environment":"prod","action":"on","for":"soon"}})",
       R"({"operator":{"environment":"prod","action":"on","for":"0s"}})"}) {
    const auto st = check(text);
    ASSERT_FALSE(st.ok()) << text;
    EXPECT_EQ(st.error().code, ErrorCode::kRefused) << text << ": " << st.error().message;
  }
  EXPECT_TRUE(
      check(R"({"operator":{"environment":"prod","action":"on","until":1893456000}})").ok());
  EXPECT_TRUE(check(R"({"operator":{"environment":"prod","action":"off","for":"2h"}})").ok());
}

// Every parser returns only times within the bounds: a numeric time past the year 9999 (10^12
// seconds was accepted, then capped) is no time at all.
TEST(EventParser, NumericTimesPastTheYear9999AreNotTimes) {
  const auto last =
      parse_ok(R"({"operator":{"environment":"prod","action":"on","until":253402300799}})");
  EXPECT_EQ(std::get<OperatorCommand>(last[0]).until, parse_iso8601("9999-12-31T23:59:59Z"));
  const auto beyond =
      parse_ok(R"({"operator":{"environment":"prod","action":"on","until":253402300800}})");
  EXPECT_FALSE(std::get<OperatorCommand>(beyond[0]).until.has_value());
  EXPECT_FALSE(std::get<OperatorCommand>(beyond[0]).problem.empty());
  const auto e = only_event(parse_ok(
      R"({"applicationName":"a","deploymentGroupName":"g","deploymentId":"d","status":"CREATED",
          "createTime":900000000000})"));
  EXPECT_FALSE(e.time.has_value());
}

// An empty deploymentId is no deployment, whichever way it comes: the SNS path always ignored
// it, the EventBridge one raised the page for "".
TEST(EventParser, AnEmptyDeploymentIdIsIgnoredOnEveryPath) {
  const auto eventbridge = parse_ok(R"({"version":"0","id":"e-1",
      "detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy",
      "time":"2026-11-27T10:00:00Z","region":"eu-west-1",
      "detail":{"deploymentId":"","state":"START","application":"a","deploymentGroup":"g"}})");
  ASSERT_EQ(eventbridge.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Ignored>(eventbridge[0]));
  EXPECT_NE(ignored_reason(eventbridge).find("deploymentId"), std::string::npos);
  const auto sns = parse_ok(
      R"({"applicationName":"a","deploymentGroupName":"g","deploymentId":"","status":"CREATED"})");
  EXPECT_TRUE(std::holds_alternative<Ignored>(sns[0]));
}

TEST(EventParser, ArraysAndMultipleRecordsYieldEveryItemInOrder) {
  const auto items = parse_ok(
      R"([{"applicationName":"a","deploymentGroupName":"g","deploymentId":"d-1","status":"CREATED"},
          {"applicationName":"a","deploymentGroupName":"g","deploymentId":"d-1","status":"SUCCEEDED"},
          {"hello":1}])");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(std::get<DeploymentEvent>(items[0]).status, DeploymentStatus::kCreated);
  EXPECT_EQ(std::get<DeploymentEvent>(items[1]).status, DeploymentStatus::kSucceeded);
  EXPECT_TRUE(std::holds_alternative<Ignored>(items[2]));
}

TEST(EventParser, EventBridgeEventForwardedThroughSns) {
  const std::string inner = read_fixture("aws/eventbridge-codedeploy-deployment.json");
  boost::json::object sns{{"Type", "Notification"},
                          {"MessageId", "sns-1"},
                          {"TopicArn", "arn:aws:sns:x"},
                          {"Message", inner},
                          {"Timestamp", "2016-06-30T22:06:32.000Z"}};
  boost::json::object lambda{{"Records", boost::json::array{boost::json::object{{"Sns", sns}}}}};
  const auto e = only_event(parse_ok(boost::json::serialize(lambda)));
  EXPECT_EQ(e.source, EventSource::kLambdaSns);
  EXPECT_EQ(e.message_id, "sns-1");
  EXPECT_EQ(e.status, DeploymentStatus::kSucceeded);
}

TEST(EventParser, ScheduledEventsAndTickRequests) {
  const auto scheduled = parse_ok(R"({"version":"0","id":"x","detail-type":"Scheduled Event",
      "source":"aws.events","account":"1","time":"2026-11-27T10:00:00Z","region":"eu-west-1",
      "resources":["arn:aws:events:eu-west-1:1:rule/tick"],"detail":{}})");
  ASSERT_EQ(scheduled.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<TickRequest>(scheduled[0]));
  EXPECT_TRUE(std::holds_alternative<TickRequest>(parse_ok(R"({"intermission":"tick"})")[0]));
}

TEST(EventParser, SnsMessagesCarryCodeDeployEventsOnly) {
  SnsMessage m;
  m.type = "Notification";
  m.message_id = "sns-1";
  m.topic_arn = "arn:aws:sns:us-west-2:1:t";
  m.timestamp = "2026-11-27T10:00:00.000Z";
  for (const char* inner :
       {R"({"operator":{"environment":"prod","action":"on","for":"8760h"}})",
        R"([{"operator":{"environment":"prod","action":"on"}}])",
        R"({"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}})",
        R"({"intermission":"tick"})",
        R"({"detail-type":"CodeDeploy Deployment State-change Notification","source":"evil",
            "detail":{"deploymentId":"d-1","state":"START","application":"a","deploymentGroup":"g"}})",
        R"({"Records":[{"Sns":{"Type":"Notification","MessageId":"x","TopicArn":"t",
            "Message":"{\"deploymentId\":\"d-9\",\"status\":\"CREATED\",\"applicationName\":\"a\",\"deploymentGroupName\":\"g\"}"}}]})"}) {
    m.message = inner;
    const auto items = events_from_sns(m, EventSource::kSnsHttp);
    ASSERT_EQ(items.size(), 1u) << inner;
    EXPECT_TRUE(std::holds_alternative<Ignored>(items[0])) << inner;
    // The same through the Lambda path of parse_events.
    boost::json::object sns{{"Type", "Notification"},
                            {"MessageId", "sns-1"},
                            {"TopicArn", m.topic_arn},
                            {"Message", inner}};
    boost::json::object lambda{{"Records", boost::json::array{boost::json::object{{"Sns", sns}}}}};
    const auto via_lambda = parse_ok(boost::json::serialize(lambda));
    ASSERT_EQ(via_lambda.size(), 1u) << inner;
    EXPECT_TRUE(std::holds_alternative<Ignored>(via_lambda[0])) << inner;
  }
  m.message = read_fixture("aws/eventbridge-codedeploy-deployment.json");
  const auto e = only_event(events_from_sns(m, EventSource::kSnsHttp));
  EXPECT_EQ(e.message_id, "sns-1");
  EXPECT_EQ(e.source, EventSource::kSnsHttp);
  m.message =
      R"({"applicationName":"a","deploymentGroupName":"g","deploymentId":"d-1","status":"CREATED"})";
  const auto c = only_event(events_from_sns(m, EventSource::kLambdaSns));
  EXPECT_EQ(c.time, parse_iso8601("2026-11-27T10:00:00.000Z"))
      << "the envelope's time when the message has none";
}

TEST(EventParser, StatusVocabularies) {
  EXPECT_EQ(parse_deployment_status("IN_PROGRESS"), DeploymentStatus::kInProgress);
  EXPECT_EQ(parse_deployment_status("InProgress"), DeploymentStatus::kInProgress);
  EXPECT_EQ(parse_deployment_status("START"), DeploymentStatus::kInProgress);
  EXPECT_EQ(parse_deployment_status("Baking"), DeploymentStatus::kBaking);
  EXPECT_EQ(parse_deployment_status("FAILURE"), DeploymentStatus::kFailed);
  EXPECT_EQ(parse_deployment_status("STOP"), DeploymentStatus::kStopped);
  EXPECT_EQ(parse_deployment_status("Ready"), DeploymentStatus::kReady);
  EXPECT_FALSE(parse_deployment_status("unknown").has_value());
  EXPECT_FALSE(parse_deployment_status("").has_value());
}

}  // namespace
}  // namespace intermission::core
