#include "testing/kube_memory_api.h"

#include <boost/json.hpp>

namespace intermission::testing {
namespace {

namespace json = boost::json;
using adapters::kube::Response;

Response status(long code, const std::string& reason, const std::string& message) {
  return {code, json::serialize(json::object{{"kind", "Status"},
                                             {"apiVersion", "v1"},
                                             {"status", "Failure"},
                                             {"message", message},
                                             {"reason", reason},
                                             {"code", code}})};
}

class Handle final : public adapters::kube::Api {
 public:
  explicit Handle(KubeMemoryCluster& c) : cluster_(c) {}
  core::Result<Response> request(const std::string& method, const std::string& path,
                                 const std::string& body, const std::string&) override {
    return cluster_.handle(method, path, body);
  }
  std::string describe() const override { return "memory cluster"; }

 private:
  KubeMemoryCluster& cluster_;
};

std::string query_value(const std::string& query, const std::string& key) {
  std::size_t at = 0;
  while (at < query.size()) {
    const auto end = query.find('&', at);
    const std::string pair = query.substr(at, end == std::string::npos ? end : end - at);
    if (pair.rfind(key + "=", 0) == 0) return pair.substr(key.size() + 1);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "";
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// "a=b,c=d" against metadata.labels.
bool selected(const json::object& obj, const std::string& selector) {
  if (selector.empty()) return true;
  const json::value* labels = nullptr;
  if (const auto* m = obj.if_contains("metadata"); m != nullptr && m->is_object()) {
    labels = m->get_object().if_contains("labels");
  }
  std::size_t at = 0;
  while (at <= selector.size()) {
    const auto end = selector.find(',', at);
    const std::string term = selector.substr(at, end == std::string::npos ? end : end - at);
    const auto eq = term.find('=');
    const std::string k = term.substr(0, eq), v = term.substr(eq + 1);
    if (labels == nullptr || !labels->is_object()) return false;
    const auto* got = labels->get_object().if_contains(k);
    if (got == nullptr || !got->is_string() || got->get_string() != v) return false;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return true;
}

}  // namespace

std::unique_ptr<adapters::kube::Api> KubeMemoryCluster::api() {
  return std::make_unique<Handle>(*this);
}

std::vector<KubeMemoryCluster::Call> KubeMemoryCluster::calls() {
  std::lock_guard<std::mutex> l(mutex_);
  return calls_;
}

std::optional<json::object> KubeMemoryCluster::object(const std::string& path) {
  std::lock_guard<std::mutex> l(mutex_);
  const auto it = objects_.find(path);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

void KubeMemoryCluster::set_interceptor(
    std::function<std::optional<Response>(const std::string&, const std::string&)> f) {
  std::lock_guard<std::mutex> l(mutex_);
  interceptor_ = std::move(f);
}

Response KubeMemoryCluster::handle(const std::string& method, const std::string& full_path,
                                   const std::string& body) {
  std::function<std::optional<Response>(const std::string&, const std::string&)> intercept;
  {
    std::lock_guard<std::mutex> l(mutex_);
    calls_.push_back({method, full_path, body});
    intercept = interceptor_;
  }
  // Called unlocked: an interceptor may use the cluster (or replace itself).
  if (intercept) {
    if (auto r = intercept(method, full_path)) return *r;
  }
  std::lock_guard<std::mutex> l(mutex_);
  const auto q = full_path.find('?');
  const std::string path = full_path.substr(0, q);
  const std::string query = q == std::string::npos ? "" : full_path.substr(q + 1);
  if (method == "GET") {
    if (const auto it = objects_.find(path); it != objects_.end()) {
      return {200, json::serialize(it->second)};
    }
    // A collection: every object directly under `path`.
    json::array items;
    const std::string selector = percent_decode(query_value(query, "labelSelector"));
    for (const auto& [p, o] : objects_) {
      if (p.rfind(path + "/", 0) == 0 && p.find('/', path.size() + 1) == std::string::npos &&
          selected(o, selector)) {
        items.push_back(o);
      }
    }
    if (!items.empty() || path.ends_with("s")) {
      return {200, json::serialize(json::object{
                       {"kind", "List"},
                       {"metadata", json::object{{"resourceVersion", std::to_string(revision_)}}},
                       {"items", std::move(items)}})};
    }
    return status(404, "NotFound", path + " not found");
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (method == "DELETE") {
    if (objects_.erase(path) == 0) return status(404, "NotFound", path + " not found");
    return {200, R"({"kind":"Status","status":"Success"})"};
  }
  if (ec || !v.is_object()) return status(400, "BadRequest", "the body is not a JSON object");
  json::object obj = v.get_object();
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) {
    return status(422, "Invalid", "metadata: Required value");
  }
  auto& meta = obj["metadata"].get_object();
  const auto* name_v = meta.if_contains("name");
  if (name_v == nullptr || !name_v->is_string() || name_v->get_string().empty()) {
    return status(422, "Invalid", "metadata.name: Required value");
  }
  const std::string name(name_v->get_string());
  if (method == "POST") {
    const std::string target = path + "/" + name;
    if (objects_.contains(target)) {
      return status(409, "AlreadyExists", "\"" + name + "\" already exists");
    }
    meta["resourceVersion"] = std::to_string(++revision_);
    objects_[target] = obj;
    return {201, json::serialize(obj)};
  }
  if (method == "PUT") {
    const auto it = objects_.find(path);
    if (it == objects_.end()) return status(404, "NotFound", path + " not found");
    const auto* rv = meta.if_contains("resourceVersion");
    const auto& stored = it->second.at("metadata").at("resourceVersion");
    if (rv != nullptr && *rv != stored) {
      return status(409, "Conflict",
                    "Operation cannot be fulfilled on \"" + name +
                        "\": the object has been modified; please apply your changes to the "
                        "latest version and try again");
    }
    meta["resourceVersion"] = std::to_string(++revision_);
    it->second = obj;
    return {200, json::serialize(obj)};
  }
  return status(405, "MethodNotAllowed", method + " is not served here");
}

}  // namespace intermission::testing
