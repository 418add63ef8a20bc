#include "adapters/kube/minimal_client.h"

#include <cstdlib>

#include <yaml-cpp/yaml.h>

#include "adapters/aws/http_client.h"

namespace intermission::adapters::kube {
namespace {

class MinimalClient final : public Api {
 public:
  MinimalClient(std::string server, std::string ca_file, std::string token, std::string who)
      : server_(std::move(server)), token_(std::move(token)), who_(std::move(who)) {
    if (!ca_file.empty()) http_.set_ca_file(std::move(ca_file));
  }
  core::Result<Response> request(const std::string& method, const std::string& path,
                                 const std::string& body,
                                 const std::string& content_type) override {
    std::vector<std::string> headers = {"Accept: application/json",
                                        "User-Agent: intermission"};
    if (!token_.empty()) headers.push_back("Authorization: Bearer " + token_);
    if (!body.empty()) headers.push_back("Content-Type: " + content_type);
    auto r = http_.request(method, server_ + path, headers, body);
    if (!r) return r.error().with_context(method + " " + path);
    return Response{r->status, std::move(r->body)};
  }
  [[nodiscard]] std::string describe() const override { return who_; }

 private:
  aws::HttpClient http_;
  std::string server_;
  std::string token_;
  std::string who_;
};

YAML::Node named(const YAML::Node& list, const std::string& name) {
  if (list.IsSequence()) {
    for (const auto& item : list) {
      if (item["name"] && item["name"].as<std::string>() == name) return item;
    }
  }
  return YAML::Node();
}

}  // namespace

core::Result<std::unique_ptr<Api>> open_minimal(const std::string& path,
                                                const std::string& context) {
  std::string file = path;
  if (file.empty()) {
    if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
      file = env;
      file = file.substr(0, file.find(':'));
    } else if (const char* home = std::getenv("HOME")) {
      file = std::string(home) + "/.kube/config";
    }
  }
  try {
    const YAML::Node root = YAML::LoadFile(file);
    const std::string ctx_name =
        !context.empty() ? context
                         : (root["current-context"] ? root["current-context"].as<std::string>() : "");
    const YAML::Node ctx = named(root["contexts"], ctx_name);
    if (!ctx) return core::Error::config(file + ": contexts: no context '" + ctx_name + "'");
    const std::string cluster_name = ctx["context"]["cluster"].as<std::string>("");
    const std::string user_name = ctx["context"]["user"].as<std::string>("");
    const YAML::Node cluster = named(root["clusters"], cluster_name);
    if (!cluster) return core::Error::config(file + ": clusters: no cluster '" + cluster_name + "'");
    const std::string server = cluster["cluster"]["server"].as<std::string>("");
    if (server.empty()) return core::Error::config(file + ": clusters[" + cluster_name + "].server: missing");
    std::string ca = cluster["cluster"]["certificate-authority"].as<std::string>("");
    if (!ca.empty() && ca.front() != '/') {
      const auto slash = file.rfind('/');
      if (slash != std::string::npos) ca = file.substr(0, slash + 1) + ca;
    }
    const YAML::Node user = named(root["users"], user_name);
    const std::string token = user ? user["user"]["token"].as<std::string>("") : "";
    if (token.empty()) {
      return core::Error::config(file + ": users[" + user_name + "].user.token: missing (this "
                                 "build's Kubernetes client understands bearer tokens only)");
    }
    return std::unique_ptr<Api>(std::make_unique<MinimalClient>(
        server, ca, token, server + " (kubeconfig " + file + ", context " + ctx_name + ")"));
  } catch (const std::exception& e) {
    return core::Error::config("kubeconfig " + file + ": " + e.what());
  }
}

}  // namespace intermission::adapters::kube
