#include "app/http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <atomic>

#include "page/request_parser.h"
#include "page/server.h"

namespace intermission::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

struct HttpServer::State {
  asio::io_context& io;
  HttpLimits limits;
  Handler handler;
  HttpOffload offload;
  std::vector<tcp::acceptor> acceptors;
  std::atomic<bool> stopped{false};  // read by the offload thread too
  std::size_t connections = 0;  // sessions running (all on io's thread)
};

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

// One request handed to the offload executor, owned jointly by the awaiting coroutine and the
// work posted there (so neither outlives the other's data).
struct Offloaded : std::enable_shared_from_this<Offloaded> {
  std::shared_ptr<HttpServer::State> st;
  HttpRequest request;
  HttpResponse response;
  std::exception_ptr error;
};

// The initiation: runs the handler on the offload executor, then completes on the awaiting
// coroutine's executor. It holds a plain pointer on purpose: g++ 12 destroys temporaries with
// destructors in a co_await expression wrongly (a lambda capturing the request was freed twice).
struct RunOffloaded {
  Offloaded* job;
  template <class Handler>
  void operator()(Handler&& handler) const {
    auto keep = job->shared_from_this();
    auto back = asio::get_associated_executor(handler);
    asio::post(*keep->st->offload.executor,
               [keep, back, handler = std::forward<Handler>(handler)]() mutable {
                 try {
                   // Queued behind a slow one while the server stopped: not worth running.
                   keep->response = keep->st->stopped
                                        ? json_response(503, R"({"error":"shutting down"})")
                                        : keep->st->handler(keep->request);
                 } catch (...) {
                   keep->error = std::current_exception();
                 }
                 asio::post(back, std::move(handler));
               });
  }
};

// The handler's answer, computed where the offload says; resumes on the server's thread.
asio::awaitable<HttpResponse> call_handler(std::shared_ptr<HttpServer::State> st,
                                           const HttpRequest& r) {
  if (!st->offload.executor) co_return st->handler(r);
  const auto job = std::make_shared<Offloaded>();
  job->st = st;
  job->request = r;
  co_await asio::async_initiate<const asio::use_awaitable_t<>, void()>(RunOffloaded{job.get()},
                                                                      asio::use_awaitable);
  if (job->error) std::rethrow_exception(job->error);
  co_return std::move(job->response);
}

http::response<http::string_body> to_beast(const HttpResponse& r, unsigned version, bool keep) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "intermission");
  res.set(http::field::content_type, r.content_type);
  res.set(http::field::cache_control, "no-store");
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep);
  res.prepare_payload();
  return res;
}

// Descriptors the daemon keeps for what is not a client connection: the standard streams,
// the signal pipe, epoll and timers, the store, HAProxy's admin socket, AWS and certificate
// fetches, the worker's connections.
constexpr std::size_t kDaemonFdReserve = 128;
constexpr std::size_t kDaemonMaxConnections = 4096;  // per listener, when the limit allows

// Bytes a connection's read buffer may hold. A body goes into the request's string as it
// arrives, so the buffer never needs one whole; what it must hold whole is the header (over
// header_limit Beast answers header_limit, which the margin lets it do before the buffer is
// full), a chunk's size line with its extensions and the trailer section. Beast 1.81 parses
// the last two with no limit (header_limit covers the header only: parse_chunk_header looks
// for the line's end and find_eom for the trailer's as far as the buffer goes), so this bound
// is theirs: an endless one ends the read with buffer_overflow (400) instead of growing the
// buffer by gigabytes.
std::size_t read_buffer_limit(const HttpLimits& limits) { return limits.header_limit + 4096; }

// Closing a socket with unread bytes sends RST, which can destroy the answer before the client
// has read it (RFC 1122 §4.2.2.13). After a refused request the client may still be sending:
// send FIN, then read and drop what comes until it closes or this has passed.
constexpr std::chrono::seconds kLinger{2};

