// An in-memory Kubernetes API for unit tests: namespaced objects by path, with the
// semantics the store and backend lean on (resourceVersion on every write, a PUT with a stale
// resourceVersion or a POST of an existing name is a 409 Status, a missing object a 404
// Status, lists filtered by an equality labelSelector). Thread-safe: one instance may serve
// many kube::Api handles (each a "process").
#pragma once

#include <boost/json/object.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/kube/api.h"

namespace intermission::testing {

class KubeMemoryCluster {
 public:
  struct Call {
    std::string method, path, body;
  };
  // Answers one request (what an API server would).
  adapters::kube::Response handle(const std::string& method, const std::string& path,
                                  const std::string& body);
  // A handle for one client; the cluster must outlive it.
  std::unique_ptr<adapters::kube::Api> api();
  // Every request so far, in order.
  std::vector<Call> calls();
  // The stored object at `path` (".../configmaps/name"), if any.
  std::optional<boost::json::object> object(const std::string& path);
  // Consulted before each request; a response returned is sent instead (failure injection).
  void set_interceptor(
      std::function<std::optional<adapters::kube::Response>(const std::string& method,
                                                            const std::string& path)>
          f);

 private:
  std::mutex mutex_;
  std::map<std::string, boost::json::object> objects_;  // by path without query
  std::vector<Call> calls_;
  long long revision_ = 1000;
  std::function<std::optional<adapters::kube::Response>(const std::string&, const std::string&)>
      interceptor_;
};

}  // namespace intermission::testing
