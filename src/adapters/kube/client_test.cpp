#include "adapters/kube/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "testing/fakes.h"

namespace intermission::adapters::kube {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("intermission-kube-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(std::random_device{}()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name, const std::string& text, bool executable = false) {
    const auto p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    if (executable) fs::permissions(p, fs::perms::owner_all);
    return p.string();
  }
  std::string path(const std::string& name = "") const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

Host host_with(std::map<std::string, std::string> vars, std::string sa_dir = "/nonexistent") {
  Host h;
  h.getenv = [vars](const std::string& n) -> std::optional<std::string> {
    const auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  h.service_account_dir = std::move(sa_dir);
  return h;
}

const char* kPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
// base64 of kPem
const char* kPemB64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

// ---- kubeconfig -------------------------------------------------------------------------------

TEST(Kubeconfig, TheCurrentContextGivesServerNamespaceAndCredentials) {
  TempDir d;
  d.file("certs/ca.pem", kPem);
  const auto cfg = d.file("config", std::string(R"(
apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: c1
  cluster:
    server: https://k8s.example:6443/
    certificate-authority: certs/ca.pem
    tls-server-name: api.internal
contexts:
- name: prod
  context: {cluster: c1, user: u1, namespace: ops}
- name: dev
  context: {cluster: c1, user: u1}
users:
- name: u1
  user:
    token: abc
    client-certificate-data: )") + kPemB64 + R"(
    client-key-data: )" + kPemB64 + "\n");
  auto c = load_kubeconfig({cfg}, "");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://k8s.example:6443");
  EXPECT_EQ(c->ca_file, d.path("certs/ca.pem")) << "relative to the kubeconfig's directory";
  EXPECT_EQ(c->tls_server_name, "api.internal");
  EXPECT_EQ(c->namespace_name, "ops");
  EXPECT_EQ(c->token, "abc");
  EXPECT_EQ(c->client_cert_data, kPem);
  EXPECT_EQ(c->client_key_data, kPem);
  EXPECT_EQ(c->user, "u1");
  auto dev = load_kubeconfig({cfg}, "dev");
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev->namespace_name, "");
}

TEST(Kubeconfig, ListedFilesMergeWithTheFirstToSetAValueWinning) {
  TempDir d;
  const auto a = d.file("a", R"(
current-context: from-a
clusters:
- name: shared
  cluster: {server: "https://first:1"}
contexts:
- name: from-a
  context: {cluster: shared, user: ua}
)");
  const auto b = d.file("b", R"(
current-context: from-b
clusters:
- name: shared
  cluster: {server: "https://second:2", insecure-skip-tls-verify: true}
contexts:
- name: from-b
  context: {cluster: shared, user: ub, namespace: nb}
users:
- name: ua
  user: {tokenFile: tok}
- name: ub
  user: {username: admin, password: pw}
)");
  d.file("tok", "t0\n");
  auto c = resolve({}, host_with({{"KUBECONFIG", d.path("missing") + ":" + a + "::" + b}}));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://first:1") << "the first definition of 'shared' wins whole";
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->token_file, d.path("tok")) << "relative to the file that defined the user (b)";
  EXPECT_NE(c->source.find("context from-a"), std::string::npos) << c->source;
  auto other = resolve({"", "from-b"}, host_with({{"KUBECONFIG", a + ":" + b}}));
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(other->namespace_name, "nb");
  EXPECT_EQ(other->username, "admin");
  EXPECT_EQ(other->password, "pw");
}

TEST(Kubeconfig, ErrorsNameTheFileAndTheField) {
  TempDir d;
  const auto bad_ctx = d.file("x", "current-context: nope\ncontexts: []\n");
  auto e = load_kubeconfig({bad_ctx}, "");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(e.error().message.find(bad_ctx), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("current-context: 'nope' is not in contexts"),
            std::string::npos)
      << e.error().message;

  const auto bad_data = d.file("y", R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://h", certificate-authority-data: "!!"}}]
users: [{name: u, user: {}}]
)");
  e = load_kubeconfig({bad_data}, "");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find(bad_data + ": clusters[k].cluster.certificate-authority-data: "
                                              "is not base64"),
            std::string::npos)
      << e.error().message;

