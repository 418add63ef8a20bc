#include "page/server.h"

#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/intrusive/list.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <sstream>
#include <string_view>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>

#include "page/request_parser.h"

namespace intermission::page {

namespace asio = boost::asio;
namespace bi = boost::intrusive;
using asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
// A socket bound to the io_context's own executor: 40 bytes smaller per connection than
// tcp::socket's type-erased one.
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

namespace {

// An idle connection waits with a read into this much of its own memory; what does not fit
// is read at once into the thread's large buffer. Most requests fit (curl, wrk, health
// checks); a browser's with cookies takes one more read.
constexpr std::size_t kInlineRead = 256;
// Connections accepted per wakeup of an acceptor before it waits again.
constexpr int kAcceptBurst = 64;
// Reads per wakeup of one connection, so one busy client cannot starve the others.
constexpr int kReadRounds = 16;

// One client connection, driven by completion handlers (no coroutine frame, no timer and no
// buffer beyond kInlineRead per connection): read, parse with Exchange, write the prebuilt
// answers, read again.
class Connection : public std::enable_shared_from_this<Connection>,
                   public bi::list_base_hook<bi::link_mode<bi::auto_unlink>> {
 public:
  Connection(std::shared_ptr<PageServer::State> st, Socket socket);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  void close();
  // Between requests with nothing half-read: may be closed at once when the server stops.
  [[nodiscard]] bool idle() const { return !exchange_.mid_request() && pending_.empty() && unsent_.empty(); }

  SteadyClock::time_point deadline;  // on the State's reading or writing list

 private:
  void wait_for_request();
  void read_async();
  void on_readable(const boost::system::error_code& ec, std::size_t n, bool from_inline);
  bool consume(std::string_view bytes);
  bool send(const std::vector<const std::string*>& replies);
  bool after_response();
  void linger();
  void on_written(const boost::system::error_code& ec);

  std::shared_ptr<PageServer::State> st_;
  Socket socket_;
  Exchange exchange_;
  std::shared_ptr<const ResponseSet> set_;  // what the current request is answered from
  std::string pending_;                     // a partial header, until the rest arrives
  std::vector<asio::const_buffer> unsent_;  // answers the client is slow to take
  bool close_after_ = false;
  bool clean_end_ = false;  // the last request ended the connection with nothing left unread
  bool lingering_ = false;  // answered and half-closed; reading what the client still sends
  bool closed_ = false;
  std::array<char, kInlineRead> inline_;
};

using DeadlineList = bi::list<Connection, bi::constant_time_size<false>>;

}  // namespace

// Everything one server (one thread) shares between its connections. Timeouts need no timer
// per connection: a connection waiting for a request is on `reading`, one whose answer does
// not leave is on `writing`; each list is in deadline order (one timeout each), and a
// periodic sweep closes what is overdue.
struct PageServer::State {
  State(asio::io_context& context, ServerLimits server_limits,
        std::function<std::shared_ptr<const ResponseSet>()> response_source,
        std::shared_ptr<ConnectionBudget> shared_budget)
      : io(context), limits(server_limits), responses(std::move(response_source)),
        budget(shared_budget ? std::move(shared_budget)
                             : std::make_shared<ConnectionBudget>(server_limits.max_connections)),
        sweeper(context) {}

  // A listener, and the timer it waits on after running out of descriptors.
  struct Listener {
    tcp::acceptor acceptor;
    asio::steady_timer pause;
  };

