#include "app/serve_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "adapters/crypto/hmac.h"
#include "core/ledger.h"
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

// A ServeApi over fakes (no sockets, no disk) with an environment "prod"; each fixture below
// sets what it needs, then start() builds the controller and the API on it.
class ServeApiFixture : public ::testing::Test {
 protected:
  explicit ServeApiFixture(const std::string& cert_dir = "/nonexistent") : certs_(cert_dir) {
    core::EnvironmentConfig env;
    env.name = "prod";
    env.backend.type = "fake";
    config_.environments["prod"] = env;
  }

  struct Secrets {
    std::string operator_token, webhook, flux, argocd, github;
  };
  ServeApi& start(const Secrets& secrets) {
    controller_ = std::make_unique<core::Controller>(
        config_, core::Controller::Deps{store_, backends_, clock_, log_, nullptr, "test"});
    api_ = std::make_unique<ServeApi>(ServeApi::Deps{
        config_, *controller_, store_, backends_, certs_, clock_, log_, metrics_,
        [](const std::string&) {},
        [this](const std::string& url) -> core::Status {
          confirmed_.push_back(url);
          return {};
        },
        secrets.operator_token, secrets.webhook, secrets.flux, secrets.argocd, secrets.github});
    return *api_;
  }

  static HttpRequest request(const std::string& method, const std::string& target,
                             std::map<std::string, std::string> headers = {},
                             const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    for (auto& [k, v] : headers) r.headers[k] = v;
    r.remote = "127.0.0.1";
    return r;
  }

  core::Config config_;
  MemoryStore store_;
  FakeBackendFactory backends_;
  ManualClock clock_;
  RecordingLogger log_;
  Metrics metrics_;
  adapters::sns::DirectoryCertSource certs_;
  std::vector<std::string> confirmed_;  // SubscribeURLs GET
  std::unique_ptr<core::Controller> controller_;
  std::unique_ptr<ServeApi> api_;
};

class ServeSnsTest : public ServeApiFixture {
 protected:
  ServeSnsTest() : ServeApiFixture(kVectors + "/certs") {
    config_.file = "test.yaml";
    config_.routes = {{"*", "*-*", "{1}", {}}};
    config_.serve.sns_topics = {kTopic};
    clock_.set(*core::parse_iso8601("2026-03-06T20:01:00Z"));
    start({});
  }

  HttpResponse post(const std::string& body) {
    return api_->public_side(request("POST", "/sns", {}, body));
  }
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

// ---- the admin listener ----


const std::string kToken = "0123456789abcdef0123456789abcdef";

// The admin side of a ServeApi over fakes: no sockets, no disk.
class AdminSideTest : public ServeApiFixture {
 protected:
  AdminSideTest() { config_.serve.admin_listen = "127.0.0.1:9301"; }

  ServeApi& api(const std::string& token = kToken) {
    Secrets secrets;
    secrets.operator_token = token;
    return start(secrets);
  }

