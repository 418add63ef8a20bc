// The lines a user adds to haproxy.cfg for one environment (`intermission haproxy-config`).
// Pure text generation; tests check the result with `haproxy -c`.
#pragma once

#include <string>
#include <vector>

namespace intermission::adapters::haproxy {

struct SnippetOptions {
  std::string environment;
  std::string socket;                      // runtime API socket (unix path or host:port)
  std::string map;                         // map file
  std::string key;                         // map key of the environment
  std::string frontend = "www";            // the user's frontend name
  std::string page_server = "127.0.0.1:8081";
  std::vector<std::string> bypass_cidrs;   // sources that always see the app
  std::string bypass_secret;               // cookie/header value that bypasses; empty = none
  std::string health_path = "/healthz";
};

std::string haproxy_snippet(const SnippetOptions& o);

}  // namespace intermission::adapters::haproxy
