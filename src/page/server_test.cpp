#include "page/server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <future>
#include <thread>

#include <sys/resource.h>

#include "testing/accept_refusal.h"

namespace intermission::page {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// A server on loopback port 0, run on its own thread for the test.
class ServerTest : public ::testing::Test {
 protected:
  // Far from the "at once" of the tests, however slow the machine.
  virtual std::chrono::seconds idle_timeout() const { return std::chrono::seconds(10); }

  void SetUp() override {
    PageOptions o;
    responses_ = std::make_shared<ResponseSet>(o, core::from_epoch_ms(0));
    ServerLimits limits;
    limits.idle_timeout = idle_timeout();
    limits.header_limit = 1024;
    server_ = std::make_unique<PageServer>(io_, limits, [this] { return responses_; });
    auto eps = parse_listen("127.0.0.1:0,[::1]:0");
    ASSERT_TRUE(eps.ok());
    auto st = server_->listen(*eps);
    ASSERT_TRUE(st.ok()) << st.error().message;
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_->stop(); });
    io_.stop();
    thread_.join();
  }

  // Sends `request` on a fresh connection and reads until the server closes or `timeout`.
  std::string exchange(const std::string& request, std::size_t endpoint = 0) {
    asio::io_context client;
    tcp::socket s(client);
    s.connect(server_->endpoints()[endpoint]);
    asio::write(s, asio::buffer(request));
    s.shutdown(tcp::socket::shutdown_send);
    std::string out;
    boost::system::error_code ec;
    char buf[4096];
    for (;;) {
      const std::size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

  asio::io_context io_;
  std::shared_ptr<const ResponseSet> responses_;
  std::unique_ptr<PageServer> server_;
  std::thread thread_;
};

TEST_F(ServerTest, ServesIPv4AndIPv6) {
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0)
                .rfind("HTTP/1.1 503", 0),
            0u);
  EXPECT_EQ(exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1)
                .rfind("HTTP/1.1 200", 0),
            0u);
}

TEST_F(ServerTest, PipelinedKeepAliveRequestsAreAllAnswered) {
  const std::string r = exchange(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\n"
      "Host: x\r\nConnection: close\r\n\r\n");
  std::size_t count = 0;
  for (std::size_t p = r.find("HTTP/1.1 "); p != std::string::npos; p = r.find("HTTP/1.1 ", p + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 4u) << r;
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos);
}