  const auto no_user = d.file("z", R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: ghost}}]
clusters: [{name: k, cluster: {server: "https://h", certificate-authority: missing.pem}}]
)");
  e = load_kubeconfig({no_user}, "");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("certificate-authority: " + d.path("missing.pem")),
            std::string::npos)
      << e.error().message;

  const auto v1_no_mode = d.file("w", R"(
current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://h"}}]
users: [{name: u, user: {exec: {command: x, apiVersion: client.authentication.k8s.io/v1}}}]
)");
  e = load_kubeconfig({v1_no_mode}, "");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("users[u].user.exec.interactiveMode: missing"),
            std::string::npos)
      << e.error().message;
  EXPECT_NE(load_kubeconfig({d.path("none")}, "").error().message.find("no kubeconfig"),
            std::string::npos);
}

TEST(Kubeconfig, WithoutAKubeconfigTheServiceAccountIsUsed) {
  TempDir d;
  d.file("sa/token", "tok\n");
  d.file("sa/ca.crt", kPem);
  d.file("sa/namespace", "ops\n");
  auto c = resolve({}, host_with({{"KUBERNETES_SERVICE_HOST", "fd00::1"},
                                  {"KUBERNETES_SERVICE_PORT", "443"},
                                  {"HOME", d.path("nohome")}},
                                 d.path("sa")));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->token_file, d.path("sa") + "/token");
  EXPECT_EQ(c->ca_file, d.path("sa") + "/ca.crt");
  EXPECT_EQ(c->namespace_name, "ops");
  auto v4 = in_cluster(host_with(
      {{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "6443"}},
      d.path("sa")));
  EXPECT_EQ(v4->server, "https://10.0.0.1:6443");
  auto none = resolve({}, host_with({}));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  // ~/.kube/config comes before the service account
  d.file("home/.kube/config", R"(
current-context: c
contexts: [{name: c, context: {cluster: k}}]
clusters: [{name: k, cluster: {server: "https://home"}}]
)");
  auto home = resolve({}, host_with({{"HOME", d.path("home")},
                                     {"KUBERNETES_SERVICE_HOST", "10.0.0.1"},
                                     {"KUBERNETES_SERVICE_PORT", "443"}},
                                    d.path("sa")));
  ASSERT_TRUE(home.ok()) << home.error().message;
  EXPECT_EQ(home->server, "https://home");
}

// ---- exec plugins -----------------------------------------------------------------------------

ExecPlugin plugin(const std::string& command) {
  ExecPlugin p;
  p.command = command;
  p.api_version = "client.authentication.k8s.io/v1";
  p.interactive_mode = "Never";
  return p;
}

TEST(ExecPlugin, RunsAsKubectlRunsIt) {
  TempDir d;
  const auto script = d.file("plugin.sh", R"(#!/bin/sh
printf '%s' "$KUBERNETES_EXEC_INFO" > "$OUT/info"
printf '%s %s %s' "$1" "$2" "$EXTRA" > "$OUT/args"
echo "a warning for people" >&2
cat <<EOF
{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
 "status":{"token":"exec-token","expirationTimestamp":"2030-01-02T03:04:05Z"}}
EOF
)",
                              true);
  auto p = plugin(script);
  p.args = {"--one", "two"};
  p.env = {{"EXTRA", "x"}, {"OUT", d.path()}};
  p.provide_cluster_info = true;
  Connection c;
  c.server = "https://h:1";
  c.ca_data = kPem;
  testing::RecordingLogger log;
  auto cred = run_exec_plugin(p, c, log, std::chrono::seconds(10));
  ASSERT_TRUE(cred.ok()) << cred.error().message;
  EXPECT_EQ(cred->token, "exec-token");
  ASSERT_TRUE(cred->expires.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*cred->expires), 1893553445);
  std::ifstream info(d.path("info"));
  const std::string info_text((std::istreambuf_iterator<char>(info)), {});
  EXPECT_NE(info_text.find(R"("apiVersion":"client.authentication.k8s.io/v1")"), std::string::npos)
      << info_text;
  EXPECT_NE(info_text.find(R"("interactive":false)"), std::string::npos) << info_text;
  EXPECT_NE(info_text.find(R"("server":"https://h:1")"), std::string::npos) << info_text;
  EXPECT_NE(info_text.find(kPemB64), std::string::npos) << info_text;
  std::ifstream args(d.path("args"));
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(args)), {}), "--one two x");
  bool logged = false;
  for (const auto& line : log.lines) {
    for (const auto& [k, v] : line.fields) logged = logged || v == "a warning for people";
  }
  EXPECT_TRUE(logged) << "the plugin's stderr goes to the log";
}

