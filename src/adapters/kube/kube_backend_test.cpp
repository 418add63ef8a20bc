#include "adapters/kube/kube_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <thread>

namespace intermission::adapters::kube {
namespace {
namespace json = boost::json;

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

// An API server in memory: objects by path, resourceVersion on every write, 409 to a write
// that carries a stale one, lists filtered by an equality labelSelector.
class MemoryApi final : public Api {
 public:
  std::map<std::string, json::object> objects;  // path -> object
  std::vector<std::string> log;                 // "PUT /api/v1/..."
  // Called before a PUT is judged: a concurrent writer can change the object here.
  std::function<void(const std::string& path)> before_put;
  int version = 100;

  void add(const std::string& path, json::object o) {
    o["metadata"].as_object()["resourceVersion"] = std::to_string(++version);
    objects[path] = std::move(o);
  }
  void touch(const std::string& path, const std::function<void(json::object&)>& change) {
    change(objects.at(path));
    objects.at(path)["metadata"].as_object()["resourceVersion"] = std::to_string(++version);
  }

  core::Result<Response> request(const std::string& method, const std::string& path,
                                 const std::string& body, const std::string&) override {
    log.push_back(method + " " + path);
    const auto q = path.find("?labelSelector=");
    if (method == "GET" && q != std::string::npos) return list(path.substr(0, q), path.substr(q + 15));
    if (method == "GET") {
      const auto it = objects.find(path);
      if (it == objects.end()) return Response{404, R"({"kind":"Status","message":"not found"})"};
      return Response{200, json::serialize(it->second)};
    }
    if (method == "PUT") {
      if (before_put) before_put(path);
      auto it = objects.find(path);
      if (it == objects.end()) return Response{404, "{}"};
      json::object o = json::parse(body).as_object();
      if (o["metadata"].as_object()["resourceVersion"] !=
          it->second["metadata"].as_object()["resourceVersion"]) {
        return Response{409, R"({"kind":"Status","reason":"Conflict","message":"the object has been modified"})"};
      }
      o["metadata"].as_object()["resourceVersion"] = std::to_string(++version);
      it->second = o;
      return Response{200, json::serialize(o)};
    }
    return Response{405, "{}"};
  }
  [[nodiscard]] std::string describe() const override { return "memory"; }

 private:
  static std::string decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }
  Response list(const std::string& prefix, const std::string& selector) {
    std::map<std::string, std::string> want;
    std::string sel = decode(selector);
    std::size_t start = 0;
    while (start < sel.size()) {
      auto end = sel.find(',', start);
      if (end == std::string::npos) end = sel.size();
      const std::string term = sel.substr(start, end - start);
      const auto eq = term.find('=');
      want[term.substr(0, eq)] = term.substr(eq + 1);
      start = end + 1;
    }
    json::array items;
    for (const auto& [path, o] : objects) {
      if (path.rfind(prefix + "/", 0) != 0) continue;
      const auto* labels = o.at("metadata").as_object().if_contains("labels");
      bool match = true;
      for (const auto& [k, v] : want) {
        const auto* l = labels != nullptr ? labels->as_object().if_contains(k) : nullptr;
        match = match && l != nullptr && l->as_string() == v;
      }
      if (match) items.push_back(o);
    }
    return Response{200, json::serialize(json::object{{"items", items}})};
  }
};

const std::string kNs = "/api/v1/namespaces/web";
const std::string kSlices = "/apis/discovery.k8s.io/v1/namespaces/web/endpointslices";
const std::string kApp = kNs + "/services/app";
const std::string kRoute = "/apis/gateway.networking.k8s.io/v1/namespaces/web/httproutes/shop";
const std::string kIngress = "/apis/networking.k8s.io/v1/namespaces/web/ingresses/shop";

json::object pod(const std::string& name, const std::string& app, bool ready,
                 const std::string& port_name, int port) {
  return obj(R"({"metadata":{"name":")" + name + R"(","labels":{"app":")" + app +
             R"("}},"spec":{"containers":[{"name":"c","ports":[{"name":")" + port_name +
             R"(","containerPort":)" + std::to_string(port) +
             R"(}]}]},"status":{"conditions":[{"type":"Ready","status":")" +
             (ready ? "True" : "False") + R"("}]}})");
}

