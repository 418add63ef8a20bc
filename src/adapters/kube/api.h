// The Kubernetes API as the backend and the store reach it: one HTTP request at a time, JSON
// in and out, with paths as the API server names them ("/api/v1/namespaces/web/services/app",
// "/apis/coordination.k8s.io/v1/namespaces/ops/leases/prod"). The client on libcurl
// (kube/client.h) implements it for a cluster; tests implement it in memory. Not thread-safe:
// one per thread.
#pragma once

#include <string>

#include "core/result.h"

namespace intermission::adapters::kube {

struct Response {
  long status = 0;   // the HTTP status; any status is a response, only transport failures are
                     // errors
  std::string body;  // JSON: the object, a list, or a meta/v1 Status on failure
};

// Content types of the request body.
inline constexpr const char* kJson = "application/json";
inline constexpr const char* kMergePatch = "application/merge-patch+json";
inline constexpr const char* kJsonPatch = "application/json-patch+json";

class Api {
 public:
  virtual ~Api() = default;
  // GET, POST, PUT, PATCH or DELETE `path` (with its query string, if any).
  virtual core::Result<Response> request(const std::string& method, const std::string& path,
                                         const std::string& body = "",
                                         const std::string& content_type = kJson) = 0;
  // Where requests go, for people ("https://10.0.0.1:443 as system:serviceaccount:ops:x").
  [[nodiscard]] virtual std::string describe() const = 0;
};

}  // namespace intermission::adapters::kube
