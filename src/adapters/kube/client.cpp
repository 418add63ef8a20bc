#include "adapters/kube/client.h"

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "adapters/crypto/base64.h"
#include "adapters/curl_io.h"
#include "adapters/process.h"
#include "core/time.h"

extern char** environ;

namespace intermission::adapters::kube {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

std::once_flag g_curl_init;

// ---- small helpers -------------------------------------------------------------------------

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

// ---- kubeconfig ----------------------------------------------------------------------------

// One named entry (a cluster, user or context) and the file that defined it first.
struct Entry {
  YAML::Node body;
  std::string file;
};

core::Error field_error(const std::string& file, const std::string& field,
                        const std::string& what) {
  return core::Error::config("kubeconfig " + file + ": " + field + ": " + what);
}

// A scalar string field of `node`, or an error naming the file and the field.
core::Result<std::string> str(const YAML::Node& node, const char* key, const std::string& file,
                              const std::string& where) {
  const YAML::Node v = node[key];
  if (!v || v.IsNull()) return std::string();
  if (!v.IsScalar()) return field_error(file, where + "." + key, "must be a string");
  return v.as<std::string>();
}

core::Result<bool> boolean(const YAML::Node& node, const char* key, const std::string& file,
                           const std::string& where) {
  const YAML::Node v = node[key];
  if (!v || v.IsNull()) return false;
  bool out = false;
  if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) {
    return field_error(file, where + "." + key, "must be true or false");
  }
  return out;
}

// A path in a kubeconfig is relative to the file that holds it (clientcmd ResolveLocalPaths).
std::string local_path(const std::string& file, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(file).parent_path() / path).lexically_normal().string();
}

// Collects `section` (clusters, users, contexts) of `file` into `into`, first definition wins.
core::Status collect(const YAML::Node& root, const char* section, const char* body_key,
                     const std::string& file, std::map<std::string, Entry>& into) {
  const YAML::Node list = root[section];
  if (!list || list.IsNull()) return {};
  if (!list.IsSequence()) return field_error(file, section, "must be a list");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = std::string(section) + "[" + std::to_string(i) + "]";
    const YAML::Node item = list[i];
    if (!item.IsMap()) return field_error(file, where, "must be a map with name and " +
                                                           std::string(body_key));
    auto name = str(item, "name", file, where);
    if (!name) return name.error();
    if (name->empty()) return field_error(file, where + ".name", "missing");
    const YAML::Node body = item[body_key];
    if (body && !body.IsNull() && !body.IsMap()) {
      return field_error(file, where + "." + body_key, "must be a map");
    }
    into.emplace(*name, Entry{body ? body : YAML::Node(YAML::NodeType::Map), file});
  }
  return {};
}

core::Result<ExecPlugin> parse_exec(const YAML::Node& node, const std::string& file,
                                    const std::string& where) {
  if (!node.IsMap()) return field_error(file, where, "must be a map");
  ExecPlugin p;
  auto command = str(node, "command", file, where);
  if (!command) return command.error();
  if (command->empty()) return field_error(file, where + ".command", "missing");
  // As client-go: a command with a slash is a path, relative to the kubeconfig; a bare name
  // is looked up on PATH.
  p.command = command->find('/') == std::string::npos ? *command : local_path(file, *command);
  auto api = str(node, "apiVersion", file, where);
  if (!api) return api.error();
  p.api_version = *api;
  if (p.api_version != "client.authentication.k8s.io/v1" &&
      p.api_version != "client.authentication.k8s.io/v1beta1") {
    return field_error(file, where + ".apiVersion",
                       "'" + p.api_version +
                           "' is not supported (client.authentication.k8s.io/v1 or v1beta1)");
  }
  if (const YAML::Node args = node["args"]; args && !args.IsNull()) {
    if (!args.IsSequence()) return field_error(file, where + ".args", "must be a list");
    for (const auto& a : args) {
      if (!a.IsScalar()) return field_error(file, where + ".args", "must be strings");
      p.args.push_back(a.as<std::string>());
    }
  }
  if (const YAML::Node env = node["env"]; env && !env.IsNull()) {
    if (!env.IsSequence()) return field_error(file, where + ".env", "must be a list");
    for (std::size_t i = 0; i < env.size(); ++i) {
      const std::string w = where + ".env[" + std::to_string(i) + "]";
      auto name = str(env[i], "name", file, w);
      if (!name) return name.error();
      auto value = str(env[i], "value", file, w);
      if (!value) return value.error();
      if (name->empty()) return field_error(file, w + ".name", "missing");
      p.env.emplace_back(*name, *value);
    }
  }
  auto hint = str(node, "installHint", file, where);
  if (!hint) return hint.error();
  p.install_hint = *hint;
  auto info = boolean(node, "provideClusterInfo", file, where);
  if (!info) return info.error();
  p.provide_cluster_info = *info;
  auto mode = str(node, "interactiveMode", file, where);
  if (!mode) return mode.error();
  p.interactive_mode = *mode;
  if (p.interactive_mode.empty()) {
    // client-go: v1 must say; v1beta1 defaults to IfAvailable.
    if (p.api_version == "client.authentication.k8s.io/v1") {
      return field_error(file, where + ".interactiveMode",
                         "missing (client.authentication.k8s.io/v1 requires Never, IfAvailable "
                         "or Always)");
    }
    p.interactive_mode = "IfAvailable";
  }
  if (p.interactive_mode == "Always") {
    return field_error(file, where + ".interactiveMode",
                       "Always needs a terminal, and intermission runs without one: use a "
                       "plugin that works with Never or IfAvailable");
  }
  if (p.interactive_mode != "Never" && p.interactive_mode != "IfAvailable") {
    return field_error(file, where + ".interactiveMode",
                       "'" + p.interactive_mode + "' is not Never, IfAvailable or Always");
  }
  return p;
}