json::object slice(const std::string& service, int ready, int not_ready) {
  json::array endpoints;
  for (int i = 0; i < ready + not_ready; ++i) {
    endpoints.push_back(json::object{
        {"addresses", json::array{"10.0.0." + std::to_string(i)}},
        {"conditions", json::object{{"ready", i < ready}}}});
  }
  return json::object{
      {"metadata", json::object{{"name", service + "-abc"},
                                {"labels", json::object{{"kubernetes.io/service-name", service}}}}},
      {"addressType", "IPv4"},
      {"endpoints", endpoints}};
}

// A namespace "web" with the application (Service app, 2 ready pods) and the page (Service
// page, its pods not ready yet).
MemoryApi* cluster(MemoryApi* api) {
  api->add(kApp, obj(R"({"metadata":{"name":"app","namespace":"web","labels":{"team":"x"}},
    "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","selector":{"app":"shop","tier":"web"},
    "ports":[{"name":"http","port":80,"targetPort":"http","protocol":"TCP"}]}})"));
  api->add(kNs + "/services/page", obj(R"({"metadata":{"name":"page","namespace":"web"},
    "spec":{"selector":{"app":"intermission-page"},
    "ports":[{"name":"http","port":8080,"targetPort":8080}]}})"));
  for (int i = 0; i < 2; ++i) {
    auto p = pod("shop-" + std::to_string(i), "shop", true, "http", 3000);
    p["metadata"].as_object()["labels"].as_object()["tier"] = "web";
    api->add(kNs + "/pods/shop-" + std::to_string(i), p);
    api->add(kNs + "/pods/page-" + std::to_string(i),
             pod("page-" + std::to_string(i), "intermission-page", false, "http", 8080));
  }
  api->add(kSlices + "/page-abc", slice("page", 0, 2));
  api->add(kSlices + "/shop-abc", slice("shop", 2, 0));
  return api;
}

KubeSettings service_settings() {
  KubeSettings s;
  s.environment = "prod";
  s.ns = "web";
  s.mode = "service";
  s.name = "app";
  s.page_service = "page";
  s.min_ready = 2;
  s.health_timeout = std::chrono::seconds(10);
  s.poll_interval = std::chrono::milliseconds(1);
  return s;
}

// Like Controller::converge_leased: observe, plan, apply the first step, until nothing is
// left; a step that lost a write race is planned again from a fresh observation.
core::Status converge(KubeBackend& b, bool on, std::vector<std::string>* done = nullptr,
                      int* conflicts = nullptr) {
  for (int i = 0; i < 20; ++i) {
    auto o = b.observe();
    if (!o) return o.error();
    auto steps = core::plan(on, *o, {});
    if (steps.empty()) return {};
    if (auto st = b.apply(steps.front()); !st) {
      if (st.error().code != core::ErrorCode::kConflict) return st;
      if (conflicts != nullptr) ++*conflicts;
      continue;
    }
    if (done != nullptr) done->push_back(core::describe(steps.front()));
  }
  return core::Error::internal("did not converge");
}

// The object but for what the API server owns.
json::object user_part(json::object o) {
  o["metadata"].as_object().erase("resourceVersion");
  return o;
}

