#include "adapters/kube/kube_backend.h"

#include <algorithm>
#include <thread>

#include "adapters/kube/client.h"

namespace intermission::adapters::kube {
namespace json = boost::json;

namespace {

// The Gateway API caps an HTTPRoute at 16 rules (HTTPRouteSpec.rules maxItems).
constexpr std::size_t kMaxRouteRules = 16;

std::string percent_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string selector_text(const json::object& selector) {
  std::string out;
  for (const auto& [k, v] : selector) {
    out += (out.empty() ? "" : ",") + std::string(k) + "=" +
           (v.is_string() ? std::string(v.as_string()) : json::serialize(v));
  }
  return out;
}

const json::object* object_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}
const json::array* array_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}
std::string string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : "";
}

std::vector<std::string> mode_keys(const std::string& mode) {
  if (mode == "service") return {"selector"};
  if (mode == "httproute") return {"rules"};
  return {"rules", "defaultBackend"};
}

bool is_page_backend_ref(const json::value& ref, const std::string& page) {
  if (!ref.is_object()) return false;
  const auto& r = ref.as_object();
  const std::string kind = string_at(r, "kind");
  return (kind.empty() || kind == "Service") && string_at(r, "group").empty() &&
         string_at(r, "namespace").empty() && string_at(r, "name") == page;
}