  static HttpRequest get(const std::string& target, const std::string& host,
                         const std::string& authorization = "") {
    std::map<std::string, std::string> headers;
    if (!host.empty()) headers["host"] = host;
    if (!authorization.empty()) headers["authorization"] = authorization;
    return request("GET", target, std::move(headers));
  }
};

TEST(AdminHost, LoopbackLocalhostAndListedNamesOnly) {
  const std::vector<std::string> names = {"ops.example.internal", "10.0.0.5"};
  for (const std::string ok :
       {"127.0.0.1:9301", "127.0.0.1", "127.1.2.3:80", "[::1]:9301", "[::1]", "localhost:9301",
        "LOCALHOST", "localhost.", "ops.example.internal", "Ops.Example.Internal:9301",
        "10.0.0.5:9301", "[::ffff:127.0.0.1]"}) {
    EXPECT_TRUE(admin_host_allowed(ok, names)) << ok;
  }
  for (const std::string bad : {"", "attacker.example", "attacker.example:9301", "127.0.0.1.nip.io",
                                "localhost.attacker.example", "10.0.0.6", "[::2]:9301", "::1",
                                "example.internal", "[::1", "[::1]x"}) {
    EXPECT_FALSE(admin_host_allowed(bad, names)) << bad;
  }
}

TEST_F(AdminSideTest, RebindingHostGets421OnEveryPageButHealth) {
  auto& a = api();
  for (const std::string path : {"/", "/metrics", "/api/environments"}) {
    const auto out = a.admin_side(get(path, "attacker.example:9301", "Bearer " + kToken));
    EXPECT_EQ(out.status, 421) << path;
    EXPECT_EQ(out.body.find("prod"), std::string::npos) << "nothing of the state leaks: " << path;
  }
  EXPECT_EQ(a.admin_side(get("/", "")).status, 421) << "no Host";
  EXPECT_EQ(a.admin_side(get("/healthz", "attacker.example")).status, 200);
  EXPECT_EQ(a.admin_side(get("/", "127.0.0.1:9301")).status, 200);
  EXPECT_EQ(a.admin_side(get("/metrics", "localhost:9301")).status, 200);
  EXPECT_TRUE(log_.contains(core::LogLevel::kWarn, "Host not accepted"));
}

TEST_F(AdminSideTest, ConfiguredNamesAndTheBoundAddressAreAccepted) {
  config_.serve.admin_listen = "10.1.2.3:9301";
  config_.serve.admin_hosts = {"intermission.ops.internal"};
  auto& a = api();
  EXPECT_EQ(a.admin_side(get("/", "intermission.ops.internal")).status, 200);
  EXPECT_EQ(a.admin_side(get("/", "10.1.2.3:9301")).status, 200);
  EXPECT_EQ(a.admin_side(get("/", "10.1.2.4:9301")).status, 421);
}

TEST_F(AdminSideTest, StatusAndMetricsAreOpenByDefault) {
  auto& a = api();
  EXPECT_EQ(a.admin_side(get("/", "localhost")).status, 200);
  EXPECT_EQ(a.admin_side(get("/metrics", "localhost")).status, 200);
}

TEST_F(AdminSideTest, StatusAndMetricsCanRequireTheToken) {
  config_.serve.status_requires_token = true;
  auto& a = api();
  for (const std::string path : {"/", "/metrics"}) {
    const auto none = a.admin_side(get(path, "localhost"));
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_EQ(none.body.find("prod"), std::string::npos) << path;
    EXPECT_EQ(a.admin_side(get(path, "localhost", "Bearer wrong")).status, 401) << path;
    EXPECT_EQ(a.admin_side(get(path, "localhost", "Bearer " + kToken)).status, 200) << path;
  }
  // A browser: Basic, any user name, the token as the password ("op:" + kToken in base64).
  const auto prompt = a.admin_side(get("/", "localhost"));
  bool basic = false;
  for (const auto& [k, v] : prompt.headers)
    basic = basic || (k == "WWW-Authenticate" && v.rfind("Basic", 0) == 0);
  EXPECT_TRUE(basic) << "the status page lets a browser ask for the token";
  EXPECT_EQ(
      a.admin_side(get("/", "localhost", "Basic b3A6MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="))
          .status,
      200);
  EXPECT_EQ(a.admin_side(get("/", "localhost", "Basic b3A6d3Jvbmc=")).status, 401);  // op:wrong
  EXPECT_EQ(a.admin_side(get("/healthz", "localhost")).status, 200) << "health needs no token";
}

TEST_F(AdminSideTest, RequiredTokenThatIsNotUsableClosesStatusAndMetrics) {
  config_.serve.status_requires_token = true;
  auto& a = api("");
  EXPECT_EQ(a.admin_side(get("/", "localhost")).status, 403);
  EXPECT_EQ(a.admin_side(get("/metrics", "localhost", "Bearer ")).status, 403);
  EXPECT_EQ(a.admin_side(get("/api/environments", "localhost", "Bearer ")).status, 403);
}

// ---- the dashboard ----

HttpRequest admin_post(const std::string& target, const std::string& body,
                       std::map<std::string, std::string> headers) {
  HttpRequest r;
  r.method = "POST";
  r.target = target;
  r.body = body;
  r.headers = std::move(headers);
  r.remote = "127.0.0.1";
  return r;
}

std::string header_of(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

TEST_F(AdminSideTest, TheDashboardIsServerRenderedUnderAStrictPolicy) {
  auto& a = api();
  const auto page = a.admin_side(get("/", "localhost:9301"));
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("data-env=\"prod\""), std::string::npos);
  EXPECT_NE(page.body.find("<span class=\"badge off\">off</span>"), std::string::npos);
  EXPECT_NE(page.body.find("<svg class=\"timeline\""), std::string::npos);
  EXPECT_NE(page.body.find("id=\"login\""), std::string::npos) << "a token is configured";
  const std::string csp = header_of(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(header_of(page, "X-Frame-Options"), "DENY");
  for (const std::string asset : {"/dashboard.js", "/dashboard.css"}) {
    const auto out = a.admin_side(get(asset, "localhost"));
    EXPECT_EQ(out.status, 200) << asset;
    EXPECT_FALSE(out.body.empty()) << asset;
    EXPECT_EQ(header_of(out, "X-Content-Type-Options"), "nosniff");
  }
  // Without a token the page has no controls.
  EXPECT_EQ(api("").admin_side(get("/", "localhost")).body.find("id=\"login\""), std::string::npos);
}

TEST_F(AdminSideTest, TheDashboardJsonSaysWhatThePageShows) {
  auto& a = api();
  ASSERT_EQ(a.admin_side(get("/dashboard.json", "localhost")).status, 200);  // reads the trail
  ASSERT_EQ(a.admin_side(admin_post("/api/environments/prod/on", R"({"reason":"db move","who":"alice","for":"1h"})",
                              {{"host", "localhost"}, {"authorization", "Bearer " + kToken}}))
                .status,
            200);
  const auto out = a.admin_side(get("/dashboard.json", "localhost"));
  ASSERT_EQ(out.status, 200);
  const auto doc = boost::json::parse(out.body).as_object();
  EXPECT_EQ(doc.at("poll_seconds").as_int64(), 5);
  const auto& e = doc.at("environments").as_array().at(0).as_object();
  EXPECT_EQ(e.at("environment").as_string(), "prod");
  EXPECT_TRUE(e.at("on").as_bool());
  EXPECT_EQ(e.at("who").as_string(), "alice");
  EXPECT_TRUE(e.at("pending").as_bool()) << "nothing switched the backend in this test";
  EXPECT_EQ(e.at("expected_end").as_string(), core::format_iso8601(clock_.now() + std::chrono::hours(1)));
  const std::string html(e.at("html").as_string());
  EXPECT_NE(html.find("class=\"hold-on\""), std::string::npos)
      << "the operator's action is on the timeline at once (the audit cache is forgotten)";
  EXPECT_NE(html.find("db move"), std::string::npos);
}

// The operator API makes the checks the CLI makes (the core's one check of an operator
// command): a past until, for and until together, values that are not strings, text that is
// not UTF-8 are refused with 400 and the reason, and nothing is written.
TEST_F(AdminSideTest, TheOperatorApiRefusesWhatTheCliRefuses) {
  clock_.set(*core::parse_iso8601("2026-06-01T00:00:00Z"));
  auto& a = api();
  const std::map<std::string, std::string> headers{{"host", "localhost"},
                                                   {"authorization", "Bearer " + kToken}};
  const int writes = store_.writes;
  for (const auto& [body, words] : std::vector<std::pair<std::string, std::string>>{
           {R"({"until":"2001-01-01T00:00:00Z"})", "in the past"},
           {R"({"for":"30m","until":"2999-01-01T00:00:00Z"})", "not both"},
           {R"({"for":"0s"})", "longer than 0s"},
           {R"({"until":1893456000})", "must be a string"},
           {"{\"reason\":\"caf\xe9 closed\"}", "not valid UTF-8"},
       }) {
    const auto out = a.admin_side(admin_post("/api/environments/prod/on", body, headers));
    EXPECT_EQ(out.status, 400) << body << ": " << out.body;
    EXPECT_NE(out.body.find(words), std::string::npos) << body << ": " << out.body;
  }
  EXPECT_EQ(store_.writes, writes);
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/on",
                                    "{\"reason\":\"caf\xc3\xa9 closed\",\"for\":\"1h\"}", headers))
                .status,
            200);
}