TEST(KubeBackend, ServiceModeSwitchesOnlyOnceThePagePodsAreReadyAndRestoresExactly) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  int sleeps = 0;
  KubeBackend b(service_settings(), std::move(api), [&](std::chrono::milliseconds) {
    // The page pods become ready on the third poll; until then the Service is untouched.
    EXPECT_EQ(a->objects.at(kApp)["spec"].as_object()["selector"].as_object().size(), 2u);
    if (++sleeps == 3) a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 2, 0); });
  });
  const json::object before = user_part(a->objects.at(kApp));

  auto o = b.observe();
  ASSERT_TRUE(o);
  const auto& k = std::get<core::KubeObservation>(*o);
  EXPECT_FALSE(k.switched);
  EXPECT_EQ(k.page_ready, 0);
  EXPECT_EQ(k.blocker, "") << k.detail;

  std::vector<std::string> done;
  ASSERT_TRUE(converge(b, true, &done));
  EXPECT_EQ(done, (std::vector<std::string>{
                      "wait until 2 pods of the page Service web/page are ready",
                      "point Service web/app at the page (original kept in an annotation)"}));
  EXPECT_EQ(sleeps, 3);
  const json::object& on = a->objects.at(kApp);
  EXPECT_EQ(on.at("spec").at("selector"), obj(R"({"app":"intermission-page"})"));
  EXPECT_EQ(json::parse(on.at("metadata").at("annotations").at(kOriginalAnnotation).as_string()),
            obj(R"({"selector":{"app":"shop","tier":"web"}})"));
  EXPECT_EQ(on.at("spec").at("ports"), before.at("spec").at("ports")) << "only the selector";
  auto seen = b.observe();
  ASSERT_TRUE(seen);
  EXPECT_TRUE(core::observed_on(*seen));
  EXPECT_NE(core::observed_detail(*seen).find("2 ready application pods"), std::string::npos)
      << core::observed_detail(*seen);

  done.clear();
  ASSERT_TRUE(converge(b, false, &done));
  EXPECT_EQ(done, std::vector<std::string>{"restore Service web/app exactly as it was"});
  EXPECT_EQ(user_part(a->objects.at(kApp)), before);
}

TEST(KubeBackend, ServiceModeGoesBackOnlyOnceTheApplicationPodsAreReady) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 2, 0); });
  int sleeps = 0;
  KubeBackend b(service_settings(), std::move(api), [&](std::chrono::milliseconds) {
    EXPECT_EQ(a->objects.at(kApp)["spec"].as_object()["selector"],
              obj(R"({"app":"intermission-page"})"));
    if (++sleeps == 2) {
      a->touch(kNs + "/pods/shop-0", [](json::object& p) {
        p["status"] = obj(R"({"conditions":[{"type":"Ready","status":"True"}]})");
      });
    }
  });
  ASSERT_TRUE(converge(b, true));
  // The deployment replaces the application's pods: one of two is ready, the other is
  // terminating (it would be counted Ready, but serves no new request).
  a->touch(kNs + "/pods/shop-0", [](json::object& p) {
    p["status"] = obj(R"({"conditions":[{"type":"Ready","status":"False"}]})");
  });
  a->touch(kNs + "/pods/shop-1", [](json::object& p) {
    p["metadata"].as_object()["deletionTimestamp"] = "2026-12-02T06:00:00Z";
  });
  a->add(kNs + "/pods/shop-2", [] {
    auto p = pod("shop-2", "shop", true, "http", 3000);
    p["metadata"].as_object()["labels"].as_object()["tier"] = "web";
    return p;
  }());
  std::vector<std::string> done;
  ASSERT_TRUE(converge(b, false, &done));
  EXPECT_EQ(done, (std::vector<std::string>{
                      "wait until 2 application pods behind Service web/app are ready",
                      "restore Service web/app exactly as it was"}));
  EXPECT_EQ(sleeps, 2);
}