// The Services a routed object's backends name (for the wait before restore).
std::vector<std::string> backend_services(const std::string& mode, const json::object& parts) {
  std::vector<std::string> out;
  auto add = [&](const std::string& name) {
    if (!name.empty() && std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  if (mode == "httproute") {
    if (const auto* rules = array_at(parts, "rules")) {
      for (const auto& rule : *rules) {
        if (!rule.is_object()) continue;
        if (const auto* refs = array_at(rule.as_object(), "backendRefs")) {
          for (const auto& ref : *refs) {
            if (!ref.is_object()) continue;
            const auto& r = ref.as_object();
            const std::string kind = string_at(r, "kind");
            if ((kind.empty() || kind == "Service") && string_at(r, "group").empty() &&
                string_at(r, "namespace").empty()) {
              add(string_at(r, "name"));
            }
          }
        }
      }
    }
  } else if (mode == "ingress") {
    auto add_backend = [&](const json::object* backend) {
      if (backend == nullptr) return;
      if (const auto* svc = object_at(*backend, "service")) add(string_at(*svc, "name"));
    };
    add_backend(object_at(parts, "defaultBackend"));
    if (const auto* rules = array_at(parts, "rules")) {
      for (const auto& rule : *rules) {
        if (!rule.is_object()) continue;
        const auto* http = object_at(rule.as_object(), "http");
        const auto* paths = http != nullptr ? array_at(*http, "paths") : nullptr;
        if (paths == nullptr) continue;
        for (const auto& p : *paths) {
          if (p.is_object()) add_backend(object_at(p.as_object(), "backend"));
        }
      }
    }
  }
  return out;
}

// Whether the routed parts already send users to the page (without our annotation that would
// be someone else's doing, and there is nothing to restore).
bool points_at_page(const KubeSettings& s, const json::object& parts, const json::value& page) {
  if (s.mode == "service") {
    const auto* sel = parts.if_contains("selector");
    return sel != nullptr && *sel == page;
  }
  if (s.mode == "httproute") {
    if (const auto* rules = array_at(parts, "rules")) {
      for (const auto& rule : *rules) {
        if (!rule.is_object()) continue;
        if (const auto* refs = array_at(rule.as_object(), "backendRefs")) {
          for (const auto& ref : *refs) {
            if (is_page_backend_ref(ref, s.page_service)) return true;
          }
        }
      }
    }
    return false;
  }
  const auto names = backend_services(s.mode, parts);
  return std::find(names.begin(), names.end(), s.page_service) != names.end();
}

bool pod_ready(const json::object& pod) {
  if (const auto* meta = object_at(pod, "metadata"); meta && meta->contains("deletionTimestamp")) {
    return false;  // terminating: no new requests
  }
  const auto* status = object_at(pod, "status");
  const auto* conditions = status != nullptr ? array_at(*status, "conditions") : nullptr;
  if (conditions == nullptr) return false;
  for (const auto& c : *conditions) {
    if (c.is_object() && string_at(c.as_object(), "type") == "Ready") {
      return string_at(c.as_object(), "status") == "True";
    }
  }
  return false;
}

bool pod_serves(const json::object& pod, const json::value& target) {
  const auto* spec = object_at(pod, "spec");
  const auto* containers = spec != nullptr ? array_at(*spec, "containers") : nullptr;
  if (containers == nullptr) return false;
  for (const auto& c : *containers) {
    const auto* ports = c.is_object() ? array_at(c.as_object(), "ports") : nullptr;
    if (ports == nullptr) continue;
    for (const auto& p : *ports) {
      if (!p.is_object()) continue;
      const auto& port = p.as_object();
      if (target.is_string() && string_at(port, "name") == target.as_string()) return true;
      if (target.is_int64() && port.contains("containerPort") &&
          port.at("containerPort").is_int64() &&
          port.at("containerPort").as_int64() == target.as_int64()) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

json::object routed_parts(const std::string& mode, const json::object& object) {
  json::object out;
  const auto* spec = object_at(object, "spec");
  if (spec == nullptr) return out;
  for (const auto& key : mode_keys(mode)) {
    if (const auto* v = spec->if_contains(key)) out[key] = *v;
  }
  return out;
}

json::object maintenance_parts(const KubeSettings& s, const json::object& original,
                               const json::value& page) {
  json::object out;
  if (s.mode == "service") {
    out["selector"] = page;
    return out;
  }
  const auto& p = page.as_object();
  if (s.mode == "httproute") {
    // Written with the defaults the API server would fill in, so that what is read back
    // contains what was written.
    const json::object ref{{"group", ""}, {"kind", "Service"}, {"name", p.at("name")},
                           {"port", p.at("port")}, {"weight", 1}};
    json::array rules;
    const json::array none;
    const auto* originals = array_at(original, "rules");
    if (!s.bypass_secret.empty()) {
      // Bypass: each forwarding rule again, with the secret header added to each of its
      // matches. One more header match makes it win over its maintenance twin (Gateway API
      // precedence counts header matches before list order); listed first for ties too.
      for (const auto& rule : originals != nullptr ? *originals : none) {
        if (!rule.is_object()) continue;
        const auto* refs = array_at(rule.as_object(), "backendRefs");
        if (refs == nullptr || refs->empty()) continue;
        json::object copy = rule.as_object();
        json::array matches;
        if (const auto* m = array_at(copy, "matches"); m != nullptr && !m->empty()) {
          matches = *m;
        } else {
          matches.push_back(json::object{
              {"path", json::object{{"type", "PathPrefix"}, {"value", "/"}}}});
        }
        for (auto& m : matches) {
          if (!m.is_object()) continue;
          auto& headers = m.as_object()["headers"];
          if (!headers.is_array()) headers = json::array();
          headers.as_array().push_back(json::object{
              {"type", "Exact"}, {"name", s.bypass_header}, {"value", s.bypass_secret}});
        }
        copy["matches"] = std::move(matches);
        rules.push_back(std::move(copy));
      }
    }
    for (const auto& rule : originals != nullptr ? *originals : none) {
      json::value copy = rule;
      if (copy.is_object()) {
        auto& r = copy.as_object();
        if (const auto* refs = array_at(r, "backendRefs"); refs != nullptr && !refs->empty()) {
          r["backendRefs"] = json::array{ref};
        }
      }
      rules.push_back(std::move(copy));
    }
    out["rules"] = std::move(rules);
    return out;
  }
  // ingress
  const json::object backend{
      {"service", json::object{{"name", p.at("name")},
                               {"port", json::object{{"number", p.at("port")}}}}}};
  auto selected = [&](const std::string& path) {
    return s.paths.empty() || std::find(s.paths.begin(), s.paths.end(), path) != s.paths.end();
  };
  if (original.contains("defaultBackend")) {
    out["defaultBackend"] = s.paths.empty() ? json::value(backend) : original.at("defaultBackend");
  }
  if (const auto* rules = array_at(original, "rules")) {
    json::array copy = *rules;
    for (auto& rule : copy) {
      if (!rule.is_object()) continue;
      auto* http = rule.as_object().if_contains("http");
      if (http == nullptr || !http->is_object()) continue;
      auto* paths = http->as_object().if_contains("paths");
      if (paths == nullptr || !paths->is_array()) continue;
      for (auto& path : paths->as_array()) {
        if (path.is_object() && selected(string_at(path.as_object(), "path"))) {
          path.as_object()["backend"] = backend;
        }
      }
    }
    out["rules"] = std::move(copy);
  }
  return out;
}

bool json_contains(const json::value& have, const json::value& wanted) {
  if (wanted.is_object()) {
    if (!have.is_object()) return false;
    for (const auto& [k, v] : wanted.as_object()) {
      const auto* h = have.as_object().if_contains(k);
      if (h == nullptr || !json_contains(*h, v)) return false;
    }
    return true;
  }
  if (wanted.is_array()) {
    if (!have.is_array() || have.as_array().size() != wanted.as_array().size()) return false;
    for (std::size_t i = 0; i < wanted.as_array().size(); ++i) {
      if (!json_contains(have.as_array()[i], wanted.as_array()[i])) return false;
    }
    return true;
  }
  return have == wanted;
}

KubeBackend::KubeBackend(KubeSettings settings, std::unique_ptr<Api> api, Sleeper sleep)
    : s_(std::move(settings)), api_(std::move(api)), sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

std::string KubeBackend::kind() const {
  if (s_.mode == "service") return "Service";
  return s_.mode == "httproute" ? "HTTPRoute" : "Ingress";
}

std::string KubeBackend::object_path() const {
  if (s_.mode == "service") return "/api/v1/namespaces/" + s_.ns + "/services/" + s_.name;
  if (s_.mode == "httproute") {
    return "/apis/gateway.networking.k8s.io/v1/namespaces/" + s_.ns + "/httproutes/" + s_.name;
  }
  return "/apis/networking.k8s.io/v1/namespaces/" + s_.ns + "/ingresses/" + s_.name;
}

std::string KubeBackend::describe() const {
  return "kubernetes " + s_.mode + " " + kind() + " " + s_.ns + "/" + s_.name + " via " +
         api_->describe();
}

core::Result<json::object> KubeBackend::get(const std::string& path, const std::string& what) {
  auto r = api_->request("GET", path);
  if (!r) return r.error().with_context(what);
  if (r->status < 200 || r->status > 299)
    return status_error(*r, "GET", path, api_->describe()).with_context(what);
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object()) return core::Error::invalid_input(what + ": the answer is not a JSON object");
  return std::move(v.as_object());
}

core::Status KubeBackend::put(const std::string& path, const json::object& object) {
  const std::string what = "update " + kind() + " " + s_.ns + "/" + s_.name;
  auto r = api_->request("PUT", path, json::serialize(object), kJson);
  if (!r) return r.error().with_context(what);
  if (r->status == 409) {
    return core::Error::conflict(what + ": it changed since it was read (409); read again");
  }
  if (r->status < 200 || r->status > 299)
    return status_error(*r, "PUT", path, api_->describe()).with_context(what);
  return {};
}

core::Result<int> KubeBackend::ready_endpoints(const std::string& service) {
  auto list = get("/apis/discovery.k8s.io/v1/namespaces/" + s_.ns +
                      "/endpointslices?labelSelector=" +
                      percent_encode("kubernetes.io/service-name=" + service),
                  "list EndpointSlices of Service " + s_.ns + "/" + service);
  if (!list) return list.error();
  // Dual-stack Services have one slice per address family with the same pods: count each
  // family and take the larger.
  std::map<std::string, int> by_family;
  if (const auto* items = array_at(*list, "items")) {
    for (const auto& item : *items) {
      if (!item.is_object()) continue;
      const std::string family = string_at(item.as_object(), "addressType");
      int& n = by_family[family];
      const auto* endpoints = array_at(item.as_object(), "endpoints");
      if (endpoints == nullptr) continue;
      for (const auto& e : *endpoints) {
        if (!e.is_object()) continue;
        const auto* cond = object_at(e.as_object(), "conditions");
        const auto* ready = cond != nullptr ? cond->if_contains("ready") : nullptr;
        // "ready" unset means ready (EndpointConditions: nil should be interpreted as true).
        if (ready == nullptr || ready->is_null() || (ready->is_bool() && ready->as_bool())) ++n;
      }
    }
  }
  int best = 0;
  for (const auto& [family, n] : by_family) best = std::max(best, n);
  return best;
}

core::Result<int> KubeBackend::ready_pods(const json::object& selector, std::string* blocker,
                                          const json::array* target_ports) {
  auto list = get("/api/v1/namespaces/" + s_.ns +
                      "/pods?labelSelector=" + percent_encode(selector_text(selector)),
                  "list pods " + selector_text(selector));
  if (!list) return list.error();
  int ready = 0;
  if (const auto* items = array_at(*list, "items")) {
    for (const auto& item : *items) {
      if (!item.is_object()) continue;
      const auto& pod = item.as_object();
      if (pod_ready(pod)) ++ready;
      if (target_ports == nullptr || blocker == nullptr || !blocker->empty()) continue;
      for (const auto& port : *target_ports) {
        if (!port.is_object()) continue;
        const auto& p = port.as_object();
        json::value target = p.contains("targetPort") ? p.at("targetPort") : p.at("port");
        if (target.is_string()) {
          // A numeric string is a number in IntOrString's JSON only when unquoted.
        }
        if (!pod_serves(pod, target)) {
          const auto* meta = object_at(pod, "metadata");
          *blocker = "page pod " + (meta != nullptr ? string_at(*meta, "name") : "?") +
                     " declares no container port " + json::serialize(target) +
                     " (the targetPort of Service " + s_.ns + "/" + s_.name + " port " +
                     json::serialize(p.contains("port") ? p.at("port") : json::value()) +
                     "): users would reach the page pods on a port they do not serve. Give "
                     "the page container that port (by number, or by name for a named "
                     "targetPort)";
          break;
        }
      }
    }
  }
  return ready;
}

// The page as the routed object names it: the page Service's selector (service mode), or its
// name and port.
core::Result<json::value> KubeBackend::page_ref(const json::object& page_service,
                                                std::string& blocker) const {
  const auto* spec = object_at(page_service, "spec");
  if (s_.mode == "service") {
    const auto* sel = spec != nullptr ? object_at(*spec, "selector") : nullptr;
    if (sel == nullptr || sel->empty()) {
      blocker = "page Service " + s_.ns + "/" + s_.page_service + " has no selector to copy";
      return json::value(json::object{});
    }
    return json::value(*sel);
  }
  const auto* ports = spec != nullptr ? array_at(*spec, "ports") : nullptr;
  std::int64_t port = s_.page_port;
  bool found = false;
  if (ports != nullptr) {
    for (const auto& p : *ports) {
      if (!p.is_object() || !p.as_object().contains("port")) continue;
      const auto& n = p.as_object().at("port");
      if (!n.is_int64()) continue;
      if (s_.page_port == 0 && ports->size() == 1) port = n.as_int64();
      if (n.as_int64() == port) found = true;
    }
  }
  if (!found) {
    blocker = s_.page_port == 0 ? "page Service " + s_.ns + "/" + s_.page_service +
                                      " has " + std::to_string(ports ? ports->size() : 0) +
                                      " ports; set page_port to the one to use"
                                : "page Service " + s_.ns + "/" + s_.page_service +
                                      " has no port " + std::to_string(s_.page_port);
  }
  return json::value(json::object{{"name", s_.page_service}, {"port", port}});
}

core::Result<KubeBackend::Seen> KubeBackend::look() {
  Seen seen;
  core::KubeObservation& o = seen.o;
  o.mode = s_.mode;
  o.object = kind() + " " + s_.ns + "/" + s_.name;
  o.page_service = s_.ns + "/" + s_.page_service;
  o.min_ready = s_.min_ready;
  auto object = get(object_path(), "get " + o.object);
  if (!object) return object.error();
  seen.object = std::move(*object);
  auto page_svc = get("/api/v1/namespaces/" + s_.ns + "/services/" + s_.page_service,
                      "get page Service " + o.page_service);
  if (!page_svc) return page_svc.error();
  auto page = page_ref(*page_svc, o.blocker);
  if (!page) return page.error();
  seen.page = *page;

  const json::object current = routed_parts(s_.mode, seen.object);
  const auto* meta = object_at(seen.object, "metadata");
  const auto* annotations = meta != nullptr ? object_at(*meta, "annotations") : nullptr;
  const auto* saved = annotations != nullptr ? annotations->if_contains(kOriginalAnnotation)
                                             : nullptr;
  const bool points = points_at_page(s_, current, *page);
  seen.original = current;
  std::string state;
  if (saved != nullptr) {
    boost::system::error_code ec;
    json::value original = saved->is_string() ? json::parse(saved->as_string(), ec) : json::value();
    if (ec || !original.is_object()) {
      o.blocker = "annotation " + std::string(kOriginalAnnotation) + " on " + o.object +
                  " is not the JSON object intermission wrote; fix or remove it by hand";
      o.switched = points;
      o.current = false;
      seen.damaged = true;
      state = "annotation damaged";
    } else if (json_contains(current, maintenance_parts(s_, original.as_object(), *page))) {
      o.switched = true;
      seen.original = std::move(original.as_object());
      state = "points at the page (original kept in an annotation)";
    } else if (points) {
      o.switched = true;
      o.current = false;
      seen.original = std::move(original.as_object());
      state = "points at the page, but not as wanted now (edited, or the config changed)";
    } else {
      o.stale_annotation = true;
      state = "points at the application; an annotation is left from an earlier switch (the "
              "object was re-applied during maintenance)";
    }
  } else if (points) {
    o.blocker = o.object + " already points at page Service " + o.page_service +
                " without intermission's annotation: there is no original to restore";
    state = "points at the page without annotation";
  } else {
    state = "points at the application";
  }

  auto page_ready = ready_endpoints(s_.page_service);
  if (!page_ready) return page_ready.error();
  o.page_ready = *page_ready;

  if (s_.mode == "service") {
    const auto* spec = object_at(seen.object, "spec");
    if (spec != nullptr && string_at(*spec, "type") == "ExternalName") {
      o.blocker = o.object + " is of type ExternalName: it has no selector to swap";
    } else if (const auto* sel = object_at(seen.original, "selector");
               sel == nullptr || sel->empty()) {
      if (o.blocker.empty()) {
        o.blocker = o.object + " has no selector (its endpoints are managed by hand): there is "
                               "nothing to swap";
      }
    }
    // The page pods must serve the ports the application Service targets.
    if (o.blocker.empty() && page->is_object() && !page->as_object().empty() &&
        !o.switched) {
      const auto* ports = spec != nullptr ? array_at(*spec, "ports") : nullptr;
      std::string blocker;
      auto n = ready_pods(page->as_object(), &blocker, ports);
      if (!n) return n.error();
      o.blocker = blocker;
    }
  } else if (s_.mode == "httproute" && !s_.bypass_secret.empty() && o.blocker.empty()) {
    const auto* rules = array_at(seen.original, "rules");
    if (rules != nullptr && 2 * rules->size() > kMaxRouteRules) {
      o.blocker = o.object + " has " + std::to_string(rules->size()) +
                  " rules; with a bypass rule for each it would have more than the " +
                  std::to_string(kMaxRouteRules) + " an HTTPRoute holds";
    }
  }

  std::string app;
  if (o.switched) {
    if (s_.mode == "service") {
      const auto* sel = object_at(seen.original, "selector");
      if (sel != nullptr && !sel->empty()) {
        auto n = ready_pods(*sel, nullptr, nullptr);
        if (!n) return n.error();
        o.app_ready = *n;
        app = std::to_string(*n) + " ready application pods (" + selector_text(*sel) + ")";
      }
    } else {
      // The Services the switch took users from: in the original, not in the maintenance
      // form (without bypass rules, which name them too).
      KubeSettings plain = s_;
      plain.bypass_secret.clear();
      const auto kept =
          backend_services(s_.mode, maintenance_parts(plain, seen.original, seen.page));
      for (const auto& svc : backend_services(s_.mode, seen.original)) {
        if (svc == s_.page_service || std::find(kept.begin(), kept.end(), svc) != kept.end()) {
          continue;
        }
        auto n = ready_endpoints(svc);
        if (!n) return n.error();
        o.app_ready = o.app_ready < 0 ? *n : std::min(o.app_ready, *n);
        app += (app.empty() ? "" : ", ") + std::string("Service ") + svc + ": " +
               std::to_string(*n) + " ready";
      }
    }
  }
  o.detail = o.object + " " + state + "; page Service " + o.page_service + ": " +
             std::to_string(o.page_ready) + " ready endpoint(s)" +
             (app.empty() ? "" : "; application: " + app) +
             (o.blocker.empty() ? "" : "; cannot switch on: " + o.blocker);
  return seen;
}

core::Result<core::Observation> KubeBackend::observe() {
  auto seen = look();
  if (!seen) return seen.error();
  return core::Observation{std::move(seen->o)};
}

core::Status KubeBackend::wait(bool page) {
  const auto deadline = std::chrono::steady_clock::now() + s_.health_timeout;
  std::string last;
  for (;;) {
    auto seen = look();
    if (!seen) return seen.error();
    const core::KubeObservation& o = seen->o;
    if (page && !o.blocker.empty()) {
      return core::Error::config(o.object + " is not pointed at the page: " + o.blocker);
    }
    if (page ? o.page_ready >= s_.min_ready : (o.app_ready < 0 || o.app_ready >= s_.min_ready)) {
      return {};
    }
    last = o.detail;
    if (std::chrono::steady_clock::now() + s_.poll_interval > deadline) break;
    sleep_(s_.poll_interval);
  }
  if (page) {
    return core::Error::timeout("the page Service " + s_.ns + "/" + s_.page_service +
                                " did not have " + std::to_string(s_.min_ready) +
                                " ready endpoint(s) within " +
                                core::format_duration(s_.health_timeout) + " (" + last +
                                "); the application keeps its users");
  }
  return core::Error::timeout("the application did not have " + std::to_string(s_.min_ready) +
                              " ready pod(s) within " + core::format_duration(s_.health_timeout) +
                              " (" + last + "); users still see the page rather than errors");
}

namespace {

json::object& annotations_of(json::object& object) {
  auto& meta = object["metadata"];
  if (!meta.is_object()) meta = json::object();
  auto& ann = meta.as_object()["annotations"];
  if (!ann.is_object()) ann = json::object();
  return ann.as_object();
}

void drop_annotation(json::object& object) {
  auto* meta = object.if_contains("metadata");
  if (meta == nullptr || !meta->is_object()) return;
  auto* ann = meta->as_object().if_contains("annotations");
  if (ann == nullptr || !ann->is_object()) return;
  ann->as_object().erase(kOriginalAnnotation);
  // The API server leaves out an empty map: so does an exact restore.
  if (ann->as_object().empty()) meta->as_object().erase("annotations");
}

void set_parts(json::object& object, const std::string& mode, const json::object& parts) {
  auto& spec = object["spec"];
  if (!spec.is_object()) spec = json::object();
  for (const auto& key : mode_keys(mode)) {
    if (const auto* v = parts.if_contains(key)) {
      spec.as_object()[key] = *v;
    } else {
      spec.as_object().erase(key);
    }
  }
}

}  // namespace

core::Result<KubeBackend::Seen> KubeBackend::look_ready(bool page) {
  auto seen = look();
  if (!seen) return seen.error();
  const auto ready = [&](const core::KubeObservation& o) {
    return page ? o.page_ready >= s_.min_ready : (o.app_ready < 0 || o.app_ready >= s_.min_ready);
  };
  if (ready(seen->o)) return seen;
  // The wait before this step was skipped (it looked ready when planned) or is a moment old:
  // make-before-break must hold when the object is written, so wait here too.
  if (auto st = wait(page); !st) return st.error();
  seen = look();
  if (!seen) return seen.error();
  if (!ready(seen->o)) {
    // Ready a moment ago, not now: plan again from what is there.
    return core::Error::conflict(std::string(page ? "the page" : "the application") +
                                 " was ready and is not now (" + seen->o.detail + ")");
  }
  return seen;
}

core::Status KubeBackend::point_at_page() {
  // From a fresh read: what is kept is what the object points at now, unless it already
  // points at the page (then the annotation has it).
  auto seen = look_ready(true);
  if (!seen) return seen.error();
  if (!seen->o.blocker.empty()) {
    return core::Error::config(seen->o.object + " is not pointed at the page: " + seen->o.blocker);
  }
  json::object object = std::move(seen->object);
  set_parts(object, s_.mode, maintenance_parts(s_, seen->original, seen->page));
  annotations_of(object)[kOriginalAnnotation] = json::serialize(seen->original);
  return put(object_path(), object);
}

core::Status KubeBackend::restore() {
  auto seen = look_ready(false);
  if (!seen) return seen.error();
  if (seen->damaged) {
    return core::Error::config(seen->o.object + " cannot be restored: " + seen->o.blocker);
  }
  json::object object = std::move(seen->object);
  if (seen->o.switched) set_parts(object, s_.mode, seen->original);
  drop_annotation(object);
  return put(object_path(), object);
}

core::Status KubeBackend::apply(const core::Step& step) {
  if (std::holds_alternative<core::WaitKubePageReady>(step)) return wait(true);
  if (std::holds_alternative<core::WaitKubeAppReady>(step)) return wait(false);
  if (std::holds_alternative<core::KubePointAtPage>(step)) return point_at_page();
  if (std::holds_alternative<core::KubeRestore>(step)) return restore();
  return core::Error::internal("kubernetes backend got a step it cannot apply: " +
                               core::describe(step));
}

}  // namespace intermission::adapters::kube
