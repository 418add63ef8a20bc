#include "app/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <future>
#include <thread>

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "testing/accept_refusal.h"

namespace intermission::app {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// The daemon's listener on loopback port 0, run on its own thread for the test.
class HttpServerTest : public ::testing::Test {
 protected:
  // The handler answers 200 with the fields it is asked about (`echo`), as it sees them.
  void start(HttpLimits limits) {
    server_ = std::make_unique<HttpServer>(io_, limits, [](const HttpRequest& r) {
      std::string body = R"({"ok":true)";
      for (const char* name : {"host", "origin", "accept"}) {
        if (r.headers.count(name) != 0)
          body += std::string(",\"") + name + "\":\"" + r.header(name) + "\"";
      }
      return json_response(200, body + "}");
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

  struct Answer {
    std::string bytes;    // everything the server sent
    bool closed = false;  // it closed the connection (else it stayed quiet for `quiet`)
    [[nodiscard]] int answers() const {
      int n = 0;
      for (std::size_t i = bytes.find("HTTP/1."); i != std::string::npos;
           i = bytes.find("HTTP/1.", i + 1)) {
        ++n;
      }
      return n;
    }
    [[nodiscard]] std::string status() const { return bytes.size() > 12 ? bytes.substr(9, 3) : ""; }
  };

  // Sends `raw` on a new connection (then `more` bytes of `filler`, as a client streaming a
  // body would) and reads what comes back until the server closes or says nothing for
  // `quiet`. Plain POSIX calls: Asio's blocking read ignores SO_RCVTIMEO.
  Answer exchange(std::string_view raw, std::size_t more = 0, char filler = 'a',
                  std::chrono::milliseconds quiet = std::chrono::milliseconds(1500)) {
    asio::io_context client;
    tcp::socket s(client);
    s.connect(server_->endpoints()[0]);
    boost::system::error_code ec;
    asio::write(s, asio::buffer(raw), ec);
    const std::string block(64 * 1024, filler);
    for (std::size_t sent = 0; sent < more && !ec; sent += block.size()) {
      asio::write(s, asio::buffer(block), ec);  // fails once the server has closed
    }
    Answer a;
    char buf[4096];
    for (;;) {
      pollfd p{s.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;  // quiet: left open
      const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) {
        a.closed = true;  // FIN, or RST
        break;
      }
      a.bytes.append(buf, static_cast<std::size_t>(n));
    }
    return a;
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

// A chunk header (size and extensions) or a trailer section has no length limit in Beast
// 1.81 (its header_limit covers the request's header only): an endless one grew the daemon's
// read buffer without end. Now it gets 400 and the connection closes, after at most the
// header limit and a margin is held.
TEST_F(HttpServerTest, AnEndlessChunkExtensionIsRefusedNotBuffered) {
  start(HttpLimits{});
  const auto a =
      exchange("POST /sns HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;", 2 << 20);
  EXPECT_EQ(a.status(), "400") << a.bytes;
  EXPECT_TRUE(a.closed);
}

TEST_F(HttpServerTest, AnEndlessTrailerSectionIsRefusedNotBuffered) {
  start(HttpLimits{});
  const auto a = exchange(
      "POST /sns HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1\r\na\r\n0\r\nX-Trailer: ",
      2 << 20);
  EXPECT_EQ(a.status(), "400") << a.bytes;
  EXPECT_TRUE(a.closed);
}

TEST_F(HttpServerTest, ABodyLargerThanTheBufferIsStillRead) {
  HttpLimits limits;
  limits.body_limit = 200 * 1024;  // well over the read buffer's bound
  start(limits);
  const std::string body(150 * 1024, 'b');
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body)
                .status(),
            "200");
  std::string chunked;
  for (int i = 0; i < 10; ++i) chunked += "3000\r\n" + std::string(0x3000, 'c') + "\r\n";
  EXPECT_EQ(exchange("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n" +
                     chunked + "0\r\n\r\n")
                .status(),
            "200");
}

// RFC 9112 §6.3: a request whose final transfer coding is not chunked has no knowable length:
// 400 and close. Beast reads it as a request without a body, so what followed was answered as
// a request of its own (smuggled past whatever is in front).
TEST_F(HttpServerTest, AFinalCodingOtherThanChunkedIsRefusedAndNothingAfterItIsAnswered) {
  start(HttpLimits{});
  for (const char* coding : {"gzip", "chunked, gzip", "identity"}) {
    const auto a = exchange(std::string("POST /sns HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") +
                            coding + "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(a.status(), "400") << coding;
    EXPECT_EQ(a.answers(), 1) << coding << ": " << a.bytes;
    EXPECT_TRUE(a.closed) << coding;
  }
  const auto chunked = exchange(
      "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "0\r\n\r\n");
  EXPECT_EQ(chunked.status(), "200") << "chunked is final: the length is known";
}

// RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; the connection closes after
// it (refused with 400, as the page server and nginx do).
TEST_F(HttpServerTest, TransferEncodingInHttp10IsRefusedAndCloses) {
  start(HttpLimits{});
  const auto a = exchange(
      "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(a.status(), "400") << a.bytes;
  EXPECT_EQ(a.answers(), 1) << a.bytes;
  EXPECT_TRUE(a.closed);
}

// RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, with two, or with one that is not
// host[:port]. Two Host lines were served (the last one won the admin Host check).
TEST_F(HttpServerTest, HostRules) {
  start(HttpLimits{});
  const auto missing = exchange("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(missing.status(), "400");
  EXPECT_TRUE(missing.closed);
  EXPECT_EQ(exchange("GET / HTTP/1.0\r\n\r\n").status(), "200") << "optional in HTTP/1.0";
  for (const char* bad : {"Host: evil.example\r\nHost: localhost", "Host: localhost:1@evil.example",
                          "Host: a b", "Host: a/b", "Host: localhost:8080x"}) {
    const auto a = exchange(std::string("GET / HTTP/1.1\r\n") + bad + "\r\n\r\n");
    EXPECT_EQ(a.status(), "400") << bad << ": " << a.bytes;
    EXPECT_TRUE(a.closed) << bad;
  }
  for (const char* good : {"localhost", "localhost:8080", "127.0.0.1:1", "[::1]:8080"}) {
    const auto a =
        exchange(std::string("GET / HTTP/1.1\r\nConnection: close\r\nHost: ") + good + "\r\n\r\n");
    EXPECT_EQ(a.status(), "200") << good;
  }
}

// A field the handlers read as one value (Origin for the CSRF check, Authorization, the
// webhook signatures) given twice is refused: which one counts is ambiguous, and two Origin
// lines, the cross-site one first, passed the CSRF check when the last one won.
TEST_F(HttpServerTest, ARepeatedSingleValueFieldIsRefused) {
  start(HttpLimits{});
  for (const char* field : {"Origin: https://evil.example\r\nOrigin: http://localhost",
                            "Authorization: Bearer a\r\nAuthorization: Bearer b",
                            "Sec-Fetch-Site: cross-site\r\nsec-fetch-site: same-origin",
                            "X-Hub-Signature-256: sha256=00\r\nX-Hub-Signature-256: sha256=11",
                            "X-Intermission-Signature: a\r\nX-Intermission-Signature: b",
                            "Content-Length: 1\r\nContent-Length: 2"}) {
    const auto a =
        exchange(std::string("POST / HTTP/1.1\r\nHost: localhost\r\n") + field + "\r\n\r\nab");
    EXPECT_EQ(a.status(), "400") << field << ": " << a.bytes;
    EXPECT_TRUE(a.closed) << field;
  }
}

// Other repeated fields are one list (RFC 9110 §5.3), not the last line only.
TEST_F(HttpServerTest, OtherRepeatedFieldsAreCombined) {
  start(HttpLimits{});
  const auto a = exchange(
      "GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nAccept: application/json\r\n"
      "Connection: close\r\n\r\n");
  EXPECT_EQ(a.status(), "200");
  EXPECT_NE(a.bytes.find(R"("accept":"text/html, application/json")"), std::string::npos)
      << a.bytes;
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