TEST(KubeBackend, TheWriteItselfChecksReadinessNotOnlyTheWaitBeforeIt) {
  // The plan skipped the wait (the page looked ready when observed); by the time the write
  // comes, the page pods are not ready: the write waits for them, and never points the
  // Service at a page that cannot serve; the same on the way back for the application.
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  int sleeps = 0;
  bool app_back = false;
  KubeBackend b(service_settings(), std::move(api), [&](std::chrono::milliseconds) {
    ++sleeps;
    if (sleeps == 2)
      a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 2, 0); });
    if (app_back && sleeps == 5) {
      a->touch(kNs + "/pods/shop-0", [](json::object& p) {
        p["status"] = obj(R"({"conditions":[{"type":"Ready","status":"True"}]})");
      });
    }
  });
  const auto puts = [&] {
    return std::count_if(a->log.begin(), a->log.end(),
                         [](const std::string& l) { return l.rfind("PUT ", 0) == 0; });
  };
  a->before_put = [&](const std::string&) { EXPECT_GE(sleeps, 2) << "written before ready"; };
  ASSERT_TRUE(b.apply(core::KubePointAtPage{"Service web/app"}));
  EXPECT_EQ(sleeps, 2);
  EXPECT_EQ(puts(), 1);

  a->touch(kNs + "/pods/shop-0", [](json::object& p) {
    p["status"] = obj(R"({"conditions":[{"type":"Ready","status":"False"}]})");
  });
  app_back = true;
  a->before_put = [&](const std::string&) { EXPECT_GE(sleeps, 5) << "restored before ready"; };
  ASSERT_TRUE(b.apply(core::KubeRestore{"Service web/app"}));
  EXPECT_EQ(sleeps, 5);
  EXPECT_EQ(puts(), 2);
}

TEST(KubeBackend, AWriteWhoseTargetNeverBecomesReadyIsNotMade) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  KubeSettings s = service_settings();
  s.health_timeout = std::chrono::milliseconds(20);
  KubeBackend b(s, std::move(api), [](std::chrono::milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  const auto st = b.apply(core::KubePointAtPage{"Service web/app"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, core::ErrorCode::kTimeout) << st.error().message;
  for (const auto& l : a->log) EXPECT_NE(l.rfind("PUT ", 0), 0u) << l;
}

TEST(KubeBackend, ServiceModeRefusesPagePodsThatDoNotServeTheTargetPort) {
  // The application Service targets the port named "http"; the page pods name theirs "web".
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 2, 0); });
  for (const char* name : {"page-0", "page-1"}) {
    a->touch(kNs + "/pods/" + name, [&](json::object& p) { p = pod(name, "intermission-page", true, "web", 8080); });
  }
  KubeBackend b(service_settings(), std::move(api), [](std::chrono::milliseconds) {});
  auto o = b.observe();
  ASSERT_TRUE(o);
  const auto& k = std::get<core::KubeObservation>(*o);
  EXPECT_NE(k.blocker.find("declares no container port \"http\""), std::string::npos) << k.blocker;
  const auto st = converge(b, true);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, core::ErrorCode::kConfig);
  for (const auto& line : a->log) EXPECT_EQ(line.rfind("PUT", 0), std::string::npos) << line;

  // A numeric targetPort is matched against the declared container port numbers.
  a->touch(kApp, [](json::object& s) {
    s["spec"].as_object()["ports"] = obj(R"({"p":[{"port":80,"targetPort":8080}]})")["p"];
  });
  auto again = b.observe();
  ASSERT_TRUE(again);
  EXPECT_EQ(std::get<core::KubeObservation>(*again).blocker, "");
}

TEST(KubeBackend, AWriteThatLostARaceIsAConflictAndNeverOverwrites) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 2, 0); });
  // Someone else writes the Service between our read and our write, three times.
  int races = 3;
  a->before_put = [&](const std::string& path) {
    if (races-- > 0) {
      a->touch(path, [&](json::object& s) {
        s["metadata"].as_object()["labels"].as_object()["edited"] = std::to_string(races);
      });
    }
  };
  KubeBackend b(service_settings(), std::move(api), [](std::chrono::milliseconds) {});
  auto o = b.observe();
  ASSERT_TRUE(o);
  const auto st = b.apply(core::KubePointAtPage{"Service web/app"});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, core::ErrorCode::kConflict) << st.error().message;
  EXPECT_EQ(a->objects.at(kApp).at("spec").at("selector"), obj(R"({"app":"shop","tier":"web"})"))
      << "the lost write changed nothing";
  int conflicts = 0;
  ASSERT_TRUE(converge(b, true, nullptr, &conflicts));
  EXPECT_EQ(conflicts, 2);
  const json::object& s = a->objects.at(kApp);
  EXPECT_EQ(s.at("metadata").at("labels").at("edited"), "0") << "their last write is kept";
  EXPECT_EQ(s.at("spec").at("selector"), obj(R"({"app":"intermission-page"})"));
}

