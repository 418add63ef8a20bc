// The page server's socket half: accepts connections on any number of endpoints (IPv4 and
// IPv6) with Asio, parses requests with Beast's parser (page/request_parser.h), and writes
// the bytes the ResponseSet chose. HTTP/1.1 keep-alive and pipelining; limits on header size,
// body size, connections, and on the time to send a request and to take an answer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/result.h"
#include "page/response.h"

namespace intermission::page {

// How many connections may be open at once, shared by every server (thread) of a process so
// that the cap holds across threads. Thread-safe.
class ConnectionBudget {
 public:
  explicit ConnectionBudget(std::size_t max) : max_(max) {}
  // Takes one connection's place; false when all are taken.
  bool try_take() {
    if (used_.fetch_add(1, std::memory_order_relaxed) < max_) return true;
    used_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void give_back() { used_.fetch_sub(1, std::memory_order_relaxed); }
  [[nodiscard]] std::size_t in_use() const { return used_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t max() const { return max_; }

 private:
  const std::size_t max_;
  std::atomic<std::size_t> used_{0};
};

// The connection cap that leaves `reserve` descriptors of `fd_limit` (RLIMIT_NOFILE) for
// everything else (listeners, epoll, the store, logs), at least 1. Pure.
std::size_t connection_cap(std::uint64_t fd_limit, std::size_t reserve);

// Raises the soft RLIMIT_NOFILE towards `wanted` (never above the hard limit, never lowers
// it) and returns the soft limit in force afterwards.
std::uint64_t raise_fd_limit(std::uint64_t wanted);

// Whether a failed accept() means the process or system is out of descriptors or memory
// (EMFILE, ENFILE, ENOBUFS, ENOMEM): the connection stays queued and accepting again at once
// would fail again, so listeners pause instead of spinning.
bool accept_needs_pause(const boost::system::error_code& ec);

// How long a listener waits after such a failure before it tries again.
inline constexpr std::chrono::milliseconds kAcceptPause{100};

struct ServerLimits {
  std::size_t header_limit = 8 * 1024;       // bytes of request line + headers
  std::size_t body_limit = 64 * 1024;        // request bodies are read and discarded
  std::chrono::seconds idle_timeout{15};     // waiting for (the rest of) a request
  std::chrono::seconds write_timeout{15};    // a client that does not read its response
  // Beyond: new connections are accepted and closed at once. Ignored when the server is given
  // a shared ConnectionBudget.
  std::size_t max_connections = 20'000;
  bool reuse_port = false;  // SO_REUSEPORT: several servers (threads) share one port
  // TCP_DEFER_ACCEPT (1 s): the kernel hands a connection over once its first bytes have come
  // (or after that long in silence), so accepting, reading and answering take one wakeup, and
  // a connection that says nothing takes no descriptor meanwhile (bench/RESULTS.md).
  bool defer_accept = true;
};

// Parses "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80", ":8080" (all IPv4 and IPv6).
core::Result<std::vector<boost::asio::ip::tcp::endpoint>> parse_listen(const std::string& text);

// Opens, binds and listens on `endpoint` (SO_REUSEADDR; IPV6_V6ONLY for IPv6, so IPv4 and
// IPv6 can be listed separately; SO_REUSEPORT when asked). Shared by every listener we run.
core::Result<boost::asio::ip::tcp::acceptor> open_acceptor(
    boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, bool reuse_port);

class PageServer {
 public:
  // `responses` is called for each request and returns the current set (it may change over
  // time); it runs on the io_context's thread. The server runs on `io`, which must outlive it.
  // `budget`, when given, caps the connections of this server together with the other servers
  // that share it (one per thread); otherwise the cap is limits.max_connections.
  PageServer(boost::asio::io_context& io, ServerLimits limits,
             std::function<std::shared_ptr<const ResponseSet>()> responses,
             std::shared_ptr<ConnectionBudget> budget = nullptr);
  ~PageServer();
  PageServer(const PageServer&) = delete;
  PageServer& operator=(const PageServer&) = delete;

  // Binds and listens on every endpoint. Port 0 picks a free port (see ports()).
  core::Status listen(const std::vector<boost::asio::ip::tcp::endpoint>& endpoints);
  // The bound endpoints, in the order given to listen().
  [[nodiscard]] std::vector<boost::asio::ip::tcp::endpoint> endpoints() const;
  // Stops accepting and closes the connections that are between requests; the others finish
  // their current request and close after its answer. Callable from any thread (it is posted
  // to the server's io_context).
  void stop();
  // This server's connections open now; callable from any thread.
  [[nodiscard]] std::size_t connections() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace intermission::page