// /windows.json is public: a flood of requests must not become a flood of store reads (a
// DynamoDB GetItem per environment each), yet a window scheduled here is listed at once.
TEST_F(AdminSideTest, PublicWindowsAreReadFromTheStoreOncePerPeriod) {
  config_.environments["staging"] = config_.environments["prod"];
  config_.environments["staging"].name = "staging";
  clock_.set(*core::parse_iso8601("2026-06-01T00:00:00Z"));
  auto& a = api();
  const auto windows = [&a] { return a.public_side(request("GET", "/windows.json")); };
  const int before = store_.loads;
  const auto first = windows();
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(store_.loads - before, 2) << "one read per environment";
  for (int i = 0; i < 100; ++i) EXPECT_EQ(windows().body, first.body);
  EXPECT_EQ(store_.loads - before, 2) << "answered from the ledgers as read";
  EXPECT_EQ(header_of(windows(), "Cache-Control"), "public, max-age=30");

  const auto scheduled = a.admin_side(
      admin_post("/api/environments/prod/windows",
                 R"({"at":"2026-06-07T02:00:00Z","for":"2h","reason":"database upgrade"})",
                 {{"host", "localhost"}, {"authorization", "Bearer " + kToken}}));
  ASSERT_EQ(scheduled.status, 201) << scheduled.body;
  const auto after = windows();
  EXPECT_NE(after.body.find("database upgrade"), std::string::npos) << after.body;

  // A window written by another process (the CLI) shows once the period is over.
  int loads = store_.loads;
  clock_.advance(kWindowsServerCache);
  windows();
  EXPECT_EQ(store_.loads - loads, 2);

  // Windows are judged at each request's time, not at the read's: one that began since is
  // active, though the ledger is not read again.
  clock_.set(*core::parse_iso8601("2026-06-07T01:59:58Z"));
  loads = store_.loads;
  EXPECT_NE(windows().body.find(R"("active":false)"), std::string::npos);
  clock_.advance(std::chrono::seconds(3));
  EXPECT_NE(windows().body.find(R"("active":true)"), std::string::npos);
  EXPECT_EQ(store_.loads - loads, 2);
  // An operator's "off" through this daemon ends the window: shown at once.
  ASSERT_EQ(a.admin_side(admin_post("/api/environments/prod/off", "{}",
                                    {{"host", "localhost"}, {"authorization", "Bearer " + kToken}}))
                .status,
            200);
  EXPECT_EQ(windows().body.find("database upgrade"), std::string::npos);

  // An environment that could not be read is read again at the next request, and the answer
  // that left it out is not cacheable.
  clock_.advance(kWindowsServerCache);
  store_.load_failures_to_inject = 1;  // prod's read (environments in name order)
  const auto partial = windows();
  EXPECT_EQ(partial.status, 200);
  EXPECT_NE(partial.body.find("cannot be read"), std::string::npos) << partial.body;
  EXPECT_EQ(header_of(partial, "Cache-Control"), "no-store");
  loads = store_.loads;
  const auto again = windows();
  EXPECT_EQ(store_.loads - loads, 1) << "prod read again, staging from the read before";
  EXPECT_EQ(again.body.find("cannot be read"), std::string::npos) << again.body;
  EXPECT_EQ(header_of(again, "Cache-Control"), "public, max-age=30");
}