TEST(KubeBackend, AServiceReAppliedDuringMaintenanceIsSeenAndSwitchedAgain) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 2, 0); });
  KubeBackend b(service_settings(), std::move(api), [](std::chrono::milliseconds) {});
  const json::object before = user_part(a->objects.at(kApp));
  ASSERT_TRUE(converge(b, true));
  // Argo CD self-heal applies the manifest: the selector is the application's again (a new
  // one), our annotation is left (client-side apply keeps fields it did not set).
  a->touch(kApp, [](json::object& s) {
    s["spec"].as_object()["selector"] = obj(R"({"app":"shop","tier":"web","v":"2"})");
  });
  auto o = b.observe();
  ASSERT_TRUE(o);
  EXPECT_FALSE(core::observed_on(*o));
  EXPECT_TRUE(std::get<core::KubeObservation>(*o).stale_annotation);
  ASSERT_TRUE(converge(b, true));
  const json::object& on = a->objects.at(kApp);
  EXPECT_EQ(on.at("spec").at("selector"), obj(R"({"app":"intermission-page"})"));
  EXPECT_EQ(json::parse(on.at("metadata").at("annotations").at(kOriginalAnnotation).as_string()),
            obj(R"({"selector":{"app":"shop","tier":"web","v":"2"}})"))
      << "what the tool applied is what comes back";
  a->touch(kNs + "/pods/shop-0", [](json::object& p) {
    p["metadata"].as_object()["labels"].as_object()["v"] = "2";
  });
  a->touch(kNs + "/pods/shop-1", [](json::object& p) {
    p["metadata"].as_object()["labels"].as_object()["v"] = "2";
  });
  ASSERT_TRUE(converge(b, false));
  json::object want = before;
  want["spec"].as_object()["selector"] = obj(R"({"app":"shop","tier":"web","v":"2"})");
  EXPECT_EQ(user_part(a->objects.at(kApp)), want);
}

json::object route() {
  return obj(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute",
    "metadata":{"name":"shop","namespace":"web","annotations":{"owner":"team-x"}},
    "spec":{"parentRefs":[{"name":"gw","sectionName":"https"}],"hostnames":["shop.example"],
     "rules":[
      {"matches":[{"path":{"type":"PathPrefix","value":"/api"}}],
       "backendRefs":[{"group":"","kind":"Service","name":"api","port":80,"weight":90},
                      {"group":"","kind":"Service","name":"api-canary","port":80,"weight":10}]},
      {"matches":[{"path":{"type":"PathPrefix","value":"/old"}}],
       "filters":[{"type":"RequestRedirect","requestRedirect":{"statusCode":301}}]},
      {"backendRefs":[{"name":"app","port":80}]}]},
    "status":{"parents":[]}})");
}

KubeSettings route_settings() {
  KubeSettings s = service_settings();
  s.mode = "httproute";
  s.name = "shop";
  s.min_ready = 1;
  return s;
}