TEST(ExecPlugin, FailuresSayWhatHappened) {
  TempDir d;
  testing::RecordingLogger log;
  auto p = plugin("intermission-no-such-plugin");
  p.install_hint = "install it with apt-get install something";
  auto missing = run_exec_plugin(p, {}, log, std::chrono::seconds(5));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kConfig);
  EXPECT_NE(missing.error().message.find("was not found on PATH: install it with apt-get"),
            std::string::npos)
      << missing.error().message;

  auto slow = run_exec_plugin(plugin(d.file("slow.sh", "#!/bin/sh\nexec sleep 30\n", true)), {},
                              log, std::chrono::milliseconds(300));
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.error().code, core::ErrorCode::kTimeout);

  auto failing = run_exec_plugin(
      plugin(d.file("fail.sh", "#!/bin/sh\necho 'login expired' >&2\nexit 3\n", true)), {}, log,
      std::chrono::seconds(5));
  ASSERT_FALSE(failing.ok());
  EXPECT_NE(failing.error().message.find("exited with status 3: login expired"), std::string::npos)
      << failing.error().message;

  auto wrong = run_exec_plugin(
      plugin(d.file("old.sh",
                    "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                    "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n",
                    true)),
      {}, log, std::chrono::seconds(5));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("is not the client.authentication.k8s.io/v1"),
            std::string::npos)
      << wrong.error().message;
}

// ---- requests on loopback ---------------------------------------------------------------------

// A plain-HTTP server on 127.0.0.1 that answers each request with what `handler` returns
// (status, extra header lines, body) and records the requests it saw.
class LoopbackServer {
 public:
  struct Reply {
    int status = 200;
    std::string headers;  // "Retry-After: 0\r\n"
    std::string body = "{}";
  };
  explicit LoopbackServer(std::function<Reply(const std::string&)> handler)
      : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mutex_);
    return requests_;
  }

 private:
  void loop() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard<std::mutex> l(mutex_);
        requests_.push_back(req);
      }
      const Reply r = handler_(req);
      const std::string out = "HTTP/1.1 " + std::to_string(r.status) + " X\r\nContent-Length: " +
                              std::to_string(r.body.size()) + "\r\nConnection: close\r\n" +
                              r.headers + "\r\n" + r.body;
      (void)!::write(c, out.data(), out.size());
      ::close(c);
    }
  }

  std::function<Reply(const std::string&)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> requests_;
};

std::string bearer(const std::string& request) {
  const auto at = request.find("Authorization: Bearer ");
  if (at == std::string::npos) return "";
  const auto start = at + 22;
  return request.substr(start, request.find("\r\n", start) - start);
}

TEST(KubeClient, ARotatedTokenFileIsReadAgain) {
  TempDir d;
  const auto token = d.file("token", "first\n");
  LoopbackServer server([](const std::string&) { return LoopbackServer::Reply{}; });
  Connection c;
  c.server = server.url();
  c.token_file = token;
  testing::RecordingLogger log;
  KubeClient client(c, log);
  ASSERT_EQ(client.request("GET", "/api/v1/namespaces/a/configmaps/x")->status, 200);
  // kubelet swaps the file for a new one (a new inode)
  const auto next = d.file("token.new", "second\n");
  fs::rename(next, token);
  ASSERT_EQ(client.request("GET", "/api/v1/namespaces/a/configmaps/x")->status, 200);
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(bearer(seen[0]), "first");
  EXPECT_EQ(bearer(seen[1]), "second");
}