  asio::io_context& io;
  ServerLimits limits;
  std::function<std::shared_ptr<const ResponseSet>()> responses;
  std::shared_ptr<ConnectionBudget> budget;
  std::vector<Listener> listeners;  // not resized once accepting has begun
  std::atomic<std::size_t> connections{0};
  bool stopped = false;
  DeadlineList reading;
  DeadlineList writing;
  asio::steady_timer sweeper;
  std::vector<const std::string*> replies;    // scratch, reused by every connection
  std::vector<asio::const_buffer> gather;     // scratch, reused by every connection
  std::array<char, 16 * 1024> read_buffer{};  // scratch, reused by every connection
};

namespace {

Connection::Connection(std::shared_ptr<PageServer::State> st, Socket socket)
    : st_(std::move(st)), socket_(std::move(socket)),
      exchange_(st_->limits.header_limit, st_->limits.body_limit) {
  ++st_->connections;
}

// The budget's place was taken in on_accepted.
Connection::~Connection() {
  --st_->connections;
  st_->budget->give_back();
}

void Connection::start() {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);  // TCP_NODELAY comes from the listener
  wait_for_request();
  // The request is often there already: read it now rather than after a trip through epoll.
  on_readable({}, 0, false);
}

// With nothing unread, close() sends the answer and then FIN; pending operations end with
// operation_aborted.
void Connection::close() {
  if (closed_) return;
  closed_ = true;
  unlink();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

// Closing a socket with unread bytes sends RST, which can destroy the answer before the
// client reads it. So after a bad request (or an early answer to a body still coming): send
// FIN, read and drop what the client still sends until it closes or write_timeout passes.
void Connection::linger() {
  lingering_ = true;
  pending_.clear();
  pending_.shrink_to_fit();
  set_.reset();
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  unlink();
  deadline = SteadyClock::now() + st_->limits.write_timeout;
  st_->writing.push_back(*this);
}

// A new request may begin: its header (and body) must arrive within idle_timeout.
void Connection::wait_for_request() {
  unlink();
  deadline = SteadyClock::now() + st_->limits.idle_timeout;
  st_->reading.push_back(*this);
}

void Connection::read_async() {
  if (closed_) return;
  socket_.async_read_some(
      asio::buffer(inline_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->on_readable(ec, n, true);
      });
}

// Bytes arrived in inline_ (from_inline), or may be waiting in the socket: read until it is
// drained, answering as we go, then wait. (Asio's reactor is edge-triggered: waiting with
// bytes left unread would wait for ever.)
void Connection::on_readable(const boost::system::error_code& ec, std::size_t n,
                             bool from_inline) {
  if (closed_) return;
  if (ec) {
    close();
    return;
  }
  if (from_inline) {
    if (!consume(std::string_view(inline_.data(), n))) return;
    if (n < inline_.size()) {  // a short read emptied the socket
      read_async();
      return;
    }
  }
  for (int round = 0; round < kReadRounds; ++round) {
    boost::system::error_code rec;
    const std::size_t got = socket_.read_some(asio::buffer(st_->read_buffer), rec);
    if (rec == asio::error::would_block || rec == asio::error::try_again) break;
    if (rec) {
      close();
      return;
    }
    if (!consume(std::string_view(st_->read_buffer.data(), got))) return;
    if (got < st_->read_buffer.size()) break;
  }
  read_async();
}

// Parses `bytes` after any partial request kept from before, and sends the answers. False
// when the connection is not to be read now (closed, or an answer is still being written).
bool Connection::consume(std::string_view bytes) {
  if (lingering_) return true;  // dropped
  if (!exchange_.mid_request()) set_ = st_->responses();  // the newest page, between requests
  std::string_view input = bytes;
  if (!pending_.empty()) {
    pending_.append(bytes);
    input = pending_;
  }
  auto& replies = st_->replies;
  replies.clear();
  const Exchange::Fed fed = exchange_.feed(*set_, input, st_->stopped, replies);
  if (fed.close) {
    pending_.clear();
  } else if (!pending_.empty()) {
    pending_.erase(0, fed.used);
  } else if (fed.used < input.size()) {
    pending_.assign(input.substr(fed.used));
  }
  close_after_ = fed.close;
  clean_end_ = fed.close && fed.used == input.size();
  if (replies.empty()) {
    if (!close_after_) return true;  // a request is still arriving
    close();
    return false;
  }
  return send(replies);
}

// Writes at once what the socket takes; the rest goes out asynchronously within
// write_timeout.
bool Connection::send(const std::vector<const std::string*>& replies) {
  auto& gather = st_->gather;
  gather.clear();
  for (const std::string* r : replies) gather.emplace_back(r->data(), r->size());
  boost::system::error_code ec;
  std::size_t sent = asio::write(socket_, gather, ec);  // stops at would_block
  if (!ec) return after_response();
  if (ec != asio::error::would_block && ec != asio::error::try_again) {
    close();
    return false;
  }
  unsent_.clear();
  for (const auto& b : gather) {
    if (sent >= b.size()) {
      sent -= b.size();
      continue;
    }
    unsent_.push_back(b + sent);
    sent = 0;
  }
  unlink();
  deadline = SteadyClock::now() + st_->limits.write_timeout;
  st_->writing.push_back(*this);
  asio::async_write(socket_, unsent_,
                    [self = shared_from_this()](const boost::system::error_code& wec,
                                                std::size_t) { self->on_written(wec); });
  return false;
}

bool Connection::after_response() {
  if (close_after_ && clean_end_) {
    close();
    return false;
  }
  if (close_after_) {
    linger();
    return true;  // read on, dropping what comes
  }
  if (!exchange_.mid_request()) set_.reset();  // an idle connection pins no old page
  if (pending_.empty()) pending_.shrink_to_fit();
  wait_for_request();
  return true;
}

void Connection::on_written(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) {
    close();
    return;
  }
  unsent_.clear();
  unsent_.shrink_to_fit();
  if (!after_response()) return;
  // Pipelined requests kept in pending_ are answered before reading on.
  if (!pending_.empty() && !consume({})) return;
  on_readable({}, 0, false);
}

void sweep(const std::shared_ptr<PageServer::State>& st, SteadyClock::duration period) {
  st->sweeper.expires_after(period);
  st->sweeper.async_wait([weak = std::weak_ptr(st), period](const boost::system::error_code& ec) {
    const auto s = weak.lock();
    if (ec || !s) return;
    const auto now = SteadyClock::now();
    for (DeadlineList* list : {&s->reading, &s->writing}) {
      while (!list->empty() && list->front().deadline <= now) list->front().close();
    }
    sweep(s, period);
  });
}

void on_accepted(const std::shared_ptr<PageServer::State>& st, Socket socket) {
  if (!st->budget->try_take()) {
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  std::make_shared<Connection>(st, std::move(socket))->start();
}

void accept_next(const std::shared_ptr<PageServer::State>& st, PageServer::State::Listener& l) {
  l.acceptor.async_accept(st->io, [st, &l](const boost::system::error_code& ec, Socket socket) {
    if (ec == asio::error::operation_aborted || st->stopped) return;
    boost::system::error_code last = ec;
    if (!ec) {
      on_accepted(st, std::move(socket));
      // More may be queued: take them now, without a trip through epoll for each.
      for (int i = 1; i < kAcceptBurst && !st->stopped; ++i) {
        Socket next = l.acceptor.accept(st->io, last);
        if (last) break;  // would_block, or out of descriptors (below)
        on_accepted(st, std::move(next));
      }
    }
    if (accept_needs_pause(last)) {
      // The connection stays queued, so accepting again at once fails again at once: a busy
      // loop. Keep serving the connections we have and try again shortly.
      l.pause.expires_after(kAcceptPause);
      l.pause.async_wait([st, &l](const boost::system::error_code& wec) {
        if (!wec && !st->stopped) accept_next(st, l);
      });
      return;
    }
    accept_next(st, l);  // other errors (the client gave up meanwhile) concern one connection
  });
}

}  // namespace

std::size_t connection_cap(std::uint64_t fd_limit, std::size_t reserve) {
  if (fd_limit <= reserve + 1) return 1;
  return static_cast<std::size_t>(std::min<std::uint64_t>(fd_limit - reserve, SIZE_MAX));
}

std::uint64_t raise_fd_limit(std::uint64_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    const rlim_t target = limit.rlim_max == RLIM_INFINITY
                              ? static_cast<rlim_t>(wanted)
                              : std::min<rlim_t>(limit.rlim_max, wanted);
    if (target > limit.rlim_cur) {
      rlimit raised = limit;
      raised.rlim_cur = target;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
  }
  return limit.rlim_cur == RLIM_INFINITY ? wanted : static_cast<std::uint64_t>(limit.rlim_cur);
}

bool accept_needs_pause(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

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
                       std::function<std::shared_ptr<const ResponseSet>()> responses,
                       std::shared_ptr<ConnectionBudget> budget)
    : state_(std::make_shared<State>(io, limits, std::move(responses), std::move(budget))) {}

PageServer::~PageServer() = default;

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
    boost::system::error_code ec;
    acceptor->non_blocking(true, ec);
    acceptor->set_option(tcp::no_delay(true), ec);  // inherited by every accepted socket
    if (state_->limits.defer_accept) {
      acceptor->set_option(asio::detail::socket_option::integer<IPPROTO_TCP, TCP_DEFER_ACCEPT>(1),
                           ec);
    }
    state_->listeners.push_back({std::move(*acceptor), asio::steady_timer(state_->io)});
  }
  for (auto& l : state_->listeners) accept_next(state_, l);
  // Deadlines are checked a few times per timeout: a connection is closed at most a quarter
  // of its timeout late.
  const auto shortest = std::min(state_->limits.idle_timeout, state_->limits.write_timeout);
  const auto period = std::clamp<SteadyClock::duration>(
      std::chrono::duration_cast<SteadyClock::duration>(shortest) / 4,
      std::chrono::milliseconds(50), std::chrono::seconds(1));
  sweep(state_, period);
  return {};
}

std::vector<tcp::endpoint> PageServer::endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& l : state_->listeners) out.push_back(l.acceptor.local_endpoint());
  return out;
}

std::size_t PageServer::connections() const { return state_->connections.load(); }

void PageServer::stop() {
  asio::post(state_->io, [st = state_] {
    st->stopped = true;
    for (auto& l : st->listeners) {
      boost::system::error_code ignored;
      l.acceptor.close(ignored);
      l.pause.cancel();
    }
    // Connections between requests close now; the others finish their request (answered
    // with "Connection: close") and close after it.
    for (auto it = st->reading.begin(); it != st->reading.end();) {
      Connection& c = *it++;
      if (c.idle()) c.close();
    }
    st->sweeper.cancel();
  });
}

}  // namespace intermission::page