core::Status check_pem(const std::string& data, const std::string& file,
                       const std::string& field) {
  if (data.find("-----BEGIN") == std::string::npos) {
    return field_error(file, field, "does not hold PEM data (-----BEGIN ...)");
  }
  return {};
}

core::Status decode_data(const YAML::Node& node, const char* key, const std::string& file,
                         const std::string& where, std::string& out) {
  auto text = str(node, key, file, where);
  if (!text) return text.error();
  if (text->empty()) return {};
  auto decoded = base64_decode(*text, /*ignore_whitespace=*/true);
  if (!decoded) return field_error(file, where + "." + key, "is not base64");
  if (auto st = check_pem(*decoded, file, where + "." + key); !st) return st;
  out = std::move(*decoded);
  return {};
}

core::Status require_file(const std::string& path, const std::string& file,
                          const std::string& field) {
  if (path.empty()) return {};
  if (::access(path.c_str(), R_OK) != 0) {
    return field_error(file, field, path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Host Host::system() {
  Host h;
  h.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  return h;
}

core::Result<Connection> load_kubeconfig(const std::vector<std::string>& files,
                                         const std::string& context) {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current, current_file;
  std::vector<std::string> read;
  for (const auto& file : files) {
    if (file.empty()) continue;
    std::error_code ec;
    if (!fs::exists(file, ec)) continue;  // kubectl skips missing files of the list
    auto text = read_file(file);
    if (!text) return core::Error::config("kubeconfig " + file + ": " + std::strerror(errno));
    YAML::Node root;
    try {
      root = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
      return core::Error::config("kubeconfig " + file + ": line " +
                                 std::to_string(e.mark.line + 1) + ": " + e.msg);
    }
    read.push_back(file);
    if (!root || root.IsNull()) continue;  // an empty file is an empty config
    if (!root.IsMap()) return core::Error::config("kubeconfig " + file + ": not a map");
    if (auto st = collect(root, "clusters", "cluster", file, clusters); !st) return st.error();
    if (auto st = collect(root, "users", "user", file, users); !st) return st.error();
    if (auto st = collect(root, "contexts", "context", file, contexts); !st) return st.error();
    if (current.empty()) {
      auto c = str(root, "current-context", file, "");
      if (!c) return c.error();
      if (!c->empty()) {
        current = *c;
        current_file = file;
      }
    }
  }
  if (read.empty()) {
    std::string list;
    for (const auto& f : files) list += (list.empty() ? "" : ", ") + f;
    return core::Error::config("no kubeconfig file found (tried " + list + ")");
  }
  std::string files_text;
  for (const auto& f : read) files_text += (files_text.empty() ? "" : ":") + f;
  const std::string name = context.empty() ? current : context;
  if (name.empty()) {
    return core::Error::config("kubeconfig " + files_text +
                               ": current-context: missing, and the config names no context");
  }
  const auto ctx = contexts.find(name);
  if (ctx == contexts.end()) {
    return core::Error::config("kubeconfig " + files_text + ": " +
                               (context.empty() ? "current-context" : "context") + ": '" + name +
                               "' is not in contexts");
  }
  const std::string& cfile = ctx->second.file;
  const std::string cwhere = "contexts[" + name + "].context";
  auto cluster_name = str(ctx->second.body, "cluster", cfile, cwhere);
  if (!cluster_name) return cluster_name.error();
  auto user_name = str(ctx->second.body, "user", cfile, cwhere);
  if (!user_name) return user_name.error();
  auto ns = str(ctx->second.body, "namespace", cfile, cwhere);
  if (!ns) return ns.error();

  Connection c;
  c.namespace_name = *ns;
  c.source = "kubeconfig " + files_text + ", context " + name;
  const auto cl = clusters.find(*cluster_name);
  if (cluster_name->empty() || cl == clusters.end()) {
    return field_error(cfile, cwhere + ".cluster",
                       "'" + *cluster_name + "' is not in clusters");
  }
  {
    const YAML::Node& b = cl->second.body;
    const std::string& f = cl->second.file;
    const std::string w = "clusters[" + *cluster_name + "].cluster";
    auto server = str(b, "server", f, w);
    if (!server) return server.error();
    if (server->empty()) return field_error(f, w + ".server", "missing");
    if (server->rfind("https://", 0) != 0 && server->rfind("http://", 0) != 0) {
      return field_error(f, w + ".server", "'" + *server + "' is not an http(s) URL");
    }
    c.server = *server;
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    auto tls = str(b, "tls-server-name", f, w);
    if (!tls) return tls.error();
    c.tls_server_name = *tls;
    auto insecure = boolean(b, "insecure-skip-tls-verify", f, w);
    if (!insecure) return insecure.error();
    c.insecure_skip_tls_verify = *insecure;
    auto ca = str(b, "certificate-authority", f, w);
    if (!ca) return ca.error();
    if (auto st = decode_data(b, "certificate-authority-data", f, w, c.ca_data); !st) {
      return st.error();
    }
    if (c.ca_data.empty()) {  // the data wins over the file, as in client-go
      c.ca_file = local_path(f, *ca);
      if (auto st = require_file(c.ca_file, f, w + ".certificate-authority"); !st) {
        return st.error();
      }
    }
  }
  c.user = *user_name;
  if (!user_name->empty()) {
    const auto u = users.find(*user_name);
    if (u == users.end()) {
      return field_error(cfile, cwhere + ".user", "'" + *user_name + "' is not in users");
    }
    const YAML::Node& b = u->second.body;
    const std::string& f = u->second.file;
    const std::string w = "users[" + *user_name + "].user";
    if (b["auth-provider"]) {
      return field_error(f, w + ".auth-provider",
                         "auth providers were removed from Kubernetes clients; use an exec "
                         "plugin (users[].user.exec)");
    }
    auto token = str(b, "token", f, w);
    if (!token) return token.error();
    c.token = *token;
    auto token_file = str(b, "tokenFile", f, w);
    if (!token_file) return token_file.error();
    c.token_file = local_path(f, *token_file);
    if (auto st = require_file(c.token_file, f, w + ".tokenFile"); !st) return st.error();
    auto cert = str(b, "client-certificate", f, w);
    if (!cert) return cert.error();
    auto key = str(b, "client-key", f, w);
    if (!key) return key.error();
    if (auto st = decode_data(b, "client-certificate-data", f, w, c.client_cert_data); !st) {
      return st.error();
    }
    if (auto st = decode_data(b, "client-key-data", f, w, c.client_key_data); !st) {
      return st.error();
    }
    if (c.client_cert_data.empty()) {
      c.client_cert_file = local_path(f, *cert);
      if (auto st = require_file(c.client_cert_file, f, w + ".client-certificate"); !st) {
        return st.error();
      }
    }
    if (c.client_key_data.empty()) {
      c.client_key_file = local_path(f, *key);
      if (auto st = require_file(c.client_key_file, f, w + ".client-key"); !st) {
        return st.error();
      }
    }
    const bool has_cert = !c.client_cert_data.empty() || !c.client_cert_file.empty();
    const bool has_key = !c.client_key_data.empty() || !c.client_key_file.empty();
    if (has_cert != has_key) {
      return field_error(f, w + (has_cert ? ".client-key" : ".client-certificate"),
                         "missing: a client certificate needs its key and the key its "
                         "certificate");
    }
    auto username = str(b, "username", f, w);
    if (!username) return username.error();
    auto password = str(b, "password", f, w);
    if (!password) return password.error();
    c.username = *username;
    c.password = *password;
    if (const YAML::Node exec = b["exec"]; exec && !exec.IsNull()) {
      auto p = parse_exec(exec, f, w + ".exec");
      if (!p) return p.error();
      c.exec = std::move(*p);
    }
  }
  return c;
}

core::Result<Connection> in_cluster(const Host& host) {
  const auto h = host.getenv("KUBERNETES_SERVICE_HOST");
  const auto p = host.getenv("KUBERNETES_SERVICE_PORT");
  if (!h || h->empty() || !p || p->empty()) {
    return core::Error::config(
        "not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not "
        "set");
  }
  Connection c;
  // net.JoinHostPort, as rest.InClusterConfig: an IPv6 address goes in brackets.
  const std::string hostpart = h->find(':') != std::string::npos ? "[" + *h + "]" : *h;
  c.server = "https://" + hostpart + ":" + *p;
  const std::string dir = host.service_account_dir;
  c.token_file = dir + "/token";
  if (::access(c.token_file.c_str(), R_OK) != 0) {
    return core::Error::config("in-cluster: " + c.token_file + ": " + std::strerror(errno) +
                               " (is a service account token mounted? automountServiceAccount"
                               "Token must not be false)");
  }
  c.ca_file = dir + "/ca.crt";
  if (::access(c.ca_file.c_str(), R_OK) != 0) {
    return core::Error::config("in-cluster: " + c.ca_file + ": " + std::strerror(errno));
  }
  if (auto ns = read_file(dir + "/namespace")) c.namespace_name = trim(*ns);
  c.source = "in-cluster service account (" + dir + ")";
  c.user = "serviceaccount";
  return c;
}

core::Result<Connection> resolve(const Settings& settings, const Host& host) {
  std::vector<std::string> files;
  if (!settings.kubeconfig.empty()) {
    std::error_code ec;
    if (!fs::exists(settings.kubeconfig, ec)) {
      return core::Error::config("kubeconfig " + settings.kubeconfig + ": no such file");
    }
    return load_kubeconfig({settings.kubeconfig}, settings.context);
  }
  if (const auto list = host.getenv("KUBECONFIG"); list && !list->empty()) {
    std::stringstream s(*list);
    std::string item;
    std::vector<std::string> seen;
    while (std::getline(s, item, ':')) {
      if (item.empty() || std::find(seen.begin(), seen.end(), item) != seen.end()) continue;
      seen.push_back(item);
    }
    return load_kubeconfig(seen, settings.context);
  }
  if (const auto home = host.getenv("HOME"); home && !home->empty()) {
    const std::string file = *home + "/.kube/config";
    std::error_code ec;
    if (fs::exists(file, ec)) return load_kubeconfig({file}, settings.context);
  }
  if (!settings.context.empty()) {
    return core::Error::config("context '" + settings.context +
                               "' is named but no kubeconfig was found (KUBECONFIG, "
                               "~/.kube/config)");
  }
  auto c = in_cluster(host);
  if (!c) {
    return core::Error::config("no Kubernetes connection: no kubeconfig (store.kubeconfig, "
                               "KUBECONFIG, ~/.kube/config) and " + c.error().message);
  }
  return c;
}

// ---- exec plugins --------------------------------------------------------------------------

core::Result<ExecCredential> parse_exec_credential(const std::string& stdout_text,
                                                   const std::string& api_version) {
  boost::system::error_code ec;
  const json::value v = json::parse(stdout_text, ec);
  if (ec || !v.is_object()) {
    return core::Error::invalid_input("exec plugin: stdout is not an ExecCredential JSON object");
  }
  const auto& o = v.get_object();
  const auto* kind = o.if_contains("kind");
  if (kind == nullptr || !kind->is_string() || kind->get_string() != "ExecCredential") {
    return core::Error::invalid_input("exec plugin: kind is not ExecCredential");
  }
  const auto* api = o.if_contains("apiVersion");
  if (api == nullptr || !api->is_string() || api->get_string() != api_version) {
    return core::Error::invalid_input(
        "exec plugin: apiVersion " +
        (api != nullptr && api->is_string() ? std::string(api->get_string()) : "(none)") +
        " is not the " + api_version + " the kubeconfig asked for");
  }
  const auto* status = o.if_contains("status");
  if (status == nullptr || !status->is_object()) {
    return core::Error::invalid_input("exec plugin: the ExecCredential has no status");
  }
  const auto& s = status->get_object();
  auto text = [&](const char* key) {
    const auto* x = s.if_contains(key);
    return x != nullptr && x->is_string() ? std::string(x->get_string()) : std::string();
  };
  ExecCredential out;
  out.token = text("token");
  out.client_cert_data = text("clientCertificateData");
  out.client_key_data = text("clientKeyData");
  if (out.token.empty() && (out.client_cert_data.empty() || out.client_key_data.empty())) {
    return core::Error::invalid_input(
        "exec plugin: status has neither a token nor clientCertificateData with clientKeyData");
  }
  if (out.client_cert_data.empty() != out.client_key_data.empty()) {
    return core::Error::invalid_input(
        "exec plugin: clientCertificateData and clientKeyData come together");
  }
  if (const std::string exp = text("expirationTimestamp"); !exp.empty()) {
    const auto t = core::parse_iso8601(exp);
    if (!t) return core::Error::invalid_input("exec plugin: expirationTimestamp '" + exp +
                                              "' is not an RFC 3339 time");
    out.expires = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(t->time_since_epoch()));
  }
  return out;
}

namespace {

// KUBERNETES_EXEC_INFO: the ExecCredential the plugin is given (spec.interactive false: we
// run without a terminal; spec.cluster when provideClusterInfo).
std::string exec_info(const ExecPlugin& plugin, const Connection& c) {
  json::object spec{{"interactive", false}};
  if (plugin.provide_cluster_info) {
    json::object cluster{{"server", c.server}};
    if (!c.tls_server_name.empty()) cluster["tls-server-name"] = c.tls_server_name;
    if (c.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    std::string ca = c.ca_data;
    if (ca.empty() && !c.ca_file.empty()) ca = read_file(c.ca_file).value_or("");
    if (!ca.empty()) cluster["certificate-authority-data"] = base64_encode(ca);
    spec["cluster"] = std::move(cluster);
  }
  return json::serialize(json::object{
      {"apiVersion", plugin.api_version}, {"kind", "ExecCredential"}, {"spec", std::move(spec)}});
}

}  // namespace

core::Result<ExecCredential> run_exec_plugin(const ExecPlugin& plugin, const Connection& c,
                                             core::Logger& log,
                                             std::chrono::milliseconds timeout) {
  ProcessRequest run;
  run.argv.push_back(plugin.command);
  run.argv.insert(run.argv.end(), plugin.args.begin(), plugin.args.end());
  run.env.emplace();
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = name == "KUBERNETES_EXEC_INFO";
    for (const auto& [n, v] : plugin.env) replaced = replaced || n == name;
    if (!replaced) run.env->push_back(entry);
  }
  for (const auto& [n, v] : plugin.env) run.env->push_back(n + "=" + v);
  run.env->push_back("KUBERNETES_EXEC_INFO=" + exec_info(plugin, c));
  run.timeout = timeout;
  const ProcessOutcome got = run_process(run);
  const std::string what = "kubernetes exec plugin '" + plugin.command + "'";
  if (got.how == ProcessOutcome::How::kNotStarted) {
    std::string m = what + " " + got.describe(run);
    if (got.code == ENOENT) {
      m += (plugin.command.find('/') == std::string::npos ? " on PATH" : "") +
           (plugin.install_hint.empty() ? "" : ": " + trim(plugin.install_hint));
    }
    return core::Error::config(m);
  }
  for (const std::string& line : got.stderr_lines()) {
    log.warn("kubernetes exec plugin stderr", {{"command", plugin.command}, {"line", line}});
  }
  if (got.how == ProcessOutcome::How::kTimedOut || got.how == ProcessOutcome::How::kTooMuchOutput) {
    return core::Error::timeout(what + " " + got.describe(run));
  }
  if (!got.succeeded()) {
    const std::string last = got.stderr_tail();
    return core::Error::permission(what + " " + got.describe(run) +
                                   (last.empty() ? "" : ": " + last));
  }
  auto cred = parse_exec_credential(got.out, plugin.api_version);
  if (!cred) return cred.error().with_context(what);
  return cred;
}

// ---- the client ----------------------------------------------------------------------------

namespace {

struct Slist {
  curl_slist* list = nullptr;
  ~Slist() { curl_slist_free_all(list); }
  void add(const std::string& h) { list = curl_slist_append(list, h.c_str()); }
};

// scheme, authority ("host:port" or "[v6]:port"), and the path prefix of a server URL.
struct ServerUrl {
  std::string scheme, host, port, prefix;
};

ServerUrl split_server(const std::string& server) {
  ServerUrl u;
  const auto sep = server.find("://");
  u.scheme = server.substr(0, sep);
  std::string rest = server.substr(sep + 3);
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    u.prefix = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  std::size_t colon = std::string::npos;
  if (!rest.empty() && rest[0] == '[') {
    const auto close = rest.find(']');
    u.host = rest.substr(0, close + 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') colon = close + 1;
  } else {
    colon = rest.find(':');
    u.host = rest.substr(0, colon);
  }
  u.port = colon != std::string::npos ? rest.substr(colon + 1) : (u.scheme == "https" ? "443" : "80");
  return u;
}

std::optional<std::chrono::milliseconds> retry_after(const std::map<std::string, std::string>& h) {
  const auto it = h.find("retry-after");
  if (it == h.end()) return std::nullopt;
  try {
    const long s = std::stol(it->second);
    if (s >= 0) return std::chrono::seconds(s);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

struct KubeClient::Credential {
  bool valid = false;
  std::string token;
  std::string cert_data, key_data;  // from an exec plugin
  std::optional<std::chrono::system_clock::time_point> expires;
  // The token file as last read.
  struct stat file_stat {};
  SteadyClock::time_point read_at{};
};

KubeClient::KubeClient(Connection connection, core::Logger& log, ClientOptions options)
    : connection_(std::move(connection)),
      log_(log),
      options_(options),
      credential_(std::make_unique<Credential>()),
      curl_(nullptr) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

KubeClient::~KubeClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

core::Result<std::unique_ptr<KubeClient>> KubeClient::open(const Settings& settings,
                                                           core::Logger& log,
                                                           ClientOptions options) {
  auto c = resolve(settings, Host::system());
  if (!c) return c.error();
  return std::make_unique<KubeClient>(std::move(*c), log, options);
}

std::string KubeClient::describe() const {
  return connection_.server + " (" + connection_.source + ")" +
         (connection_.user.empty() ? "" : " as " + connection_.user);
}

// The credential for the next request: the exec plugin's (re-run when it ran out, or forced
// after a 401), the token file's (re-read when the file changed, after token_file_reload, or
// forced), else the static token.
core::Status KubeClient::refresh_credential(bool force) {
  Credential& cr = *credential_;
  if (connection_.exec) {
    const bool expired =
        cr.expires && std::chrono::system_clock::now() + std::chrono::seconds(10) >= *cr.expires;
    if (cr.valid && !force && !expired) return {};
    auto got = run_exec_plugin(*connection_.exec, connection_, log_, options_.exec_timeout);
    if (!got) {
      cr.valid = false;
      return got.error();
    }
    cr.token = got->token;
    cr.cert_data = got->client_cert_data;
    cr.key_data = got->client_key_data;
    cr.expires = got->expires;
    cr.valid = true;
    return {};
  }
  if (!connection_.token_file.empty()) {
    struct stat now_stat {};
    const bool stat_ok = ::stat(connection_.token_file.c_str(), &now_stat) == 0;
    const bool changed = stat_ok && (now_stat.st_ino != cr.file_stat.st_ino ||
                                     now_stat.st_size != cr.file_stat.st_size ||
                                     now_stat.st_mtim.tv_sec != cr.file_stat.st_mtim.tv_sec ||
                                     now_stat.st_mtim.tv_nsec != cr.file_stat.st_mtim.tv_nsec);
    const bool stale = SteadyClock::now() - cr.read_at >= options_.token_file_reload;
    if (cr.valid && !force && !changed && !stale) return {};
    auto text = read_file(connection_.token_file);
    if (!text || trim(*text).empty()) {
      const std::string why = text ? "empty" : std::strerror(errno);
      if (cr.valid) {  // keep the token we have, as client-go does, and say so
        log_.warn("kubernetes token file unreadable; using the last token read",
                  {{"file", connection_.token_file}, {"error", why}});
        cr.read_at = SteadyClock::now();
        return {};
      }
      return core::Error::permission("kubernetes token file " + connection_.token_file + ": " +
                                     why);
    }
    cr.token = trim(*text);
    cr.file_stat = now_stat;
    cr.read_at = SteadyClock::now();
    cr.valid = true;
    return {};
  }
  cr.token = connection_.token;
  cr.valid = true;
  return {};
}

core::Result<Response> KubeClient::once(const std::string& method, const std::string& path,
                                        const std::string& body,
                                        const std::string& content_type,
                                        std::map<std::string, std::string>& headers) {
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) return core::Error::internal("curl_easy_init failed");
  auto connect = options_.connect_timeout;
  auto total = options_.request_timeout;
  if (deadline_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - SteadyClock::now());
    if (left.count() <= 0) {
      return core::Error::timeout("no time left before the deadline (" + method + " " + path + ")");
    }
    connect = std::min(connect, left);
    total = std::min(total, left);
  }
  curl_easy_reset(c);
  const Connection& k = connection_;
  const Credential& cr = *credential_;
  const ServerUrl u = split_server(k.server);
  std::string url = k.server + path;
  std::string connect_to;
  Slist list;
  curl_slist* connect_list = nullptr;
  if (!k.tls_server_name.empty()) {
    // Check the certificate against tls-server-name (and send it as SNI) while connecting to
    // the server's own address, with its own Host header.
    url = u.scheme + "://" + k.tls_server_name + ":" + u.port + u.prefix + path;
    connect_to = k.tls_server_name + ":" + u.port + ":" + u.host + ":" + u.port;
    connect_list = curl_slist_append(nullptr, connect_to.c_str());
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_list);
    list.add("Host: " + u.host + (u.port == "443" ? "" : ":" + u.port));
  }
  Response response;
  headers.clear();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<long long>(1, connect.count())));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<long long>(1, total.count())));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, curl_collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &headers);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_blob ca_blob{}, cert_blob{}, key_blob{};
  if (k.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!k.ca_data.empty()) {
    ca_blob = {const_cast<char*>(k.ca_data.data()), k.ca_data.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_blob);
  } else if (!k.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, k.ca_file.c_str());
  }
  const std::string& cert = !cr.cert_data.empty() ? cr.cert_data : k.client_cert_data;
  const std::string& key = !cr.key_data.empty() ? cr.key_data : k.client_key_data;
  if (!cert.empty()) {
    cert_blob = {const_cast<char*>(cert.data()), cert.size(), CURL_BLOB_NOCOPY};
    key_blob = {const_cast<char*>(key.data()), key.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert_blob);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key_blob);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!k.client_cert_file.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, k.client_cert_file.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, k.client_key_file.c_str());
  }
  if (!cr.token.empty()) {
    list.add("Authorization: Bearer " + cr.token);
  } else if (!k.username.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERNAME, k.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, k.password.c_str());
  }
  list.add("Accept: application/json");
  list.add("User-Agent: intermission");
  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    list.add("Content-Type: " + content_type);
    list.add("Expect:");
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.list);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(connect_list);
  curl_easy_setopt(c, CURLOPT_CONNECT_TO, nullptr);
  if (rc != CURLE_OK) {
    const std::string what =
        std::string(curl_easy_strerror(rc)) + " (" + method + " " + k.server + path + ")";
    if (rc == CURLE_OPERATION_TIMEDOUT) return core::Error::timeout(what);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
      return core::Error::config(what + ": check the cluster's certificate-authority and "
                                        "tls-server-name (" + k.source + ")");
    }
    if (rc == CURLE_SSL_CERTPROBLEM) {  // ours, not the server's: unreadable, or not a pair
      return core::Error::config(what +
                                 ": the client certificate or its key cannot be used "
                                 "(unreadable, or the key is not the certificate's): "
                                 "check the user's client-certificate and client-key (" +
                                 k.source + ")");
    }
    return core::Error::unavailable(what);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