TEST(KubeClient, A401ReadsTheTokenFileAgainAndRetriesOnce) {
  TempDir d;
  const auto token = d.file("token", "old\n");
  std::atomic<int> calls{0};
  LoopbackServer server([&](const std::string& req) {
    ++calls;
    return bearer(req) == "new" ? LoopbackServer::Reply{} : LoopbackServer::Reply{401, "", "{}"};
  });
  Connection c;
  c.server = server.url();
  c.token_file = token;
  testing::RecordingLogger log;
  ClientOptions o;
  o.token_file_reload = std::chrono::hours(1);
  KubeClient client(c, log, o);
  ASSERT_EQ(client.request("GET", "/x")->status, 401) << "a wrong token stays a 401";
  EXPECT_EQ(calls, 2) << "tried once more with the token read again";
  { std::ofstream(token) << "new\n"; }
  ASSERT_EQ(client.request("GET", "/x")->status, 200);
}

TEST(KubeClient, AnExecCredentialIsCachedAndRerunOn401) {
  TempDir d;
  const auto script = d.file("plugin.sh", R"(#!/bin/sh
n=$(cat "$OUT/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$OUT/count"
echo "{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t$n\"}}"
)",
                              true);
  std::mutex mutex;
  std::string accepted = "t1";
  LoopbackServer server([&](const std::string& req) {
    std::lock_guard<std::mutex> l(mutex);
    return bearer(req) == accepted ? LoopbackServer::Reply{} : LoopbackServer::Reply{401, "", "{}"};
  });
  Connection c;
  c.server = server.url();
  ExecPlugin p = plugin(script);
  p.api_version = "client.authentication.k8s.io/v1beta1";
  p.env = {{"OUT", d.path()}};
  c.exec = p;
  testing::RecordingLogger log;
  KubeClient client(c, log);
  EXPECT_EQ(client.request("GET", "/x")->status, 200);
  EXPECT_EQ(client.request("GET", "/x")->status, 200);
  const auto runs = [&] {
    std::ifstream count(d.path("count"));
    int n = 0;
    count >> n;
    return n;
  };
  EXPECT_EQ(runs(), 1) << "no expiry: run once and cached";
  {
    std::lock_guard<std::mutex> l(mutex);
    accepted = "t2";  // the cluster no longer takes t1
  }
  EXPECT_EQ(client.request("GET", "/x")->status, 200);
  EXPECT_EQ(runs(), 2) << "a 401 runs the plugin again";
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST(KubeClient, AnExecCredentialIsRerunOnceItExpires) {
  TempDir d;
  const auto script = d.file("plugin.sh", R"(#!/bin/sh
n=$(cat "$OUT/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$OUT/count"
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"2001-01-01T00:00:00Z"}}'
)",
                              true);
  LoopbackServer server([](const std::string&) { return LoopbackServer::Reply{}; });
  Connection c;
  c.server = server.url();
  ExecPlugin p = plugin(script);
  p.env = {{"OUT", d.path()}};
  c.exec = p;
  testing::RecordingLogger log;
  KubeClient client(c, log);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.request("GET", "/x")->status, 200);
  std::ifstream count(d.path("count"));
  int n = 0;
  count >> n;
  EXPECT_EQ(n, 3) << "an expired credential is never reused";
}

TEST(KubeClient, ThrottlingAndUnavailabilityAreRetriedBounded) {
  std::atomic<int> calls{0};
  LoopbackServer server([&](const std::string&) {
    const int n = ++calls;
    if (n == 1) return LoopbackServer::Reply{429, "Retry-After: 0\r\n", "{}"};
    if (n == 2) return LoopbackServer::Reply{503, "", "{}"};
    return LoopbackServer::Reply{200, "", R"({"ok":true})"};
  });
  Connection c;
  c.server = server.url();
  testing::RecordingLogger log;
  ClientOptions o;
  o.backoff = std::chrono::milliseconds(1);
  KubeClient client(c, log, o);
  auto r = client.request("PUT", "/api/v1/namespaces/a/configmaps/x", "{}");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(calls, 3);
  calls = -100;  // always 429 from now on
  o.max_attempts = 3;
  LoopbackServer busy([&](const std::string&) { return LoopbackServer::Reply{429, "", "{}"}; });
  c.server = busy.url();
  KubeClient bounded(c, log, o);
  auto b = bounded.request("GET", "/x");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->status, 429) << "after max_attempts the last response is returned";
  EXPECT_EQ(busy.requests().size(), 3u);
  // Nothing listens: a transport error, retried, then an error.
  c.server = "http://127.0.0.1:1";
  KubeClient down(c, log, o);
  auto e = down.request("GET", "/x");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, core::ErrorCode::kUnavailable);
  // A passed deadline sends nothing.
  KubeClient late(c, log, o);
  late.set_deadline(std::chrono::steady_clock::now() - std::chrono::seconds(1));
  EXPECT_EQ(late.request("GET", "/x").error().code, core::ErrorCode::kTimeout);
}