TEST_F(ServerTest, Http10ClosesAfterTheResponse) {
  const std::string r = exchange("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_NE(r.find("Connection: close"), std::string::npos);
}

TEST_F(ServerTest, OversizedHeadersGet431AndGarbageGets400) {
  const std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a') +
                          "\r\n\r\n";
  EXPECT_EQ(exchange(big).rfind("HTTP/1.1 431", 0), 0u);
  EXPECT_EQ(exchange("\x01\x02\x03 nonsense\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  // And the server is still there for everyone else.
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .rfind("HTTP/1.1 503", 0),
            0u);
}

// The same server with an idle timeout short enough to wait for.
class ShortIdleServerTest : public ServerTest {
 protected:
  std::chrono::seconds idle_timeout() const override { return std::chrono::seconds(1); }
};

TEST_F(ShortIdleServerTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  asio::io_context client;
  tcp::socket s(client);
  s.connect(server_->endpoints()[0]);
  // Half a request line, then silence (slowloris): the server gives up after 1 s.
  asio::write(s, asio::buffer(std::string("GET / HT")));
  const auto start = std::chrono::steady_clock::now();
  char buf[256];
  boost::system::error_code ec;
  std::size_t total = 0;
  while (!ec) total += s.read_some(asio::buffer(buf), ec);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(total, 0u);
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST_F(ServerTest, RequestBodiesAreReadAndDiscarded) {
  const std::string body(10'000, 'x');
  const std::string r = exchange("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\n\r\n" + body +
                                 "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_NE(r.find("HTTP/1.1 200 OK"), std::string::npos) << "the next request still parses";
  const std::string huge = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n";
  EXPECT_EQ(exchange(huge).rfind("HTTP/1.1 413", 0), 0u);
}

TEST_F(ServerTest, ExpectContinueGetsTheFinalAnswerAtOnce) {
  asio::io_context client;
  tcp::socket s(client);
  s.connect(server_->endpoints()[0]);
  asio::write(s, asio::buffer(std::string(
                     "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                     "Expect: 100-continue\r\n\r\n")));
  // No body is sent: the answer must not wait for one.
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  while (!ec) out.append(buf, s.read_some(asio::buffer(buf), ec));
  EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out;
  EXPECT_NE(out.find("Connection: close"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << "not at the idle timeout";
}

TEST_F(ServerTest, Http09AndBadMethodsGetDefinedAnswers) {
  EXPECT_EQ(exchange("GET /\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(exchange("BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .rfind("HTTP/1.1 503", 0),
            0u);
  EXPECT_EQ(exchange("GET / HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\x02\r\n\r\n").rfind("HTTP/1.1 400", 0),
            0u);
}

// A bad request followed by more bytes: closing with them unread would send RST and could
// destroy the 400 before the client reads it. The server half-closes and drops the rest.
TEST_F(ServerTest, AnswerToABadRequestSurvivesBytesStillComing) {
  asio::io_context client;
  tcp::socket s(client);
  s.connect(server_->endpoints()[0]);
  asio::write(s, asio::buffer(std::string("GET /\r\n\r\n")));  // HTTP/0.9: 400
  std::this_thread::sleep_for(std::chrono::milliseconds(100));    // the answer is sent
  asio::write(s, asio::buffer(std::string(256 * 1024, 'x')));   // then more arrives
  s.shutdown(tcp::socket::shutdown_send);
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  while (!ec) out.append(buf, s.read_some(asio::buffer(buf), ec));
  EXPECT_EQ(ec, asio::error::eof) << ec.message() << " instead of an orderly close";
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out.substr(0, 80);
}

// HTTP/0.9 sends one line and waits: it gets its answer at once, not at the idle timeout.
TEST_F(ServerTest, Http09LineIsAnsweredWithoutWaitingForMore) {
  asio::io_context client;
  tcp::socket s(client);
  s.connect(server_->endpoints()[0]);
  asio::write(s, asio::buffer(std::string("GET /\r\n")));
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  while (!ec) out.append(buf, s.read_some(asio::buffer(buf), ec));
  EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5))
      << "not at the idle timeout";
}

// Whether the server closed a connection (EOF or reset) within `wait`.
bool closed_by_server(tcp::socket& s, std::chrono::milliseconds wait) {
  s.non_blocking(true);
  const auto until = std::chrono::steady_clock::now() + wait;
  char c = 0;
  for (;;) {
    boost::system::error_code ec;
    s.read_some(asio::buffer(&c, 1), ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
    if (ec != asio::error::would_block) return !ec ? false : true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Two servers (as two threads would have) share one budget: the cap is the total.
TEST(ConnectionCap, IsSharedByTheServersOfOneBudget) {
  asio::io_context io;
  auto responses = std::make_shared<const ResponseSet>(PageOptions{}, core::from_epoch_ms(0));
  auto budget = std::make_shared<ConnectionBudget>(3);
  PageServer a(io, {}, [&] { return responses; }, budget);
  PageServer b(io, {}, [&] { return responses; }, budget);
  ASSERT_TRUE(a.listen(*parse_listen("127.0.0.1:0")).ok());
  ASSERT_TRUE(b.listen(*parse_listen("127.0.0.1:0")).ok());
  std::thread thread([&] { io.run(); });
  asio::io_context client;
  std::vector<tcp::socket> held;
  // Each sends the start of a request: with TCP_DEFER_ACCEPT a connection that has sent
  // nothing is not handed to the server yet.
  for (int i = 0; i < 3; ++i) {
    held.emplace_back(client).connect((i < 2 ? a : b).endpoints()[0]);
    asio::write(held.back(), asio::buffer(std::string("G")));
  }
  for (int i = 0; i < 500 && budget->in_use() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // until all three are accepted
  }
  ASSERT_EQ(budget->in_use(), 3u);
  tcp::socket over_a(client);
  over_a.connect(a.endpoints()[0]);
  asio::write(over_a, asio::buffer(std::string("G")));
  tcp::socket over_b(client);
  over_b.connect(b.endpoints()[0]);
  asio::write(over_b, asio::buffer(std::string("G")));
  EXPECT_TRUE(closed_by_server(over_a, std::chrono::milliseconds(5000)));
  EXPECT_TRUE(closed_by_server(over_b, std::chrono::milliseconds(5000)));
  for (auto& s : held) EXPECT_FALSE(closed_by_server(s, std::chrono::milliseconds(0)));
  EXPECT_EQ(budget->in_use(), 3u);
  EXPECT_EQ(a.connections() + b.connections(), 3u);
  held.clear();
  for (int i = 0; i < 100 && budget->in_use() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(budget->in_use(), 0u) << "places are given back";
  asio::post(io, [&] {
    a.stop();
    b.stop();
  });
  io.stop();
  thread.join();
}

TEST(ConnectionCap, LeavesTheReserveOfTheFdLimit) {
  EXPECT_EQ(connection_cap(1024, 72), 952u);
  EXPECT_EQ(connection_cap(64, 72), 1u);
  EXPECT_EQ(connection_cap(73, 72), 1u);
  EXPECT_EQ(connection_cap(1u << 20, 72), (1u << 20) - 72);
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Out of descriptors, accept() fails with EMFILE while the connection stays queued: the
// listener must pause (not retry at once, for ever), keep serving, and accept again once
// descriptors are free. The server's thread gets EMFILE from accept() alone (see
// testing/accept_refusal.h for why the descriptor limit itself is not lowered).
TEST_F(ServerTest, OutOfDescriptorsPausesAcceptingInsteadOfSpinning) {
  asio::io_context client;
  tcp::socket first(client);
  first.connect(server_->endpoints()[0]);
  // Its first byte, or TCP_DEFER_ACCEPT keeps it from the server.
  asio::write(first, asio::buffer(std::string("G")));
  for (int i = 0; i < 500 && server_->connections() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // until accepted
  }
  ASSERT_EQ(server_->connections(), 1u);
  std::promise<bool> refusing;
  asio::post(io_,
             [&] { refusing.set_value(intermission::testing::refuse_accept_on_this_thread()); });
  ASSERT_TRUE(refusing.get_future().get()) << "seccomp filter refused";
  constexpr int kQueued = 8;
  std::vector<tcp::socket> queued;
  for (int i = 0; i < kQueued; ++i) queued.emplace_back(client).connect(server_->endpoints()[0]);
  asio::write(queued.back(), asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  queued.back().shutdown(tcp::socket::shutdown_send);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // A connection accepted before is served meanwhile.
  asio::write(first, asio::buffer(std::string("ET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string out(4096, '\0');
  boost::system::error_code ec;
  out.resize(first.read_some(asio::buffer(out), ec));
  EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << ec.message();
  const double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  const double spent = process_cpu_seconds() - before;
  EXPECT_LT(spent, 0.2) << "accept() spun on EMFILE";
  EXPECT_EQ(queued.back().available(), 0u) << "not accepted while accept() fails";
  // Descriptors free again: the server goes on on a thread whose accept() works.
  io_.stop();
  thread_.join();
  io_.restart();
  thread_ = std::thread([this] { io_.run(); });
  char buf[4096];
  out.clear();
  ec = {};
  while (!ec) out.append(buf, queued.back().read_some(asio::buffer(buf), ec));
  EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out;
}

TEST(ParseListen, Forms) {
  auto eps = parse_listen("127.0.0.1:80,[::]:8080,:9090");
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 3u);
  EXPECT_TRUE((*eps)[1].address().is_v6());
  EXPECT_EQ((*eps)[2].port(), 9090);
  EXPECT_FALSE(parse_listen("localhost:80").ok());
  EXPECT_FALSE(parse_listen("127.0.0.1").ok());
  EXPECT_FALSE(parse_listen("127.0.0.1:99999").ok());
  EXPECT_FALSE(parse_listen("").ok());
}

}  // namespace

// TCP_DEFER_ACCEPT: the server gets a connection once it has sent something, not before.
TEST(DeferAccept, ASilentConnectionIsHandedOverOnlyOnceItSpeaks) {
  asio::io_context io;
  auto responses = std::make_shared<const ResponseSet>(PageOptions{}, core::from_epoch_ms(0));
  PageServer server(io, {}, [&] { return responses; });
  ASSERT_TRUE(server.listen(*parse_listen("127.0.0.1:0")).ok());
  std::thread thread([&] { io.run(); });
  asio::io_context client;
  tcp::socket s(client);
  s.connect(server.endpoints()[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(server.connections(), 0u) << "connected, silent: still the kernel's";
  asio::write(s, asio::buffer(std::string("GET / HT")));
  for (int i = 0; i < 200 && server.connections() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(server.connections(), 1u);
  asio::post(io, [&] { server.stop(); });
  io.stop();
  thread.join();
}

}  // namespace intermission::page
