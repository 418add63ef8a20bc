#include "adapters/nginx/config_snippet.h"

namespace intermission::adapters::nginx {
namespace {

// A regular expression that matches `prefix` literally at the start of $uri.
std::string literal_regex(const std::string& prefix) {
  std::string out = "^";
  for (const char c : prefix) {
    if (std::string_view(".^$*+?()[]{}|\\/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

const char* kFallbackPage =
    "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport "
    "content='width=device-width,initial-scale=1'><title>Back soon</title><body "
    "style='font:16px/1.5 system-ui,sans-serif;margin:10vh auto;max-width:34em;padding:0 "
    "1em'><h1>We&#39;ll be right back</h1><p>We are updating the site. Please try again in a "
    "few minutes.</p>";

}  // namespace

std::string variable_prefix(const std::string& environment) {
  std::string out = "intermission_";
  for (const char c : environment) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  return out;
}

std::string page_uri(const std::string& environment, const std::string& file) {
  return "/.intermission/" + environment + "/" + file;
}

std::string probe_path(const std::string& environment) {
  return "/.intermission/" + environment + "/state";
}

bool safe_token(const std::string& text) {
  if (text.empty()) return false;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '\'' || c == ';' || c == '{' || c == '}' ||
        c == '$' || c == '\\' || c == '#') {
      return false;
    }
  }
  return true;
}

std::string nginx_http_part(const SnippetOptions& o) {
  const std::string v = variable_prefix(o.environment);
  std::string out;
  out += "    # Bypass: these requests always reach the application.\n";
  out += "    geo $" + v + "_bypass_ip {\n        default 0;\n";
  for (const auto& c : o.bypass_cidrs) out += "        " + c + " 1;\n";
  out += "    }\n";
  if (!o.bypass_secret.empty()) {
    out += "    # The secret cookie or header (testers see the new version before the page\n";
    out += "    # lifts). Treat the value as a password.\n";
    out += "    map $cookie_intermission_bypass $" + v +
           "_bypass_cookie {\n        default 0;\n        \"" + o.bypass_secret + "\" 1;\n    }\n";
    out += "    map $http_x_intermission_bypass $" + v +
           "_bypass_header {\n        default 0;\n        \"" + o.bypass_secret + "\" 1;\n    }\n";
  } else {
    out += "    map $uri $" + v + "_bypass_cookie { default 0; }\n";
    out += "    map $uri $" + v + "_bypass_header { default 0; }\n";
  }
  out += "    map \"$" + v + "_bypass_ip$" + v + "_bypass_cookie$" + v + "_bypass_header\" $" + v +
         "_bypass {\n        default 1;\n        \"000\" 0;\n    }\n";
  if (!o.page_dir.empty()) {
    out +=
        "    # The page file for a request: JSON for clients that ask for application/json and\n";
    out += "    # not text/html (API clients, fetch), else HTML.\n";
    out += "    map $http_accept $" + v + "_page {\n        default page.html;\n";
    out += "        \"~*^(?!.*text/html).*application/json\" page.json;\n    }\n";
  }
  return out;
}

std::string nginx_server_part(const SnippetOptions& o) {
  const std::string v = variable_prefix(o.environment);
  const std::string probe = probe_path(o.environment);
  std::string out;
  out += "    # Maintenance is on while " + o.state_file + " exists (intermission writes and\n";
  out += "    # removes it; nginx looks at it on every request, so no reload is needed).\n";
  out += "    set $" + v + " 0;\n";
  out += "    if (-f " + o.state_file + ") {\n        set $" + v + " 1;\n    }\n";
  out += "    if ($" + v + "_bypass) {\n        set $" + v + " 0;\n    }\n";
  const bool files = !o.page_dir.empty();
  std::vector<std::string> passed{probe};
  if (files) {
    // error_page's internal redirect runs this server's rewrite phase again for the page's
    // URI: it must pass, or it would be answered 503 once more.
    passed.push_back(page_uri(o.environment, "page.html"));
    passed.push_back(page_uri(o.environment, "page.json"));
  }
  if (!o.health_path.empty()) passed.push_back(o.health_path);
  for (const auto& p : passed) {
    out += "    if ($uri = " + p + ") {\n        set $" + v + " 0;\n    }\n";
  }
  std::vector<std::string> exempt = o.exempt;
  if (files) exempt.insert(exempt.begin(), o.assets_prefix);
  if (!exempt.empty()) {
    out += files
               ? "    # The page's assets, and paths that always reach the application (webhooks,\n"
                 "    # ACME challenges).\n"
               : "    # Paths that always reach the application (webhooks, ACME challenges).\n";
    std::string re;
    for (const auto& p : exempt) re += (re.empty() ? "" : "|") + literal_regex(p);
    out += "    if ($uri ~ \"" + re + "\") {\n        set $" + v + " 0;\n    }\n";
  }
  out += "    if ($" + v + ") {\n        return 503;\n    }\n";
  if (files) {
    out += "    # The page from the files intermission writes into " + o.page_dir + "\n";
    out += "    # at every switch on (nginx reads them per request: a new page needs no reload).\n";
    out += "    # The internal redirect keeps the 503 and makes every method a GET.\n";
    out += "    error_page 503 " + page_uri(o.environment, "$" + v + "_page") + ";\n";
  } else {
    out += "    error_page 503 @" + v + ";\n";
  }
  out += "    # Lets the page's location fall back to nginx's own page when the page " +
         std::string(files ? "files are" : "server is") + "\n";
  out += "    # missing (the first error_page decides whether a second one may follow).\n";
  out += "    recursive_error_pages on;\n\n";
  if (files) {
    const std::string retry = std::to_string(o.retry_after_seconds);
    for (const auto& [file, type] : std::vector<std::pair<std::string, std::string>>{
             {"page.html", "text/html"}, {"page.json", "application/json"}}) {
      out += "    location = " + page_uri(o.environment, file) + " {\n";
      out += "        internal;\n";
      out += "        alias " + o.page_dir + "/" + file + ";\n";
      out += "        types { }\n        default_type " + type + ";\n";
      if (file == "page.html") out += "        charset utf-8;\n";
      out += "        etag off;\n";
      out += "        add_header Retry-After " + retry + " always;\n";
      out += "        add_header Cache-Control \"no-store\" always;\n";
      out += "        add_header Vary Accept always;\n";
      out += "        add_header X-Content-Type-Options nosniff always;\n";
      out += "        error_page 403 404 =503 @" + v + "_fallback;\n";
      out += "    }\n";
    }
    out += "    # The page's assets (CSS, images, fonts), written beside it.\n";
    out += "    location ^~ " + o.assets_prefix + " {\n";
    out += "        alias " + o.page_dir + "/assets/;\n";
    out += "        types {\n";
    for (const auto& [ext, type] : o.asset_types) {
      out += "            \"" + type + "\" " + (ext.front() == '.' ? ext.substr(1) : ext) + ";\n";
    }
    out += "        }\n";
    out += "        default_type application/octet-stream;\n";
    out += "        add_header Cache-Control \"public, max-age=300\";\n";
    out += "        add_header X-Content-Type-Options nosniff;\n";
    out += "    }\n";
  } else {
    out += "    # The page: `intermission page --listen " + o.page_server + " --environment " +
           o.environment + "`\n";
    out +=
        "    # answers 503 with Retry-After, no-store, the reason, JSON for API clients and "
        "assets.\n";
    out += "    location @" + v + " {\n";
    out += "        proxy_pass http://" + o.page_server + ";\n";
    out += "        proxy_set_header Host $host;\n";
    out += "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n";
    out += "        proxy_connect_timeout 2s;\n";
    out += "        error_page 502 504 =503 @" + v + "_fallback;\n";
    out += "    }\n";
  }
  out += "    # If the page is missing too, nginx answers with a short page of its own.\n";
  out += "    location @" + v + "_fallback {\n";
  out += "        default_type text/html;\n";
  out += "        add_header Retry-After " + std::to_string(o.retry_after_seconds) + " always;\n";
  out += "        add_header Cache-Control \"no-store\" always;\n";
  out += "        return 503 \"" + std::string(kFallbackPage) + "\";\n";
  out += "    }\n";
  out += "    # What nginx sees, for intermission (`status`, and a check after every switch).\n";
  out += "    location = " + probe + " {\n";
  out += "        allow 127.0.0.1;\n        allow ::1;\n        deny all;\n";
  out += "        default_type text/plain;\n";
  out += "        add_header Cache-Control \"no-store\" always;\n";
  out += "        if (-f " + o.state_file + ") {\n            return 200 \"on\\n\";\n        }\n";
  out += "        return 200 \"off\\n\";\n";
  out += "    }\n";
  return out;
}

std::string nginx_snippet(const SnippetOptions& o) {
  std::string out;
  out += "# --- intermission: maintenance for environment '" + o.environment + "' ---\n";
  out += "# Put the first part in the http {} block and the second in the server {} block of\n";
  out += "# the site, check with `nginx -t`, and reload nginx once. After that intermission\n";
  out += "# switches maintenance by writing or removing " + o.state_file + ",\n";
  out += "# without reloads. The directory must be searchable by nginx's worker user.\n\n";
  out += "# http {\n" + nginx_http_part(o) + "# }\n\n";
  out += "# server {\n" + nginx_server_part(o) + "# }\n";
  return out;
}

}  // namespace intermission::adapters::nginx