TEST_F(AdminSideTest, TheDashboardJsonNeedsTheTokenWhenTheStatusPageDoes) {
  config_.serve.status_requires_token = true;
  auto& a = api();
  EXPECT_EQ(a.admin_side(get("/dashboard.json", "localhost")).status, 401);
  EXPECT_EQ(a.admin_side(get("/dashboard.json", "localhost", "Bearer " + kToken)).status, 200);
  EXPECT_EQ(a.admin_side(get("/dashboard.js", "localhost")).status, 200) << "no secret in it";
  EXPECT_EQ(a.admin_side(get("/dashboard.json", "attacker.example")).status, 421);
}

TEST_F(AdminSideTest, CrossSiteStateChangesAreRefusedWhateverTheyCarry) {
  auto& a = api();
  const std::string basic = "Basic b3A6MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";  // op:token
  // A form on another site posting to us: form-encoded, the browser's cached Basic credentials,
  // a foreign Origin.
  auto forged = a.admin_side(admin_post("/api/environments/prod/off", "reason=x",
                                  {{"host", "localhost:9301"},
                                   {"origin", "https://attacker.example"},
                                   {"content-type", "application/x-www-form-urlencoded"},
                                   {"authorization", basic}}));
  EXPECT_EQ(forged.status, 403);
  EXPECT_NE(forged.body.find("cross-site"), std::string::npos);
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/on", "",
                              {{"host", "localhost:9301"}, {"sec-fetch-site", "cross-site"},
                               {"authorization", "Bearer " + kToken}}))
                .status,
            403);
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/on", "",
                              {{"host", "localhost:9301"}, {"sec-fetch-site", "same-site"},
                               {"origin", "http://localhost:3000"},
                               {"authorization", "Bearer " + kToken}}))
                .status,
            403)
      << "another port of the same host is another origin";
  // A form with no token from a page of no origin at all ("null").
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/on", "", {{"host", "localhost:9301"}, {"origin", "null"}}))
                .status,
            403);
  EXPECT_TRUE(log_.contains(core::LogLevel::kWarn, "cross-site"));
  auto state = store_.load("prod");
  ASSERT_TRUE(state);
  EXPECT_FALSE(state->hold) << "nothing was recorded";
  // The dashboard's own fetch: same origin, the token as a Bearer header.
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/on", "{}",
                              {{"host", "localhost:9301"}, {"origin", "http://localhost:9301"},
                               {"sec-fetch-site", "same-origin"},
                               {"authorization", "Bearer " + kToken}}))
                .status,
            200);
  // curl and the CLI send neither header: judged by the token alone.
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/off", "{}", {{"host", "localhost"}})).status, 401);
  EXPECT_EQ(a.admin_side(admin_post("/api/environments/prod/off", "{}",
                              {{"host", "localhost"}, {"authorization", "Bearer " + kToken}}))
                .status,
            200);
}