TEST(KubeBackend, HttpRouteBackendRefsGoToThePageWithBypassRulesAboveAndComeBackExactly) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 1, 1); });
  a->add(kSlices + "/api-abc", slice("api", 1, 0));
  a->add(kSlices + "/api-canary-abc", slice("api-canary", 1, 0));
  a->add(kSlices + "/app-abc", slice("app", 1, 0));
  a->add(kRoute, route());
  KubeSettings s = route_settings();
  s.bypass_secret = "s3cret";
  KubeBackend b(s, std::move(api), [](std::chrono::milliseconds) {});
  const json::object before = user_part(a->objects.at(kRoute));
  ASSERT_TRUE(converge(b, true));
  const json::object& on = a->objects.at(kRoute);
  EXPECT_EQ(on.at("spec").at("parentRefs"), before.at("spec").at("parentRefs"));
  EXPECT_EQ(on.at("spec").at("hostnames"), before.at("spec").at("hostnames"));
  EXPECT_EQ(on.at("metadata").at("annotations").at("owner"), "team-x");
  const auto& rules = on.at("spec").at("rules").as_array();
  ASSERT_EQ(rules.size(), 5u) << json::serialize(rules);
  // Bypass first: the forwarding rules with the secret header added to their matches.
  EXPECT_EQ(rules[0].at("backendRefs"), before.at("spec").at("rules").at(0).at("backendRefs"));
  EXPECT_EQ(rules[0].at("matches"), json::parse(R"([{"path":{"type":"PathPrefix","value":"/api"},
    "headers":[{"type":"Exact","name":"X-Intermission-Bypass","value":"s3cret"}]}])"));
  EXPECT_EQ(rules[1].at("matches"), json::parse(R"([{"path":{"type":"PathPrefix","value":"/"},
    "headers":[{"type":"Exact","name":"X-Intermission-Bypass","value":"s3cret"}]}])"));
  // Then the maintenance rules: every forwarding rule to the page; the redirect untouched.
  const json::value page_ref = obj(R"({"group":"","kind":"Service","name":"page","port":8080,"weight":1})");
  EXPECT_EQ(rules[2].at("backendRefs"), json::array{page_ref});
  EXPECT_EQ(rules[2].at("matches"), before.at("spec").at("rules").at(0).at("matches"));
  EXPECT_EQ(rules[3], before.at("spec").at("rules").at(1));
  EXPECT_EQ(rules[4].at("backendRefs"), json::array{page_ref});
  auto seen = b.observe();
  ASSERT_TRUE(seen);
  EXPECT_TRUE(core::observed_on(*seen));
  EXPECT_TRUE(core::plan(true, *seen, {}).empty()) << core::observed_detail(*seen);

  // A changed secret rewrites the maintenance form; it still counts as on.
  s.bypass_secret = "other";
  auto api2 = std::make_unique<MemoryApi>(*a);
  MemoryApi* a2 = api2.get();
  KubeBackend b2(s, std::move(api2), [](std::chrono::milliseconds) {});
  auto o2 = b2.observe();
  ASSERT_TRUE(o2);
  EXPECT_TRUE(core::observed_on(*o2));
  EXPECT_FALSE(std::get<core::KubeObservation>(*o2).current);
  ASSERT_TRUE(converge(b2, true));
  EXPECT_EQ(a2->objects.at(kRoute).at("spec").at("rules").at(0).at("matches").at(0).at("headers").at(0).at("value"), "other");
  ASSERT_TRUE(converge(b2, false));
  EXPECT_EQ(user_part(a2->objects.at(kRoute)), before);

  ASSERT_TRUE(converge(b, false));
  EXPECT_EQ(user_part(a->objects.at(kRoute)), before);
}

TEST(KubeBackend, HttpRouteGoesBackOnlyOnceItsBackendsHaveReadyEndpoints) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 1, 0); });
  a->add(kSlices + "/api-abc", slice("api", 1, 0));
  a->add(kSlices + "/api-canary-abc", slice("api-canary", 0, 1));
  a->add(kSlices + "/app-abc", slice("app", 1, 0));
  a->add(kRoute, route());
  int sleeps = 0;
  KubeBackend b(route_settings(), std::move(api), [&](std::chrono::milliseconds) {
    if (++sleeps == 2) a->touch(kSlices + "/api-canary-abc", [](json::object& o) { o = slice("api-canary", 1, 0); });
  });
  ASSERT_TRUE(converge(b, true));
  std::vector<std::string> done;
  ASSERT_TRUE(converge(b, false, &done));
  EXPECT_EQ(done.size(), 2u);
  EXPECT_EQ(sleeps, 2);
}

