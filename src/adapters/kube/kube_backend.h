// The Kubernetes backend: maintenance = one object that routes users (the application's
// Service, a Gateway API HTTPRoute, or an Ingress) pointed at the page Service, with what it
// pointed at before kept in an annotation on the object, so that off restores it exactly. The
// core plans make-before-break (wait for ready page pods, then point; wait for ready
// application pods, then restore); this class observes and executes one step at a time.
// Every write is a PUT of the object as just read, so it carries metadata.resourceVersion: a
// write that lost a race is a kConflict error and is planned again from a fresh read.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "adapters/kube/api.h"
#include "core/backend.h"

namespace intermission::adapters::kube {

// The annotation that keeps the original (a JSON object with the parts of `spec` replaced).
inline constexpr const char* kOriginalAnnotation = "intermission.dev/original";

struct KubeSettings {
  std::string environment;
  std::string ns;            // the namespace of the object and the page Service
  std::string mode;          // service | httproute | ingress
  std::string name;          // the Service, HTTPRoute or Ingress
  std::string page_service;  // the Service in front of the page pods
  int page_port = 0;         // httproute/ingress: the page Service's port; 0 = its only port
  std::vector<std::string> paths;  // ingress: the paths switched; empty = all and the default
  std::string bypass_header = "X-Intermission-Bypass";  // httproute only
  std::string bypass_secret;                            // httproute only; empty = no bypass
  int min_ready = 1;
  std::chrono::milliseconds health_timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds poll_interval{std::chrono::seconds(2)};
};

using Sleeper = std::function<void(std::chrono::milliseconds)>;

// Pure codecs of the three modes, over the objects as the API server returns them.

// The parts of `spec` a mode replaces ({"selector": ...}; {"rules": ...}; {"rules": ...,
// "defaultBackend": ...}), copied from `object`.
boost::json::object routed_parts(const std::string& mode, const boost::json::object& object);
// The maintenance form of `original` (routed_parts of the object before): every backend
// pointed at the page (`page` is the page Service's selector in service mode, {"name",
// "port"} otherwise), plus the bypass rules of an HTTPRoute above them.
boost::json::object maintenance_parts(const KubeSettings& s, const boost::json::object& original,
                                      const boost::json::value& page);
// Whether every member of `wanted` is in `have` with the same value (objects recursively,
// arrays element by element, same length): what the API server adds (defaults) is ignored.
bool json_contains(const boost::json::value& have, const boost::json::value& wanted);

class KubeBackend final : public core::Backend {
 public:
  // `sleep` is called between polls of the waits.
  KubeBackend(KubeSettings settings, std::unique_ptr<Api> api, Sleeper sleep);

  core::Result<core::Observation> observe() override;
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  struct Seen {
    boost::json::object object;  // as read
    boost::json::object original;  // the original routed parts (annotation, or the object)
    boost::json::value page;       // the page as the object names it (page_ref)
    bool damaged = false;          // the annotation is not ours to read
    core::KubeObservation o;
  };
  core::Result<Seen> look();
  // look(), but only once the page (page) or the application has min_ready ready: waits as
  // the wait steps do; kConflict if it was ready and is not any more.
  core::Result<Seen> look_ready(bool page);
  core::Result<boost::json::object> get(const std::string& path, const std::string& what);
  core::Status put(const std::string& path, const boost::json::object& object);
  core::Result<int> ready_endpoints(const std::string& service);
  core::Result<int> ready_pods(const boost::json::object& selector, std::string* blocker_ports,
                               const boost::json::array* target_ports);
  core::Result<boost::json::value> page_ref(const boost::json::object& page_service,
                                            std::string& blocker) const;
  core::Status wait(bool page);
  core::Status point_at_page();
  core::Status restore();
  [[nodiscard]] std::string object_path() const;
  [[nodiscard]] std::string kind() const;

  KubeSettings s_;
  std::unique_ptr<Api> api_;
  Sleeper sleep_;
};

}  // namespace intermission::adapters::kube
