#include "adapters/notify/http_notifier.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <functional>
#include <mutex>
#include <thread>

#include "adapters/crypto/hmac.h"
#include "testing/fakes.h"

namespace intermission::adapters {
namespace {

using namespace std::chrono_literals;

// A plain-HTTP receiver on 127.0.0.1 that reads each request whole (headers and a
// Content-Length body) and answers with what `handler` returns; a reply with `hang` set is
// never answered (the connection stays open until the receiver is destroyed).
class Receiver {
 public:
  struct Reply {
    int status = 200;
    std::string headers;  // "Retry-After: 1\r\n"
    bool hang = false;
  };
  struct Request {
    std::string head;
    std::string body;
    std::chrono::steady_clock::time_point at;
    std::string header(const std::string& name) const {
      const auto at_name = head.find("\r\n" + name + ": ");
      if (at_name == std::string::npos) return "";
      const auto start = at_name + name.size() + 4;
      return head.substr(start, head.find("\r\n", start) - start);
    }
  };
  explicit Receiver(std::function<Reply(int)> handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Receiver() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (const int c : hung_) ::close(c);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  std::vector<Request> requests() {
    const std::lock_guard l(mu_);
    return requests_;
  }

 private:
  void loop() {
    for (int n = 0;; ++n) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      Request req;
      std::string data;
      char buf[4096];
      std::size_t need = std::string::npos;
      for (;;) {
        if (need == std::string::npos) {
          const auto end = data.find("\r\n\r\n");
          if (end != std::string::npos) {
            req.head = data.substr(0, end + 2);
            const std::string length = req.header("Content-Length");
            need = end + 4 + (length.empty() ? 0 : std::stoul(length));
          }
        }
        if (need != std::string::npos && data.size() >= need) break;
        const ssize_t got = ::read(c, buf, sizeof buf);
        if (got <= 0) break;
        data.append(buf, static_cast<std::size_t>(got));
      }
      if (need != std::string::npos) req.body = data.substr(req.head.size() + 2);
      req.at = std::chrono::steady_clock::now();
      {
        const std::lock_guard l(mu_);
        requests_.push_back(req);
      }
      const Reply r = handler_(n);
      if (r.hang) {
        hung_.push_back(c);
        continue;
      }
      const std::string out = "HTTP/1.1 " + std::to_string(r.status) +
                              " X\r\nContent-Length: 2\r\nConnection: close\r\n" + r.headers +
                              "\r\nok";
      (void)!::write(c, out.data(), out.size());
      ::close(c);
    }
  }

  std::function<Reply(int)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::vector<int> hung_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

// A loopback port nothing listens on: bound, never listened to, so a connect is refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class Reports {
 public:
  void add(const DeliveryReport& r) {
    const std::lock_guard l(mu_);
    all_.push_back(r);
  }
  std::vector<DeliveryReport> all() {
    const std::lock_guard l(mu_);
    return all_;
  }