TEST(CrossSite, OnlyStateChangingRequestsAreJudged) {
  HttpRequest r;
  r.method = "GET";
  r.headers = {{"host", "localhost"}, {"origin", "https://attacker.example"}, {"sec-fetch-site", "cross-site"}};
  EXPECT_FALSE(cross_site_refusal(r));
  r.method = "DELETE";
  EXPECT_TRUE(cross_site_refusal(r));
  r.headers = {{"host", "LOCALHOST:9301"}, {"origin", "http://localhost:9301"}, {"sec-fetch-site", "none"}};
  EXPECT_FALSE(cross_site_refusal(r));
}

// ---- the native webhooks: Flux, Argo CD, GitHub ----

const std::string kFluxSecret = "flux-secret-0123456789abcdef0123456789";
const std::string kArgoToken = "argocd-token-0123456789abcdef012345678";
const std::string kGitHubSecret = "github-secret-0123456789abcdef01234567";

class NativeWebhookTest : public ServeApiFixture {
 protected:
  NativeWebhookTest() {
    core::EnvironmentConfig production = config_.environments["prod"];
    production.name = "production";
    config_.environments["production"] = production;
    config_.serve.flux_objects = {{"Kustomization/apps/webapp", "prod"}};
    clock_.set(*core::parse_iso8601("2026-12-02T06:10:30Z"));
  }

  ServeApi& api() {
    Secrets secrets;
    secrets.flux = kFluxSecret;
    secrets.argocd = kArgoToken;
    secrets.github = kGitHubSecret;
    return start(secrets);
  }

