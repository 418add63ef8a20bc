#include "adapters/haproxy/runtime_client.h"
#include "adapters/unique_fd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace intermission::adapters::haproxy {
namespace {

// The one place errno becomes our error, with what we were doing and where.
core::Error socket_error(int err, const std::string& what, const std::string& address) {
  std::string message = "HAProxy runtime API " + address + ": " + what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return core::Error::unavailable(message + " (is `stats socket " + address +
                                      " mode 660 level operator` in haproxy.cfg's global section, "
                                      "and is HAProxy running?)");
    case EACCES:
    case EPERM:
      return core::Error::permission(message + " (run intermission as a user that may use the "
                                               "socket, or adjust its `mode`/`user`)");
    case ECONNREFUSED: return core::Error::unavailable(message + " (is HAProxy running?)");
    case ETIMEDOUT: return core::Error::timeout(message);
    default: return core::Error::unavailable(message);
  }
}

// Waits for `events` on fd until the deadline. Returns 0, or an errno value.
int wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return 0;
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

RuntimeClient::RuntimeClient(std::string address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout) {}

core::Result<std::string> RuntimeClient::command(const std::string& command) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  UniqueFd sock;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string target = address_;
  for (const char* prefix : {"ipv4@", "ipv6@", "unix@"}) {
    if (target.rfind(prefix, 0) == 0) target = target.substr(std::strlen(prefix));
  }
  const bool unix_socket = !target.empty() && (target.front() == '/' || target.front() == '.');
  if (unix_socket) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    if (target.size() >= sizeof(un->sun_path)) {
      return core::Error::config("HAProxy socket path too long: " + target);
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, target.c_str(), target.size() + 1);
    addr_len = sizeof(sockaddr_un);
    sock.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  } else {
    const std::size_t colon = target.rfind(':');
    if (colon == std::string::npos) {
      return core::Error::config("HAProxy socket '" + address_ +
                                 "' is neither a path nor host:port");
    }
    std::string host = target.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const std::string port = target.substr(colon + 1);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      return core::Error::config("HAProxy socket '" + address_ +
                                 "': host must be a numeric IP address and port a number");
    }
    std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addr_len = res->ai_addrlen;
    sock.fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::freeaddrinfo(res);
  }
  if (sock.fd < 0) return socket_error(errno, "socket", address_);
  if (::connect(sock.fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return socket_error(errno, "connect", address_);
    if (const int e = wait_for(sock.fd, POLLOUT, deadline); e != 0) {
      return socket_error(e, "connect", address_);
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return socket_error(err, "connect", address_);
  }
  const std::string line = command + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(sock.fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (const int e = wait_for(sock.fd, POLLOUT, deadline); e != 0) {
        return socket_error(e, "send", address_);
      }
    } else {
      return socket_error(errno, "send", address_);
    }
  }
  ::shutdown(sock.fd, SHUT_WR);
  std::string reply;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(sock.fd, buf, sizeof buf, 0);
    if (n > 0) {
      reply.append(buf, static_cast<std::size_t>(n));
      if (reply.size() > (16u << 20)) return core::Error::unavailable("HAProxy reply too large");
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (const int e = wait_for(sock.fd, POLLIN, deadline); e != 0) {
        return socket_error(e, "read reply", address_);
      }
    } else {
      return socket_error(errno, "read reply", address_);
    }
  }
  return reply;
}

}  // namespace intermission::adapters::haproxy