core::Result<Response> KubeClient::request(const std::string& method, const std::string& path,
                                           const std::string& body,
                                           const std::string& content_type) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  bool refreshed_on_401 = false;
  std::optional<core::Error> last_error;
  std::optional<Response> last_response;
  for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
    if (auto st = refresh_credential(false); !st) {
      return st.error().with_context("kubernetes " + connection_.source);
    }
    std::map<std::string, std::string> headers;
    auto r = once(method, path, body, content_type, headers);
    std::optional<std::chrono::milliseconds> wait;
    if (r) {
      if (r->status == 401 && !refreshed_on_401 &&
          (connection_.exec || !connection_.token_file.empty())) {
        // A rotated token or an expired exec credential: get a fresh one and try once more.
        refreshed_on_401 = true;
        if (auto st = refresh_credential(true); !st) {
          return st.error().with_context("kubernetes " + connection_.source);
        }
        --attempt;
        continue;
      }
      const bool retry = r->status == 429 || r->status == 502 || r->status == 503 ||
                         r->status == 504;
      if (!retry) return r;
      wait = retry_after(headers);
      last_response = std::move(*r);
      last_error.reset();
    } else {
      if (r.error().code == core::ErrorCode::kConfig) return r.error();
      if (deadline_ && SteadyClock::now() >= *deadline_) return r.error();
      last_error = r.error();
      last_response.reset();
    }
    if (attempt + 1 >= options_.max_attempts) break;
    // Full jitter (a random pause up to the doubled step), at least what Retry-After asks.
    const auto step = std::min<long long>(options_.max_backoff.count(),
                                          options_.backoff.count() << std::min(attempt, 20));
    auto pause = std::chrono::milliseconds(
        std::uniform_int_distribution<long long>(0, std::max<long long>(0, step))(random));
    if (wait) pause = std::min(std::max(pause, *wait), options_.max_backoff);
    if (deadline_ && SteadyClock::now() + pause >= *deadline_) break;
    log_.warn("kubernetes request retried",
              {{"request", method + " " + path},
               {"status", last_response ? std::to_string(last_response->status) : "none"},
               {"error", last_error ? last_error->message : ""},
               {"pause_ms", std::to_string(pause.count())}});
    std::this_thread::sleep_for(pause);
  }
  if (last_response) return *last_response;
  return *last_error;
}

