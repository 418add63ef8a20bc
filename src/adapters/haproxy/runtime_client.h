// Sends one command to HAProxy's runtime API and returns the whole reply (non-interactive
// mode: one command per connection, HAProxy closes after the reply). Unix socket or TCP.
#pragma once

#include <chrono>
#include <string>

#include "core/result.h"

namespace intermission::adapters::haproxy {

class RuntimeClient {
 public:
  // `address`: a unix socket path ("/run/haproxy/admin.sock"), or "host:port" /
  // "ipv4@host:port" / "ipv6@[addr]:port" for a TCP stats socket.
  RuntimeClient(std::string address, std::chrono::milliseconds timeout);

  core::Result<std::string> command(const std::string& command) const;
  [[nodiscard]] const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::chrono::milliseconds timeout_;
};

}  // namespace intermission::adapters::haproxy
