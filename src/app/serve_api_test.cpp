#include "app/serve_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "testing/fakes.h"

namespace intermission::app {
namespace {

using namespace intermission::testing;  // NOLINT

// The daemon's /sns handler on genuine AWS-signed messages (testing/fixtures/sns), with the
// clock set to when they were sent: their certificate has expired since.
const std::string kVectors = std::string(INTERMISSION_SOURCE_DIR) + "/testing/fixtures/sns";
constexpr const char* kTopic = "arn:aws:sns:us-west-2:131990247566:dongie-standard-topic";

std::string read(const std::string& name) {
  std::ifstream in(kVectors + "/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ServeSnsTest : public ::testing::Test {
 protected:
  ServeSnsTest() : certs_(kVectors + "/certs") {
    config_.file = "test.yaml";
    core::EnvironmentConfig prod;
    prod.name = "prod";
    prod.backend.type = "fake";
    config_.environments["prod"] = prod;
    config_.routes = {{"*", "*-*", "{1}", {}}};
    config_.serve.sns_topics = {kTopic};
    clock_.set(*core::parse_iso8601("2026-03-06T20:01:00Z"));
    controller_ = std::make_unique<core::Controller>(
        config_, core::Controller::Deps{store_, backends_, clock_, log_, nullptr, "serve"});
    api_ = std::make_unique<ServeApi>(ServeApi::Deps{
        config_, *controller_, store_, backends_, certs_, clock_, log_, metrics_,
        [](const std::string&) {},
        [this](const std::string& url) -> core::Status {
          confirmed_.push_back(url);
          return {};
        },
        "", ""});
  }

  HttpResponse post(const std::string& body) {
    HttpRequest r;
    r.method = "POST";
    r.target = "/sns";
    r.body = body;
    return api_->public_side(r);
  }

  core::Config config_;
  MemoryStore store_;
  FakeBackendFactory backends_;
  ManualClock clock_;
  RecordingLogger log_;
  Metrics metrics_;
  adapters::sns::DirectoryCertSource certs_;
  std::vector<std::string> confirmed_;
  std::unique_ptr<core::Controller> controller_;
  std::unique_ptr<ServeApi> api_;
};

TEST_F(ServeSnsTest, GenuineNotificationsAndSubscriptionConfirmationAreAccepted) {
  for (const char* name : {"java-v2-notification-with-subject.json", "java-v2-notification-signature-v2.json"}) {
    const auto r = post(read(name));
    EXPECT_EQ(r.status, 200) << name << ": " << r.body;
    EXPECT_NE(r.body.find("ignored"), std::string::npos) << "plain text, not a CodeDeploy event";
  }
  const auto c = post(read("java-v2-subscription-confirmation.json"));
  EXPECT_EQ(c.status, 200) << c.body;
  ASSERT_EQ(confirmed_.size(), 1u);
  EXPECT_EQ(confirmed_[0].rfind("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=", 0), 0u);
}

TEST_F(ServeSnsTest, AChangedByteWrappedRecordsOrALaterClockAreRefused) {
  std::string tampered = read("java-v2-notification-signature-v2.json");
  tampered.replace(tampered.find("version 2."), 10, "version 3.");
  EXPECT_EQ(post(tampered).status, 403);
  const std::string genuine = read("java-v2-notification-signature-v2.json");
  EXPECT_EQ(post(R"({"Records":[{"Sns":)" + genuine + R"(},{"Sns":)" + genuine + "}]}").status, 403);
  clock_.set(*core::parse_iso8601("2026-12-02T00:00:00Z"));
  const auto replay = post(genuine);
  EXPECT_EQ(replay.status, 403);
  EXPECT_NE(replay.body.find("too old"), std::string::npos) << replay.body;
}

TEST_F(ServeSnsTest, AMessageIsActedOnOnce) {
  const std::string genuine = read("java-v2-notification-with-subject.json");
  EXPECT_NE(post(genuine).body.find("ignored"), std::string::npos);
  EXPECT_NE(post(genuine).body.find("duplicate"), std::string::npos);
}

}  // namespace
}  // namespace intermission::app