// ---- errors --------------------------------------------------------------------------------

RbacNeed rbac_need(const std::string& method, const std::string& path) {
  RbacNeed n;
  const std::string p = path.substr(0, path.find('?'));
  std::vector<std::string> parts;
  std::stringstream s(p);
  std::string part;
  while (std::getline(s, part, '/')) {
    if (!part.empty()) parts.push_back(part);
  }
  std::size_t i = 0;
  if (i < parts.size() && parts[i] == "api") {
    i += 2;  // api/v1
  } else if (i < parts.size() && parts[i] == "apis") {
    if (i + 1 < parts.size()) n.group = parts[i + 1];
    i += 3;  // apis/<group>/<version>
  }
  if (i + 1 < parts.size() && parts[i] == "namespaces" && i + 2 < parts.size()) {
    n.namespace_name = parts[i + 1];
    i += 2;
  }
  if (i < parts.size()) n.resource = parts[i];
  if (i + 1 < parts.size()) n.name = parts[i + 1];
  if (i + 2 < parts.size()) n.resource += "/" + parts[i + 2];  // a subresource
  if (method == "GET") n.verb = n.name.empty() ? "list" : "get";
  else if (method == "POST") n.verb = "create";
  else if (method == "PUT") n.verb = "update";
  else if (method == "PATCH") n.verb = "patch";
  else if (method == "DELETE") n.verb = n.name.empty() ? "deletecollection" : "delete";
  else n.verb = method;
  return n;
}

