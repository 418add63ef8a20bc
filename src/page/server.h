// The page server's socket half: accepts connections on any number of endpoints (IPv4 and
// IPv6) with Asio, parses requests with Beast's parser (page/request_parser.h), and writes
// the bytes the ResponseSet chose. HTTP/1.1 keep-alive and pipelining; limits on header size,
// body size, connections, and on the time to send a request and to take an answer.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "core/result.h"
#include "page/response.h"

namespace intermission::page {

struct ServerLimits {
  std::size_t header_limit = 8 * 1024;       // bytes of request line + headers
  std::size_t body_limit = 64 * 1024;        // request bodies are read and discarded
  std::chrono::seconds idle_timeout{15};     // waiting for (the rest of) a request
  std::chrono::seconds write_timeout{15};    // a client that does not read its response
  std::size_t max_connections = 20'000;      // beyond: new connections are closed at once
  bool reuse_port = false;  // SO_REUSEPORT: several servers (threads) share one port
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
  PageServer(boost::asio::io_context& io, ServerLimits limits,
             std::function<std::shared_ptr<const ResponseSet>()> responses);
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
  // Connections open now; callable from any thread.
  [[nodiscard]] std::size_t connections() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace intermission::page