  static HttpRequest post(const std::string& target, const std::string& body,
                          std::map<std::string, std::string> headers) {
    return request("POST", target, std::move(headers), body);
  }
  static HttpRequest flux(const std::string& body, const std::string& secret = kFluxSecret) {
    return post("/webhook/flux", body,
                {{"x-signature", "sha256=" + adapters::hmac_sha256_hex(secret, body)},
                 {"gotk-component", "kustomize-controller"}});
  }
  static HttpRequest github(const std::string& event, const std::string& delivery,
                            const std::string& body, const std::string& secret = kGitHubSecret) {
    return post("/webhook/github", body,
                {{"x-hub-signature-256", "sha256=" + adapters::hmac_sha256_hex(secret, body)},
                 {"x-github-event", event},
                 {"x-github-delivery", delivery}});
  }
  bool on(const std::string& env = "prod") {
    auto s = store_.load(env);
    return s.ok() && core::decide(*s, *config_.environment(env), clock_.now()).on;
  }
  static std::string outcome(const HttpResponse& r) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(r.body, ec);
    const auto* o = !ec ? v.if_object() : nullptr;
    const auto* x = o != nullptr ? o->if_contains("outcome") : nullptr;
    return x != nullptr && x->is_string() ? std::string(x->get_string()) : r.body;
  }
};

TEST_F(NativeWebhookTest, FluxSignedEventsStartAndEndTheDeployment) {
  auto& a = api();
  const auto started = a.public_side(flux(read_fixture("flux/event-progressing-changeset.json")));
  EXPECT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(outcome(started), "recorded");
  EXPECT_TRUE(on());
  clock_.set(*core::parse_iso8601("2026-12-02T06:11:40Z"));
  const auto ended = a.public_side(flux(read_fixture("flux/event-reconciliation-succeeded.json")));
  EXPECT_EQ(outcome(ended), "recorded") << ended.body;
  EXPECT_FALSE(on());
}

TEST_F(NativeWebhookTest, FluxRefusesBadSignaturesStaleEventsAndActsOnAnEventOnce) {
  auto& a = api();
  const std::string body = read_fixture("flux/event-progressing-changeset.json");
  const auto wrong = a.public_side(flux(body, "another-secret-0123456789abcdef0123"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.body.find("X-Signature"), std::string::npos) << wrong.body;
  EXPECT_EQ(a.public_side(post("/webhook/flux", body, {})).status, 401) << "no signature";
  auto sha1 = post("/webhook/flux", body, {{"x-signature", "sha1=00"}});
  const auto unsupported = a.public_side(sha1);
  EXPECT_EQ(unsupported.status, 401);
  EXPECT_NE(unsupported.body.find("sha1"), std::string::npos) << unsupported.body;
  auto sha512 = post("/webhook/flux", body,
                     {{"x-signature", "sha512=" + *adapters::hmac_hex("sha512", kFluxSecret, body)}});
  EXPECT_EQ(outcome(a.public_side(sha512)), "recorded") << "any algorithm Flux documents";
  EXPECT_EQ(outcome(a.public_side(flux(body))), "duplicate") << "the same event again";
  clock_.set(*core::parse_iso8601("2026-12-02T07:10:30Z"));
  const auto stale = a.public_side(flux(read_fixture("flux/event-reconciliation-succeeded.json")));
  EXPECT_EQ(stale.status, 401);
  EXPECT_NE(stale.body.find("timestamp"), std::string::npos) << stale.body;
  EXPECT_EQ(a.public_side(flux("not json")).status, 400);
}

TEST_F(NativeWebhookTest, FluxEventsAboutOtherObjectsAreAcknowledgedAndIgnored) {
  config_.serve.flux_objects = {{"Kustomization/apps/other", "prod"}};
  auto& a = api();
  const auto r = a.public_side(flux(read_fixture("flux/event-progressing-changeset.json")));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(outcome(r), "ignored");
  EXPECT_NE(r.body.find("serve.flux.objects"), std::string::npos) << r.body;
  EXPECT_FALSE(on());
}

TEST_F(NativeWebhookTest, ArgoCdCarriesItsTokenAndOurBody) {
  auto& a = api();
  const std::string body = read_fixture("argocd/rendered-started.json");  // what the README's template renders
  const auto none = a.public_side(post("/webhook/argocd", body, {}));
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("Authorization"), std::string::npos) << none.body;
  EXPECT_EQ(a.public_side(post("/webhook/argocd", body, {{"authorization", "Bearer " + kFluxSecret}})).status, 401)
      << "another source's secret";
  EXPECT_FALSE(on());
  const auto ok = a.public_side(post("/webhook/argocd", body, {{"authorization", "Bearer " + kArgoToken}}));
  EXPECT_EQ(outcome(ok), "recorded") << ok.body;
  EXPECT_TRUE(on());
  EXPECT_EQ(outcome(a.public_side(post("/webhook/argocd", body, {{"authorization", "Bearer " + kArgoToken}}))),
            "duplicate");
  EXPECT_EQ(a.public_side(post("/webhook/argocd", "{}", {{"authorization", "Bearer " + kArgoToken}})).status, 400);
  // basicAuth in Argo CD's webhook service: any user name, the token as the password.
  std::string done = body;
  done.replace(done.find("started"), 7, "succeeded");
  const std::string encoded = "YXJnb2NkOmFyZ29jZC10b2tlbi0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4";  // argocd:<kArgoToken>
  EXPECT_EQ(outcome(a.public_side(post("/webhook/argocd", done, {{"authorization", "Basic " + encoded}}))),
            "recorded");
  EXPECT_FALSE(on());
}