core::Error status_error(const Response& response, const std::string& method,
                         const std::string& path, const std::string& identity) {
  std::string message, reason;
  boost::system::error_code ec;
  const json::value v = json::parse(response.body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.get_object().if_contains("message"); m != nullptr && m->is_string()) {
      message = std::string(m->get_string());
    }
    if (const auto* r = v.get_object().if_contains("reason"); r != nullptr && r->is_string()) {
      reason = std::string(r->get_string());
    }
  }
  if (message.empty()) {
    message = response.body.substr(0, 200);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
  }
  const std::string what = method + " " + path + ": HTTP " + std::to_string(response.status) +
                           (reason.empty() ? "" : " " + reason) +
                           (message.empty() ? "" : ": " + message);
  const long s = response.status;
  if (s == 401) {
    return core::Error::permission(
        what + " (the API server did not accept the credentials" +
        (identity.empty() ? std::string() : " of " + identity) +
        ": check the kubeconfig user's token, client certificate or exec plugin, or the service "
        "account token)");
  }
  if (s == 403) {
    RbacNeed need = rbac_need(method, path);
    std::string who;
    // The API server's wording: User "x" cannot <verb> resource "<r>" in API group "<g>"
    // [in the namespace "<ns>"].
    static const std::regex kForbidden(
        R"re(User "([^"]*)" cannot ([a-z]+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?)re");
    std::smatch m;
    if (std::regex_search(message, m, kForbidden)) {
      who = m[1];
      need.verb = m[2];
      need.resource = m[3];
      need.group = m[4];
      need.namespace_name = m[5].matched ? std::string(m[5]) : std::string();
    }
    const std::string group = need.group.empty() ? "\"\" (core)" : "\"" + need.group + "\"";
    const std::string scope = need.namespace_name.empty()
                                  ? "cluster-wide (a ClusterRole)"
                                  : "in namespace " + need.namespace_name + " (a Role)";
    return core::Error::permission(
        what + " (RBAC: " + (who.empty() ? "this identity" : who) + " needs verb '" + need.verb +
        "' on resource '" + need.resource + "' in API group " + group + " " + scope +
        "; grant it with a Role/ClusterRole and a binding)");
  }
  if (s == 404) return core::Error::not_found(what);
  if (s == 409) {
    return core::Error::conflict(what + " (changed by someone else meanwhile: re-read and "
                                        "decide again)");
  }
  if (s == 400 || s == 422 || s == 413 || s == 415) {
    return core::Error::invalid_input(what + " (the API server refused the object as sent)");
  }
  if (s == 429) return core::Error::throttled(what + " (the API server is throttling: retry later)");
  if (s >= 500) return core::Error::unavailable(what + " (the API server failed: retry later)");
  return core::Error::unavailable(what);
}

core::Result<std::unique_ptr<Api>> open_api(const std::string& kubeconfig,
                                             const std::string& context, core::Logger& log) {
  auto client = KubeClient::open(Settings{kubeconfig, context}, log);
  if (!client) return client.error();
  return std::unique_ptr<Api>(std::move(*client));
}

}  // namespace intermission::adapters::kube