 private:
  std::mutex mu_;
  std::vector<DeliveryReport> all_;
};

core::Notice notice(const std::string& env = "prod") {
  core::Notice n;
  n.kind = core::NoticeKind::kSwitchedOn;
  n.environment = env;
  n.time = core::from_epoch_ms(1'700'000'000'000);
  n.reason = "maintenance window w1 by alice";
  return n;
}

NotifyTarget slack(const std::string& url) {
  NotifyTarget t;
  t.name = "slack-0";
  t.type = NotifyTarget::Type::kSlack;
  t.url = url;
  return t;
}

NotifierOptions fast() {
  NotifierOptions o;
  o.timeout = 1000ms;
  o.attempts = 3;
  o.backoff = 20ms;
  o.backoff_cap = 2000ms;
  return o;
}

class HttpNotifierTest : public ::testing::Test {
 protected:
  std::unique_ptr<HttpNotifier> make(std::vector<NotifyTarget> targets,
                                     NotifierOptions options = fast()) {
    return std::make_unique<HttpNotifier>(std::move(targets), options, clock_,
                                          [this](const DeliveryReport& r) { reports_.add(r); });
  }
  testing::ManualClock clock_;
  Reports reports_;
};

// The signature as a receiver checks it, with the HMAC computed by Python's hmac module:
// hmac.new(b"s3cret", b"1700000000." + body, "sha256").hexdigest() for body b'{"a":1}'.
TEST(BuildRequest, AWebhookIsSignedOverTimestampDotBody) {
  EXPECT_EQ(hmac_sha256_hex("s3cret", core::webhook_signed_text("1700000000", "{\"a\":1}")),
            "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
  NotifyTarget t;
  t.type = NotifyTarget::Type::kWebhook;
  t.secret = "s3cret";
  const auto r = build_request(t, notice(), 1'700'000'000);
  const std::string expected =
      "X-Intermission-Signature: sha256=" +
      hmac_sha256_hex("s3cret", "1700000000." + core::webhook_body(notice()));
  EXPECT_NE(std::find(r.headers.begin(), r.headers.end(), expected), r.headers.end());
  EXPECT_NE(std::find(r.headers.begin(), r.headers.end(), "X-Intermission-Timestamp: 1700000000"),
            r.headers.end());
  EXPECT_NE(std::find(r.headers.begin(), r.headers.end(),
                      "X-Intermission-Delivery: prod/switched-on/1700000000000"),
            r.headers.end());
  EXPECT_EQ(r.body, core::webhook_body(notice()));
  const auto s = build_request(slack("x"), notice(), 1'700'000'000);
  EXPECT_EQ(s.body, core::slack_payload(notice()));
  for (const auto& h : s.headers) EXPECT_EQ(h.find("X-Intermission-Signature"), std::string::npos);
}

TEST(NotifyTarget, FiltersByKindAndEnvironment) {
  NotifyTarget t = slack("x");
  EXPECT_TRUE(t.wants(notice()));
  t.kinds = {core::NoticeKind::kSwitchFailed};
  EXPECT_FALSE(t.wants(notice()));
  t.kinds = {core::NoticeKind::kSwitchedOn};
  t.environments = {"staging"};
  EXPECT_FALSE(t.wants(notice()));
  EXPECT_TRUE(t.wants(notice("staging")));
}

TEST_F(HttpNotifierTest, DeliversASlackPayload) {
  Receiver rx([](int) { return Receiver::Reply{}; });
  auto n = make({slack(rx.url())});
  n->notify(notice());
  ASSERT_TRUE(n->wait_idle(5s));
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].head.substr(0, 15), "POST /hook HTTP");
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  const auto body = boost::json::parse(reqs[0].body).as_object();
  EXPECT_TRUE(body.contains("text"));
  EXPECT_TRUE(body.contains("blocks"));
  const auto r = reports_.all();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, DeliveryReport::Result::kDelivered);
  EXPECT_EQ(r[0].attempts, 1);
  EXPECT_EQ(r[0].detail, "HTTP 200");
  EXPECT_EQ(r[0].target, "slack-0");
}

TEST_F(HttpNotifierTest, A500IsRetriedUntilItSucceeds) {
  Receiver rx([](int n) { return Receiver::Reply{n < 2 ? 500 : 200, "", false}; });
  auto n = make({slack(rx.url())});
  n->notify(notice());
  ASSERT_TRUE(n->wait_idle(5s));
  EXPECT_EQ(rx.requests().size(), 3u);
  const auto r = reports_.all();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, DeliveryReport::Result::kDelivered);
  EXPECT_EQ(r[0].attempts, 3);
}

TEST_F(HttpNotifierTest, A429WaitsForItsRetryAfter) {
  Receiver rx([](int n) {
    return Receiver::Reply{n == 0 ? 429 : 200, "Retry-After: 1\r\n", false};
  });
  auto n = make({slack(rx.url())});
  n->notify(notice());
  ASSERT_TRUE(n->wait_idle(5s));
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_GE(reqs[1].at - reqs[0].at, 990ms) << "Retry-After: 1, not the 20 ms backoff";
  EXPECT_EQ(reports_.all().at(0).result, DeliveryReport::Result::kDelivered);
}

// The same as an HTTP-date, read against the notifier's clock (a manual one here).
TEST_F(HttpNotifierTest, A503WaitsUntilItsRetryAfterDate) {
  const std::string header =
      "Retry-After: " + core::format_http_date(clock_.now() + std::chrono::seconds(1)) + "\r\n";
  Receiver rx([header](int n) { return Receiver::Reply{n == 0 ? 503 : 200, header, false}; });
  auto n = make({slack(rx.url())});
  n->notify(notice());
  ASSERT_TRUE(n->wait_idle(5s));
  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_GE(reqs[1].at - reqs[0].at, 990ms) << header << " is 1 s from now, not the 20 ms backoff";
}

TEST_F(HttpNotifierTest, A400IsNotRetried) {
  Receiver rx([](int) { return Receiver::Reply{400, "", false}; });
  auto n = make({slack(rx.url())});
  n->notify(notice());
  ASSERT_TRUE(n->wait_idle(5s));
  EXPECT_EQ(rx.requests().size(), 1u);
  const auto r = reports_.all();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, DeliveryReport::Result::kFailed);
  EXPECT_EQ(r[0].attempts, 1);
  EXPECT_EQ(r[0].detail, "HTTP 400 (not retried)");
}