TEST_F(NativeWebhookTest, GitHubDeploymentStatusesAreVerifiedAndEachDeliveryActedOnOnce) {
  clock_.set(*core::parse_iso8601("2019-05-15T15:21:00Z"));
  auto& a = api();
  std::string body = read_fixture("github/deployment_status-success.octokit.json");
  std::string started = body;
  started.replace(started.find("\"state\": \"success\""), 18, "\"state\": \"in_progress\"");
  const auto wrong = a.public_side(github("deployment_status", "d-1", started, "another-secret-0123456789abcdef0123"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.body.find("X-Hub-Signature-256"), std::string::npos) << wrong.body;
  EXPECT_EQ(a.public_side(github("deployment_status", "", started)).status, 400) << "no delivery id";
  EXPECT_EQ(outcome(a.public_side(github("deployment_status", "d-1", started))), "recorded");
  EXPECT_TRUE(on("production"));
  EXPECT_EQ(outcome(a.public_side(github("deployment_status", "d-1", started))), "duplicate");
  EXPECT_EQ(outcome(a.public_side(github("ping", "d-2", R"({"zen":"Keep it logically awesome."})"))), "ignored");
  EXPECT_EQ(outcome(a.public_side(github("deployment_status", "d-3", body))), "recorded");
  EXPECT_FALSE(on("production"));
  clock_.set(*core::parse_iso8601("2019-05-17T15:21:00Z"));
  const auto old = a.public_side(github("deployment_status", "d-4", started));
  EXPECT_EQ(old.status, 401) << "older than the deliveries remembered";
  EXPECT_NE(old.body.find("created_at"), std::string::npos) << old.body;
}

TEST_F(NativeWebhookTest, ASourceWithoutASecretIsNotThere) {
  auto& a = api();
  ServeApi none(ServeApi::Deps{config_, *controller_, store_, backends_, certs_, clock_, log_, metrics_,
                               [](const std::string&) {},
                               [](const std::string&) -> core::Status { return {}; }, "", "", "", "", ""});
  for (const char* path : {"/webhook/flux", "/webhook/argocd", "/webhook/github"}) {
    EXPECT_EQ(none.public_side(post(path, "{}", {})).status, 404) << path;
    EXPECT_NE(a.public_side(post(path, "{}", {})).status, 404) << path;
  }
}

}  // namespace
}  // namespace intermission::app
