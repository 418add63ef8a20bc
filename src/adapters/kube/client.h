// kube::Api for a real cluster, on libcurl: the connection found as kubectl and client-go find
// it (a kubeconfig file or the KUBECONFIG list merged, or the pod's service account), the
// credentials kept fresh (a rotated token file re-read, an exec plugin re-run when its
// credential runs out or is refused), throttling and transient failures retried with jittered
// backoff, and status_error(): a failed response as an error that says what to fix.
// docs/architecture.md ("adapters/kube") cites the client-go behaviour each part follows.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/kube/api.h"
#include "core/log.h"
#include "core/result.h"

namespace intermission::adapters::kube {

// Where to find the cluster, as the config names it (`store.kubeconfig`, `store.context`).
struct Settings {
  // A kubeconfig file, used alone. Empty: the KUBECONFIG list, else ~/.kube/config, else the
  // pod's service account (in-cluster), in the order kubectl tries them.
  std::string kubeconfig;
  std::string context;  // empty: the kubeconfig's current-context
};

// What resolving the connection reads from the machine; tests replace it.
struct Host {
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // The service account's token, ca.crt and namespace files when in a pod.
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // The process's environment and the standard service account directory.
  static Host system();
};

// A users[].user.exec entry: a command that prints an ExecCredential
// (client.authentication.k8s.io/v1 or v1beta1) on stdout.
struct ExecPlugin {
  std::string command;  // a path (relative ones from the kubeconfig's directory) or a PATH name
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // added to this process's environment
  std::string api_version;    // "client.authentication.k8s.io/v1" or ".../v1beta1"
  std::string install_hint;   // shown when the command is missing
  bool provide_cluster_info = false;
  std::string interactive_mode;  // "Never", "IfAvailable" or "Always" (v1 requires one)
};

// Everything needed to reach one cluster, resolved and checked; file paths are absolute.
struct Connection {
  std::string server;  // "https://10.0.0.1:443"
  std::string tls_server_name;  // checked against the server's certificate instead of its host
  std::string ca_file;  // PEM; with ca_data empty too: the system's CAs
  std::string ca_data;  // PEM (certificate-authority-data, decoded)
  bool insecure_skip_tls_verify = false;
  std::string token;       // a bearer token
  std::string token_file;  // a bearer token re-read as it rotates (wins over `token`)
  std::string client_cert_file, client_cert_data;  // PEM
  std::string client_key_file, client_key_data;    // PEM
  std::string username, password;                  // basic auth
  std::optional<ExecPlugin> exec;
  std::string namespace_name;  // the context's or the service account's; empty: none given
  std::string source;  // for people: "kubeconfig /home/a/.kube/config, context prod"
  std::string user;    // the kubeconfig user's name, or "serviceaccount"
};

// The connection the settings name, in kubectl's order (see Settings::kubeconfig). Config
// errors name the file and the field.
core::Result<Connection> resolve(const Settings& settings, const Host& host);
// `files` merged as kubectl merges KUBECONFIG: the first file to set current-context wins, and
// the first to define a cluster, user or context of a name wins it whole. Missing files are
// skipped; none at all is a config error. `context` empty: the current-context.
core::Result<Connection> load_kubeconfig(const std::vector<std::string>& files,
                                         const std::string& context);
// The pod's service account (rest.InClusterConfig): KUBERNETES_SERVICE_HOST/PORT, the token
// file (re-read as it rotates), ca.crt and the namespace file.
core::Result<Connection> in_cluster(const Host& host);

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};  // one attempt
  int max_attempts = 5;  // per request, for 429, 5xx and transport failures
  std::chrono::milliseconds backoff{250};       // the first pause; doubles, with full jitter
  std::chrono::milliseconds max_backoff{8000};  // longest pause (and longest Retry-After obeyed)
  std::chrono::milliseconds exec_timeout{60000};  // an exec plugin's run
  // How long a token file's content is trusted before it is read again (client-go: a minute);
  // a change of the file's inode, size or time is noticed at once.
  std::chrono::milliseconds token_file_reload{60000};
};

// The client. Not thread-safe: one per thread (or behind a lock).
class KubeClient final : public Api {
 public:
  // `log` (stderr of exec plugins, retries) must outlive the client.
  KubeClient(Connection connection, core::Logger& log, ClientOptions options = {});
  ~KubeClient() override;
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // resolve(settings, Host::system()) and a client for it.
  static core::Result<std::unique_ptr<KubeClient>> open(const Settings& settings,
                                                        core::Logger& log,
                                                        ClientOptions options = {});

  // One request, retried on 429 (after Retry-After), 502/503/504 and transport failures up to
  // max_attempts; a 401 refreshes the credential (token file, exec plugin) and is tried once
  // more. Any other status is a response. Every method is retried: the writes we make carry a
  // resourceVersion or create a name, so a repeat is a 409, never a double write.
  core::Result<Response> request(const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 const std::string& content_type = kJson) override;
  [[nodiscard]] std::string describe() const override;

  // No request (retries included) runs past `deadline`; nullopt: none.
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> deadline) {
    deadline_ = deadline;
  }
  [[nodiscard]] const Connection& connection() const { return connection_; }

 private:
  struct Credential;
  core::Status refresh_credential(bool force);
  core::Result<Response> once(const std::string& method, const std::string& path,
                              const std::string& body, const std::string& content_type,
                              std::map<std::string, std::string>& headers);

  Connection connection_;
  core::Logger& log_;
  ClientOptions options_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::unique_ptr<Credential> credential_;
  void* curl_;  // CURL*, opaque so no header of ours includes curl
};

// The ExecCredential a plugin printed: its token or client certificate and when it runs out.
struct ExecCredential {
  std::string token;
  std::string client_cert_data, client_key_data;
  std::optional<std::chrono::system_clock::time_point> expires;
};
// Parses a plugin's stdout; `api_version` is the one the kubeconfig asked for.
core::Result<ExecCredential> parse_exec_credential(const std::string& stdout_text,
                                                   const std::string& api_version);
// Runs the plugin as kubectl does (its env added to ours, KUBERNETES_EXEC_INFO set, no stdin,
// stderr to `log`), killed after `timeout`. A missing command says so, with the install hint.
core::Result<ExecCredential> run_exec_plugin(const ExecPlugin& plugin,
                                             const Connection& connection, core::Logger& log,
                                             std::chrono::milliseconds timeout);

// A response that is not 2xx as an error saying what to fix, from the meta/v1 Status body
// when there is one: 401 credentials (kPermission), 403 the missing RBAC verb, resource, API
// group and namespace (kPermission), 404 kNotFound, 409 kConflict, 422 and 400 kInvalidInput,
// 429 kThrottled, 5xx kUnavailable. `method` and `path` are the request's; `identity` (the
// client's describe(): server, kubeconfig, context, user) is named in a 401.
core::Error status_error(const Response& response, const std::string& method,
                         const std::string& path, const std::string& identity = "");

// KubeClient::open() as a plain kube::Api, for the backend factory's connector.
core::Result<std::unique_ptr<Api>> open_api(const std::string& kubeconfig,
                                             const std::string& context, core::Logger& log);

// The RBAC verb a request needs ("get", "list", "create", "update", "patch", "delete") and the
// resource, API group ("" for core) and namespace its path names.
struct RbacNeed {
  std::string verb, resource, group, namespace_name, name;
};
RbacNeed rbac_need(const std::string& method, const std::string& path);

}  // namespace intermission::adapters::kube