TEST_F(HttpNotifierTest, AReceiverThatIsDownFailsAfterEveryAttempt) {
  ClosedPort down;
  auto n = make({slack(down.url())});
  n->notify(notice());
  ASSERT_TRUE(n->wait_idle(5s));
  const auto r = reports_.all();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, DeliveryReport::Result::kFailed);
  EXPECT_EQ(r[0].attempts, 3);
  EXPECT_FALSE(r[0].detail.empty());
}

TEST_F(HttpNotifierTest, AReceiverThatNeverAnswersTimesOutAndOthersAreStillServed) {
  Receiver hang([](int) { return Receiver::Reply{200, "", true}; });
  Receiver ok([](int) { return Receiver::Reply{}; });
  NotifierOptions o = fast();
  o.timeout = 300ms;
  o.attempts = 2;
  NotifyTarget second = slack(ok.url());
  second.name = "slack-1";
  auto n = make({slack(hang.url()), second}, o);
  const auto before = std::chrono::steady_clock::now();
  n->notify(notice());
  // Delivering in the caller would take two timeouts (600 ms) before it returned.
  EXPECT_LT(std::chrono::steady_clock::now() - before, 250ms);
  ASSERT_TRUE(n->wait_idle(5s));
  // Both attempts reached the receiver (its thread may still be recording the second).
  for (int i = 0; i < 500 && hang.requests().size() < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(hang.requests().size(), 2u);
  EXPECT_EQ(ok.requests().size(), 1u);
  std::map<std::string, DeliveryReport> by_target;
  for (const auto& r : reports_.all()) by_target[r.target] = r;
  EXPECT_EQ(by_target["slack-0"].result, DeliveryReport::Result::kFailed);
  EXPECT_EQ(by_target["slack-0"].attempts, 2);
  EXPECT_EQ(by_target["slack-1"].result, DeliveryReport::Result::kDelivered);
}

TEST_F(HttpNotifierTest, AFullQueueDropsTheOldestAndNeverBlocks) {
  Receiver hang([](int) { return Receiver::Reply{200, "", true}; });
  NotifierOptions o = fast();
  o.queue = 2;
  o.timeout = 500ms;
  o.attempts = 1;
  auto n = make({slack(hang.url())}, o);
  core::Notice first = notice("e0");
  n->notify(first);
  // Let the first go in flight, then queue four: two fit, the two oldest of them are dropped.
  for (int i = 0; i < 100 && hang.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
  const auto before = std::chrono::steady_clock::now();
  for (int i = 1; i <= 4; ++i) n->notify(notice("e" + std::to_string(i)));
  // Waiting for room would take the in-flight delivery's timeout (500 ms).
  EXPECT_LT(std::chrono::steady_clock::now() - before, 250ms);
  ASSERT_TRUE(n->wait_idle(5s));
  std::map<std::string, DeliveryReport::Result> by_env;
  for (const auto& r : reports_.all()) by_env[r.notice.environment] = r.result;
  EXPECT_EQ(by_env["e1"], DeliveryReport::Result::kDropped);
  EXPECT_EQ(by_env["e2"], DeliveryReport::Result::kDropped);
  EXPECT_EQ(by_env["e3"], DeliveryReport::Result::kFailed);
  EXPECT_EQ(by_env["e4"], DeliveryReport::Result::kFailed);
  EXPECT_EQ(reports_.all().size(), 5u);
}

TEST_F(HttpNotifierTest, StoppingReportsWhatIsLeftAsDropped) {
  ClosedPort down;
  NotifierOptions o = fast();
  o.backoff = 60'000ms;
  o.backoff_cap = 60'000ms;
  auto n = make({slack(down.url())}, o);
  n->notify(notice());
  std::this_thread::sleep_for(100ms);  // the first attempt is refused; its retry waits
  n.reset();
  const auto r = reports_.all();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].result, DeliveryReport::Result::kDropped);
  EXPECT_EQ(r[0].detail.substr(0, 13), "shutting down") << r[0].detail;
}

}  // namespace
}  // namespace intermission::adapters