TEST(KubeBackend, IngressNamedPathsGoToThePageAndComeBackExactly) {
  auto api = std::make_unique<MemoryApi>();
  MemoryApi* a = cluster(api.get());
  a->touch(kSlices + "/page-abc", [](json::object& o) { o = slice("page", 1, 0); });
  a->add(kSlices + "/app-abc", slice("app", 1, 0));
  a->add(kIngress, obj(R"({"metadata":{"name":"shop","namespace":"web"},
    "spec":{"ingressClassName":"nginx","tls":[{"hosts":["shop.example"],"secretName":"tls"}],
     "rules":[{"host":"shop.example","http":{"paths":[
       {"path":"/","pathType":"Prefix","backend":{"service":{"name":"app","port":{"name":"http"}}}},
       {"path":"/static","pathType":"Prefix","backend":{"service":{"name":"cdn","port":{"number":80}}}}]}}]}})"));
  KubeSettings s = route_settings();
  s.mode = "ingress";
  s.paths = {"/"};
  KubeBackend b(s, std::move(api), [](std::chrono::milliseconds) {});
  const json::object before = user_part(a->objects.at(kIngress));
  ASSERT_TRUE(converge(b, true));
  const auto& paths = a->objects.at(kIngress).at("spec").at("rules").at(0).at("http").at("paths");
  EXPECT_EQ(paths.at(0).at("backend"), obj(R"({"service":{"name":"page","port":{"number":8080}}})"));
  EXPECT_EQ(paths.at(1), before.at("spec").at("rules").at(0).at("http").at("paths").at(1))
      << "a path not named is untouched";
  EXPECT_EQ(a->objects.at(kIngress).at("spec").at("tls"), before.at("spec").at("tls"));
  auto o = b.observe();
  ASSERT_TRUE(o);
  EXPECT_TRUE(core::observed_on(*o));
  EXPECT_EQ(std::get<core::KubeObservation>(*o).app_ready, 1)
      << "only the switched paths' Services are waited for (cdn has no endpoints here)";
  ASSERT_TRUE(converge(b, false));
  EXPECT_EQ(user_part(a->objects.at(kIngress)), before);
}

TEST(KubeBackend, APermissionErrorNamesTheVerbAndResource) {
  class Forbidden final : public Api {
   public:
    core::Result<Response> request(const std::string&, const std::string&, const std::string&,
                                   const std::string&) override {
      return Response{403, R"({"kind":"Status","message":"services \"app\" is forbidden"})"};
    }
    [[nodiscard]] std::string describe() const override { return "forbidden"; }
  };
  KubeBackend b(service_settings(), std::make_unique<Forbidden>(), nullptr);
  auto o = b.observe();
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().code, core::ErrorCode::kPermission);
  EXPECT_NE(o.error().message.find("needs verb 'get' on resource 'services' in API group \"\" (core) in namespace web"),
            std::string::npos)
      << o.error().message;
}

TEST(KubeCodec, ContainsIgnoresWhatTheServerAdds) {
  EXPECT_TRUE(json_contains(obj(R"({"a":[{"b":1,"c":2}],"d":3})"), obj(R"({"a":[{"b":1}]})")));
  EXPECT_FALSE(json_contains(obj(R"({"a":[{"b":1},{"b":2}]})"), obj(R"({"a":[{"b":1}]})")));
  EXPECT_FALSE(json_contains(obj(R"({"a":[{"b":2}]})"), obj(R"({"a":[{"b":1}]})")));
}

}  // namespace
}  // namespace intermission::adapters::kube
