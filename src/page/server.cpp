#include "page/server.h"

#include "page/request_parser.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <sstream>

namespace intermission::page {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

struct PageServer::State {
  asio::io_context& io;
  ServerLimits limits;
  std::function<std::shared_ptr<const ResponseSet>()> responses;
  std::vector<tcp::acceptor> acceptors;
  std::size_t connections = 0;
  bool stopped = false;
};

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> session(std::shared_ptr<PageServer::State> st, tcp::socket socket) {
  ++st->connections;
  struct Count {
    PageServer::State& s;
    ~Count() { --s.connections; }
  } count{*st};
  beast::tcp_stream stream(std::move(socket));
  // The limit is a maximum, not an allocation: idle connections hold almost nothing.
  beast::flat_buffer buffer(st->limits.header_limit + 1024);
  RequestBits bits;
  std::optional<LeanParser> parser;
  for (;;) {
    parser.emplace(bits);  // a parser is single-use; the strings it fills are not
    parser->header_limit(static_cast<std::uint32_t>(st->limits.header_limit));
    parser->body_limit(st->limits.body_limit);
    stream.expires_after(st->limits.idle_timeout);
    // The header first: a client that waits for "100 Continue" gets the final answer at once
    // (and the connection closes, so its body is never needed); any other body is read and
    // discarded up to the limit.
    auto [ec, n] = co_await http::async_read_header(stream, buffer, *parser, kUse);
    bool close_after = false;
    if (!ec && !parser->is_done()) {
      if (bits.expect_continue) {
        close_after = true;
      } else {
        auto [bec, bn] = co_await http::async_read(stream, buffer, *parser, kUse);
        ec = bec;
      }
    }
    const auto set = st->responses();
    const std::string* reply = nullptr;
    bool keep_alive = false;
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      break;
    } else if (ec == http::error::header_limit) {
      reply = &set->header_too_large();
    } else if (ec == http::error::body_limit) {
      reply = &set->body_too_large();
    } else if (ec) {
      reply = &set->bad_request();
    } else {
      keep_alive = parser->keep_alive() && !st->stopped && !close_after;
      reply = &set->respond(RequestView{bits.method, bits.target, bits.accept, keep_alive});
    }
    stream.expires_after(st->limits.write_timeout);
    auto [wec, written] = co_await asio::async_write(stream, asio::buffer(*reply), kUse);
    if (wec || !keep_alive) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_loop(std::shared_ptr<PageServer::State> st, tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(kUse);
    if (ec == asio::error::operation_aborted || st->stopped) co_return;
    if (ec) continue;  // EMFILE and friends: keep serving the connections we have
    if (st->connections >= st->limits.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(st->io, session(st, std::move(socket)), asio::detached);
  }
}

}  // namespace

core::Result<std::vector<tcp::endpoint>> parse_listen(const std::string& text) {
  std::vector<tcp::endpoint> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    const std::size_t colon = item.rfind(':');
    if (colon == std::string::npos) {
      return core::Error::invalid_input("listen address '" + item + "' has no :port");
    }
    std::string host = item.substr(0, colon);
    const std::string port_text = item.substr(colon + 1);
    int port = -1;
    try {
      std::size_t used = 0;
      port = std::stoi(port_text, &used);
      if (used != port_text.size()) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
    if (port < 0 || port > 65535) {
      return core::Error::invalid_input("listen address '" + item + "' has a bad port");
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) host = "::";
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      return core::Error::invalid_input("listen address '" + item +
                                        "': not an IP address (use 0.0.0.0, ::, 127.0.0.1...)");
    }
    out.emplace_back(addr, static_cast<unsigned short>(port));
  }
  if (out.empty()) return core::Error::invalid_input("no listen address");
  return out;
}

PageServer::PageServer(asio::io_context& io, ServerLimits limits,
                       std::function<std::shared_ptr<const ResponseSet>()> responses)
    : state_(std::make_shared<State>(State{io, limits, std::move(responses), {}, 0, false})) {}

core::Result<tcp::acceptor> open_acceptor(asio::io_context& io, const tcp::endpoint& ep,
                                          bool reuse_port) {
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && reuse_port) {
    acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
  }
  if (!ec && ep.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::ostringstream where;
    where << ep;
    return core::Error::unavailable("listen on " + where.str() + ": " + ec.message());
  }
  return acceptor;
}

core::Status PageServer::listen(const std::vector<tcp::endpoint>& endpoints) {
  for (const auto& ep : endpoints) {
    auto acceptor = open_acceptor(state_->io, ep, state_->limits.reuse_port);
    if (!acceptor) return acceptor.error();
    state_->acceptors.push_back(std::move(*acceptor));
  }
  for (auto& a : state_->acceptors) {
    asio::co_spawn(state_->io, accept_loop(state_, a), asio::detached);
  }
  return {};
}

std::vector<tcp::endpoint> PageServer::endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& a : state_->acceptors) out.push_back(a.local_endpoint());
  return out;
}

std::size_t PageServer::connections() const { return state_->connections; }

void PageServer::stop() {
  state_->stopped = true;
  for (auto& a : state_->acceptors) {
    boost::system::error_code ignored;
    a.close(ignored);
  }
}

}  // namespace intermission::page