// ---- status_error -----------------------------------------------------------------------------

TEST(StatusError, A403NamesTheMissingVerbResourceGroupAndNamespace) {
  const Response r{403, R"({"kind":"Status","apiVersion":"v1","status":"Failure",
    "message":"leases.coordination.k8s.io \"prod\" is forbidden: User \"system:serviceaccount:ops:intermission\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"ops\"",
    "reason":"Forbidden","details":{"name":"prod","group":"coordination.k8s.io","kind":"leases"},"code":403})"};
  const auto e =
      status_error(r, "PUT", "/apis/coordination.k8s.io/v1/namespaces/ops/leases/prod");
  EXPECT_EQ(e.code, core::ErrorCode::kPermission);
  EXPECT_NE(e.message.find("system:serviceaccount:ops:intermission needs verb 'update' on "
                           "resource 'leases' in API group \"coordination.k8s.io\" in namespace "
                           "ops"),
            std::string::npos)
      << e.message;
  // A body that is not a Status: the need is read from the request.
  const auto bare = status_error({403, "forbidden"}, "GET", "/api/v1/namespaces/web/configmaps");
  EXPECT_NE(bare.message.find("needs verb 'list' on resource 'configmaps' in API group \"\" "
                              "(core) in namespace web"),
            std::string::npos)
      << bare.message;
}

TEST(StatusError, EachStatusHasItsCodeAndAHint) {
  const auto body = [](const char* reason, const char* message) {
    return std::string(R"({"kind":"Status","reason":")") + reason + R"(","message":")" +
           message + "\"}";
  };
  const auto e401 = status_error({401, body("Unauthorized", "Unauthorized")}, "GET", "/api");
  EXPECT_EQ(e401.code, core::ErrorCode::kPermission);
  EXPECT_NE(e401.message.find("credentials"), std::string::npos);
  const auto e404 = status_error({404, body("NotFound", "configmaps \\\"x\\\" not found")}, "GET",
                                 "/api/v1/namespaces/a/configmaps/x");
  EXPECT_EQ(e404.code, core::ErrorCode::kNotFound);
  EXPECT_NE(e404.message.find("configmaps \"x\" not found"), std::string::npos) << e404.message;
  EXPECT_EQ(status_error({409, body("Conflict", "the object has been modified")}, "PUT", "/x").code,
            core::ErrorCode::kConflict);
  EXPECT_EQ(status_error({422, body("Invalid", "metadata.name: Invalid value")}, "POST", "/x").code,
            core::ErrorCode::kInvalidInput);
  EXPECT_EQ(status_error({429, body("TooManyRequests", "slow down")}, "GET", "/x").code,
            core::ErrorCode::kThrottled);
  EXPECT_EQ(status_error({503, "no body"}, "GET", "/x").code, core::ErrorCode::kUnavailable);
}

TEST(StatusError, RbacNeedReadsThePath) {
  const auto n = rbac_need("POST", "/apis/coordination.k8s.io/v1/namespaces/ops/leases");
  EXPECT_EQ(n.verb, "create");
  EXPECT_EQ(n.resource, "leases");
  EXPECT_EQ(n.group, "coordination.k8s.io");
  EXPECT_EQ(n.namespace_name, "ops");
  const auto g = rbac_need("GET", "/api/v1/namespaces/ops/configmaps/x?resourceVersion=0");
  EXPECT_EQ(g.verb, "get");
  EXPECT_EQ(g.name, "x");
  EXPECT_EQ(g.group, "");
}

}  // namespace
}  // namespace intermission::adapters::kube
