// A small HTTP/1.1 server for the daemon's listeners (Beast + Asio coroutines): each request
// is read whole (bounded header and body sizes, idle timeout) and handed to a handler that
// returns the response. Keep-alive; IPv4 and IPv6. For the page server's fast path see
// src/page/server.h.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace intermission::app {

struct HttpRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address

  [[nodiscard]] std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Non-zero: the answer is not ready (work runs on another thread); the server asks the
  // handler again after this long, without blocking its thread, for up to
  // HttpLimits::ask_again_budget, and then sends this response.
  std::chrono::milliseconds ask_again{0};
};

HttpResponse json_response(int status, const std::string& body);

struct HttpLimits {
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 256 * 1024;
  std::chrono::seconds idle_timeout{30};
  // Connections open at once; beyond, a new one is accepted and closed at once. Keep it below
  // the open-files limit (daemon_connection_cap) so that accept() never runs out.
  std::size_t max_connections = 1024;
  std::chrono::seconds ask_again_budget{10};  // SNS waits 15 s for an answer
};

// The connection cap for each of `listeners` listeners of the daemon: an equal share of what
// the open-files limit (its soft limit first raised as far as the share of 4096 needs) leaves
// for client connections.
std::size_t daemon_connection_cap(std::size_t listeners);

// Where a server's handler runs. By default on the server's own (I/O) thread; with an
// executor, there (one thread for every server that shares it keeps the handler's state
// single-threaded), so that slow work in a handler — a store write waiting for a lock or
// retrying a throttled DynamoDB — never stalls accepting, reading and writing connections.
struct HttpOffload {
  std::optional<boost::asio::any_io_executor> executor;
  // Answered on the server's thread without waiting for the executor (cheap and thread-safe:
  // liveness checks); nullopt = a request for the handler.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> quick;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Runs on `io` (which must outlive the server, as must the offload's executor); the handler
  // runs on io's thread, or on `offload.executor` when given.
  HttpServer(boost::asio::io_context& io, HttpLimits limits, Handler handler,
             HttpOffload offload = {});
  core::Status listen(const std::vector<boost::asio::ip::tcp::endpoint>& endpoints);
  [[nodiscard]] std::vector<boost::asio::ip::tcp::endpoint> endpoints() const;
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace intermission::app
