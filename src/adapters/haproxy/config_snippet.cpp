#include "adapters/haproxy/config_snippet.h"

namespace intermission::adapters::haproxy {

std::string haproxy_snippet(const SnippetOptions& o) {
  const std::string id = "intermission_" + o.key;
  std::string out;
  out += "# --- intermission: maintenance switch for environment '" + o.environment + "' ---\n";
  out += "# Add these lines to haproxy.cfg, then reload HAProxy once. After that, intermission\n";
  out += "# switches maintenance on and off through the runtime API, without reloads.\n\n";
  out += "global\n";
  out += "    # intermission's own runtime API socket, at level operator: enough for the map\n";
  out += "    # commands (add/del/show/prepare/commit map), not for disabling servers or taking\n";
  out += "    # the listeners (no expose-fd here; keep that on your admin socket, mode 600).\n";
  if (!o.socket.empty() && o.socket.front() == '/') {
    out += "    # Mode 660: HAProxy's group (Debian: haproxy), which intermission's units join.\n";
    out += "    stats socket " + o.socket + " mode 660 level operator\n\n";
  } else {
    out += "    stats socket ipv4@" + o.socket + " level operator\n\n";
  }
  out += "frontend " + o.frontend + "\n";
  out += "    # Maintenance is on while the map has an entry for '" + o.key +
         "'. The map file is\n";
  out += "    # read at start, so create it (empty) before the first start: touch " + o.map +
         "\n";
  out += "    # Keep it in a directory of its own that intermission may write (the Debian units:\n";
  out +=
      "    # /var/lib/intermission/haproxy/); it writes a temporary file and a lock beside it.\n";
  out += "    acl " + id + "_on str(" + o.key + "),map(" + o.map + ") -m found\n";
  if (!o.bypass_cidrs.empty()) {
    out += "    # Bypass by source address: these clients always see the application.\n";
    out += "    acl " + id + "_bypass src";
    for (const auto& c : o.bypass_cidrs) out += " " + c;
    out += "\n";
  }
  if (!o.bypass_secret.empty()) {
    out += "    # Bypass by a secret cookie or header (testers check the new version before the\n";
    out += "    # page lifts). Treat the value as a password.\n";
    out += "    acl " + id + "_bypass req.cook(intermission_bypass) -m str " + o.bypass_secret +
           "\n";
    out += "    acl " + id + "_bypass req.hdr(x-intermission-bypass) -m str " + o.bypass_secret +
           "\n";
  }
  const bool bypass = !o.bypass_cidrs.empty() || !o.bypass_secret.empty();
  out += "    use_backend " + id + "_page if " + id + "_on" + (bypass ? " !" + id + "_bypass" : "") +
         "\n\n";
  out += "backend " + id + "_page\n";
  out += "    # The page server (intermission page --listen " + o.page_server +
         ") answers every path\n";
  out += "    # with 503, Retry-After and the page, and " + o.health_path +
         " with 200 for this check.\n";
  out += "    option httpchk GET " + o.health_path + "\n";
  out += "    server page1 " + o.page_server + " check inter 2s\n";
  out += "    # If the page server is down too, HAProxy still answers 503 with a short text.\n";
  out += "    errorfile 503 /etc/haproxy/errors/503.http\n";
  return out;
}

}  // namespace intermission::adapters::haproxy
