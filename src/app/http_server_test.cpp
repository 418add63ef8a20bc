#include "app/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <future>
#include <thread>

#include <sys/resource.h>

#include "testing/accept_refusal.h"

namespace intermission::app {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// The daemon's listener on loopback port 0, run on its own thread for the test.
class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits) {
    server_ = std::make_unique<HttpServer>(io_, limits, [](const HttpRequest&) {
      return json_response(200, R"({"ok":true})");
    });
    auto st = server_->listen({tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)});
    ASSERT_TRUE(st.ok()) << st.error().message;
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] { server_->stop(); });
    io_.stop();
    thread_.join();
  }

  // Sends a request on `s` and reads the answer until the server closes.
  static std::string ask(tcp::socket& s) {
    asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (!ec) out.append(buf, s.read_some(asio::buffer(buf), ec));
    return out;
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

// Over the cap a connection is closed at once (not left in the queue); the held ones are
// served, and the place is free again once one closes.
TEST_F(HttpServerTest, ConnectionsOverTheCapAreClosedAtOnce) {
  HttpLimits limits;
  limits.max_connections = 2;
  start(limits);
  asio::io_context client;
  tcp::socket a(client), b(client), c(client);
  a.connect(server_->endpoints()[0]);
  b.connect(server_->endpoints()[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  c.connect(server_->endpoints()[0]);
  EXPECT_EQ(ask(c), "") << "closed without an answer";
  EXPECT_EQ(ask(a).rfind("HTTP/1.1 200", 0), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  tcp::socket d(client);
  d.connect(server_->endpoints()[0]);
  EXPECT_EQ(ask(d).rfind("HTTP/1.1 200", 0), 0u) << "a's place was given back";
  EXPECT_EQ(ask(b).rfind("HTTP/1.1 200", 0), 0u);
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// accept() failing with EMFILE leaves the connection queued: the listener pauses instead of
// retrying at once for ever, and accepts the queued connection once descriptors are free.
// The server's thread gets EMFILE from accept() alone (testing/accept_refusal.h says why the
// descriptor limit itself is not lowered).
TEST_F(HttpServerTest, OutOfDescriptorsPausesAcceptingInsteadOfSpinning) {
  start(HttpLimits{});
  std::promise<bool> refusing;
  asio::post(io_,
             [&] { refusing.set_value(intermission::testing::refuse_accept_on_this_thread()); });
  ASSERT_TRUE(refusing.get_future().get()) << "seccomp filter refused";
  asio::io_context client;
  constexpr int kQueued = 4;
  std::vector<tcp::socket> queued;
  for (int i = 0; i < kQueued; ++i) queued.emplace_back(client).connect(server_->endpoints()[0]);
  asio::write(queued[0], asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const double spent = process_cpu_seconds() - before;
  EXPECT_LT(spent, 0.2) << "accept() spun on EMFILE";
  EXPECT_EQ(queued[0].available(), 0u) << "not accepted while accept() fails";
  // Descriptors free again: the server goes on on a thread whose accept() works.
  io_.stop();
  thread_.join();
  io_.restart();
  thread_ = std::thread([this] { io_.run(); });
  EXPECT_EQ(ask(queued.back()).rfind("HTTP/1.1 200", 0), 0u)
      << "accepted once descriptors are free";
}

TEST(DaemonConnectionCap, IsBelowTheFdLimit) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  const std::size_t cap = daemon_connection_cap(2);
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);  // possibly raised
  EXPECT_GE(cap, 1u);
  EXPECT_LE(cap, 4096u);
  EXPECT_LT(2 * cap, limit.rlim_cur) << "two listeners' connections fit, with room to spare";
}

}  // namespace
}  // namespace intermission::app