bool single_value_field(std::string_view lower_name) {
  return std::find(kSingleValueFields.begin(), kSingleValueFields.end(), lower_name) !=
         kSingleValueFields.end();
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The rules a request's header is held to before its body is read: the page server's
// (page::request_rule_error: Host, Transfer-Encoding framing), and no second line of a field
// the handlers read as one value. An error means 400 and close.
beast::error_code header_error(const http::request_parser<http::string_body>& parser) {
  const auto& req = parser.get();
  page::HeaderFacts facts;
  facts.version = static_cast<int>(req.version());
  facts.chunked = parser.chunked();
  std::vector<std::string> seen;
  for (const auto& f : req) {
    if (f.name() == http::field::host) {
      ++facts.host_lines;
      facts.host = {f.value().data(), f.value().size()};
    } else if (f.name() == http::field::transfer_encoding) {
      facts.transfer_encoding = true;
    } else {
      std::string name = lower({f.name_string().data(), f.name_string().size()});
      if (!single_value_field(name)) continue;
      if (std::find(seen.begin(), seen.end(), name) != seen.end()) return http::error::bad_value;
      seen.push_back(std::move(name));
    }
  }
  return page::request_rule_error(facts);
}

asio::awaitable<void> session(std::shared_ptr<HttpServer::State> st, tcp::socket socket) {
  ++st->connections;
  struct Counted {
    HttpServer::State& state;
    ~Counted() { --state.connections; }
  } counted{*st};
  beast::tcp_stream stream(std::move(socket));
  beast::error_code ec_remote;
  const auto peer = stream.socket().remote_endpoint(ec_remote);
  beast::flat_buffer buffer(read_buffer_limit(st->limits));
  bool refused = false;  // the last request was not read to its end
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(st->limits.header_limit));
    parser.body_limit(st->limits.body_limit);
    stream.expires_after(st->limits.idle_timeout);
    // The header first: a request the rules refuse gets its answer before any of its body
    // is read (and after Transfer-Encoding: gzip, the bytes Beast would take for the next
    // request are never read as one).
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kUse);
    if (!ec) ec = header_error(parser);
    if (!ec && !parser.is_done()) {
      auto [body_ec, body_n] = co_await http::async_read(stream, buffer, parser, kUse);
      ec = body_ec;
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      break;
    }
    HttpResponse response;
    bool keep = false;
    unsigned version = 11;
    if (ec == http::error::body_limit) {
      response = json_response(413, R"({"error":"request body too large"})");
    } else if (ec == http::error::header_limit) {
      response = json_response(431, R"({"error":"request headers too large"})");
    } else if (ec == http::error::buffer_overflow) {
      response = json_response(400, R"({"error":"chunk size line or trailer too long"})");
    } else if (ec) {
      response = json_response(400, R"({"error":"bad request"})");
    } else {
      auto& req = parser.get();
      HttpRequest r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& f : req) {
        const std::string_view value(f.value().data(), f.value().size());
        auto [it, fresh] =
            r.headers.try_emplace(lower({f.name_string().data(), f.name_string().size()}), value);
        if (!fresh) (it->second += ", ") += value;
      }
      r.body = std::move(req.body());
      if (!ec_remote) r.remote = peer.address().to_string();
      keep = req.keep_alive() && !st->stopped;
      version = req.version();
      try {
        std::optional<HttpResponse> quick;
        if (st->offload.quick) quick = st->offload.quick(r);
        if (quick) {
          response = std::move(*quick);
        } else {
          response = co_await call_handler(st, r);
        }
        // Not ready yet (a certificate being fetched): ask again later, never blocking.
        const auto deadline = std::chrono::steady_clock::now() + st->limits.ask_again_budget;
        while (response.ask_again.count() > 0 && std::chrono::steady_clock::now() < deadline &&
               !st->stopped) {
          asio::steady_timer timer(st->io, response.ask_again);
          co_await timer.async_wait(kUse);
          response = co_await call_handler(st, r);
        }
      } catch (...) {
        response = json_response(500, R"({"error":"internal error"})");
      }
    }
    refused = static_cast<bool>(ec);
    auto res = to_beast(response, version, keep);
    stream.expires_after(st->limits.idle_timeout);
    auto [wec, written] = co_await http::async_write(stream, res, kUse);
    if (wec || !keep) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (refused) {
    stream.expires_after(kLinger);
    std::array<char, 1024> sink{};
    for (;;) {
      auto [lec, dropped] = co_await stream.async_read_some(asio::buffer(sink), kUse);
      if (lec) break;
    }
  }
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpServer::State> st, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUse);
    if (ec == asio::error::operation_aborted || st->stopped) co_return;
    if (page::accept_needs_pause(ec)) {
      // Out of descriptors: the connection stays queued and accepting again at once would
      // fail again at once (a busy loop). Serve the connections we have, then try again.
      asio::steady_timer pause(st->io, page::kAcceptPause);
      co_await pause.async_wait(kUse);
      continue;
    }
    if (ec) continue;  // the client gave up meanwhile
    if (st->connections >= st->limits.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);  // over the cap: closed at once, not left waiting in the queue
      continue;
    }
    asio::co_spawn(st->io, session(st, std::move(socket)), asio::detached);
  }
}

}  // namespace

std::size_t daemon_connection_cap(std::size_t listeners) {
  listeners = std::max<std::size_t>(listeners, 1);
  const std::uint64_t limit =
      page::raise_fd_limit(kDaemonMaxConnections * listeners + kDaemonFdReserve);
  const std::size_t share = page::connection_cap(limit, kDaemonFdReserve) / listeners;
  return std::clamp<std::size_t>(share, 1, kDaemonMaxConnections);
}

HttpResponse json_response(int status, const std::string& body) {
  return HttpResponse{status, "application/json", body, {}};
}

HttpServer::HttpServer(asio::io_context& io, HttpLimits limits, Handler handler,
                       HttpOffload offload)
    : state_(std::make_shared<State>(
          io, limits, std::move(handler), std::move(offload))) {}

core::Status HttpServer::listen(const std::vector<tcp::endpoint>& endpoints) {
  for (const auto& ep : endpoints) {
    auto acceptor = page::open_acceptor(state_->io, ep, false);
    if (!acceptor) return acceptor.error();
    state_->acceptors.push_back(std::move(*acceptor));
  }
  for (auto& a : state_->acceptors) asio::co_spawn(state_->io, accept_loop(state_, a), asio::detached);
  return {};
}

std::vector<tcp::endpoint> HttpServer::endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : state_->acceptors) out.push_back(a.local_endpoint());
  return out;
}

void HttpServer::stop() {
  state_->stopped = true;
  for (auto& a : state_->acceptors) {
    boost::system::error_code ignored;
    a.close(ignored);
  }
}

}  // namespace intermission::app
