// The lines a user adds to nginx.conf for one environment (`intermission nginx-config`): the
// maintenance decision read from a state file per request, bypass by source address and by a
// secret cookie or header, the health path and exempt paths passed to the application, the
// page — proxied to `intermission page`, or served by nginx from files the backend writes —
// with a built-in fallback, and a local probe location that tells intermission what nginx
// sees. Pure text generation; tests run it in a real nginx.
#pragma once

#include <string>
#include <vector>

namespace intermission::adapters::nginx {

struct SnippetOptions {
  std::string environment;
  std::string state_file;  // present = maintenance on (the backend writes it)
  std::string page_server = "127.0.0.1:8081";
  std::vector<std::string> bypass_cidrs;  // sources that always see the app
  std::string bypass_secret;              // cookie/header value that bypasses; empty = none
  std::string health_path = "/healthz";   // passed to the application (its health check)
  std::vector<std::string> exempt;        // path prefixes always passed (webhooks, ACME)
  int retry_after_seconds = 120;          // Retry-After of the fallback and of the page files
  // Where the backend writes the page (page.html, page.json, assets/); empty = the page is
  // proxied to `page_server` instead.
  std::string page_dir;
  std::string assets_prefix = "/_intermission/";  // starts and ends with '/'
  // Content-Type by extension (".css" -> "text/css; charset=utf-8") for the assets, so nginx
  // sends what the page server would, whatever mime.types the site includes.
  std::vector<std::pair<std::string, std::string>> asset_types;
};

// The nginx variable prefix for an environment: "intermission_" + the name with every
// character outside [A-Za-z0-9_] replaced by '_'.
std::string variable_prefix(const std::string& environment);

// The URIs of the page files in file mode ("/.intermission/ENV/page.html" and ".json").
std::string page_uri(const std::string& environment, const std::string& file);

// The path of the probe location for an environment ("/.intermission/ENV/state").
std::string probe_path(const std::string& environment);

// Whether `text` can be put into the config unquoted and unescaped (no space, quote, brace,
// semicolon, dollar, backslash, control character). Used for every value we print.
bool safe_token(const std::string& text);

// Lines for the http {} block (geo/map) and for the server {} block; `both` prints the two
// with comments saying where each goes.
std::string nginx_http_part(const SnippetOptions& o);
std::string nginx_server_part(const SnippetOptions& o);
std::string nginx_snippet(const SnippetOptions& o);

}  // namespace intermission::adapters::nginx
