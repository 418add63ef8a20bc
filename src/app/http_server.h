// A small HTTP/1.1 server for the daemon's listeners (Beast + Asio coroutines): each request
// is read whole (bounded header and body sizes, a bounded read buffer, idle timeout), held to
// the page server's framing and Host rules (page::request_rule_error), and handed to a handler
// that returns the response. Keep-alive; IPv4 and IPv6. For the page server's fast path see
// src/page/server.h.
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace intermission::app {

// Fields the daemon's handlers read as one value (serve_api.cpp: the CSRF check, the operator
// token, the webhook signatures; Host has a rule of its own). A request with two lines of one
// of them is refused (400) instead of one being chosen: a check and what it guards must see
// the same value (two Origin lines, the cross-site one first, passed the CSRF check when the
// last one won). A handler that starts reading another such field adds it here.
inline constexpr std::array<std::string_view, 9> kSingleValueFields = {
    "origin",
    "authorization",
    "sec-fetch-site",
    "x-intermission-timestamp",
    "x-intermission-signature",
    "x-signature",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
};

struct HttpRequest {
  std::string method;
  std::string target;
  // Names lower-cased; a field given on several lines (none of kSingleValueFields) has them
  // joined by ", ", as RFC 9110 §5.3 combines a list.
  std::map<std::string, std::string> headers;
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
  // Also the bound on a chunk's size line and on the trailer section, which Beast 1.81 parses
  // with no limit of its own: a connection's read buffer holds at most this and a margin.
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
