#include "adapters/store/kube_store.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>
#include <set>

#include "adapters/kube/client.h"
#include "testing/fakes.h"
#include "testing/kube_memory_api.h"

namespace intermission::adapters {
namespace {

namespace json = boost::json;

const std::regex kDns1123(R"([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)");

TEST(KubeObjectName, IsDnsSafeDeterministicAndTellsNamesApart) {
  const std::vector<std::string> names{"prod", "Prod", "shop/eu-west-1", "ÜBER prod!", "", "-",
                                       std::string(300, 'x'), "a..b", "café"};
  for (const std::string& env : names) {
    const std::string n = kube_object_name(env);
    EXPECT_TRUE(std::regex_match(n, kDns1123)) << env << " -> " << n;
    EXPECT_LE(n.size(), 63u);
    EXPECT_EQ(n, kube_object_name(env));
  }
  EXPECT_NE(kube_object_name("prod"), kube_object_name("Prod"));
  EXPECT_NE(kube_object_name("a/b"), kube_object_name("a-b"));
  EXPECT_EQ(kube_object_name("shop/EU"), "intermission-shop-eu-" +
                                             kube_object_name("shop/EU").substr(21));
}

TEST(KubeMicroTime, HasMicroseconds) {
  EXPECT_EQ(kube_micro_time(core::from_epoch_ms(1'700'000'000'123)),
            "2023-11-14T22:13:20.123000Z");
}

class KubeStoreTest : public ::testing::Test {
 protected:
  KubeStoreTest() : store_(cluster_.api(), "ops", log_) {}
  std::string cm_path(const std::string& env) {
    return "/api/v1/namespaces/ops/configmaps/" + kube_object_name(env);
  }
  std::string lease_path(const std::string& env) {
    return "/apis/coordination.k8s.io/v1/namespaces/ops/leases/" + kube_object_name(env);
  }
  testing::KubeMemoryCluster cluster_;
  testing::RecordingLogger log_;
  KubeStore store_;
};

TEST_F(KubeStoreTest, TheStateIsAConfigMapLabelledAndAnnotated) {
  core::EnvState s = *store_.load("Shop/Prod");
  ASSERT_TRUE(store_.compare_and_set(s, 0, {{core::from_epoch_ms(1), "Shop/Prod", "k", "m", "w", "d"}}).ok());
  const auto cm = cluster_.object(cm_path("Shop/Prod"));
  ASSERT_TRUE(cm.has_value());
  const auto& meta = cm->at("metadata").as_object();
  EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/managed-by"), "intermission");
  EXPECT_EQ(meta.at("labels").at("app.kubernetes.io/component"), "ledger");
  EXPECT_EQ(meta.at("annotations").at("intermission/environment"), "Shop/Prod");
  EXPECT_EQ(cm->at("data").at("version"), "1");
  EXPECT_TRUE(json::parse(cm->at("data").at("state").as_string()).is_object());
  EXPECT_EQ(json::parse(cm->at("data").at("audit").as_string()).as_array().size(), 1u);
}

TEST_F(KubeStoreTest, AWriteThatLosesTheResourceVersionRaceIsAConflict) {
  ASSERT_TRUE(store_.compare_and_set(*store_.load("prod"), 0, {}).ok());
  const auto s = *store_.load("prod");
  // Another process writes between our read and our write: the API server answers 409.
  cluster_.set_interceptor([&](const std::string& method, const std::string&) {
    if (method != "PUT") return std::optional<kube::Response>();
    cluster_.set_interceptor(nullptr);
    return std::optional<kube::Response>(kube::Response{
        409, R"({"kind":"Status","reason":"Conflict","message":"the object has been modified"})"});
  });
  auto r = store_.compare_and_set(s, 1, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, core::ErrorCode::kConflict);
  EXPECT_EQ(store_.load("prod")->version, 1);
}

TEST_F(KubeStoreTest, TheAuditIsBoundedByCountAndTheObjectBySize) {
  std::vector<core::AuditEntry> many;
  for (std::size_t i = 0; i < kMaxKubeAuditEntries + 20; ++i) {
    many.push_back({core::from_epoch_ms(static_cast<std::int64_t>(i)), "prod", "k",
                    "m" + std::to_string(i), "", ""});
  }
  ASSERT_TRUE(store_.compare_and_set(*store_.load("prod"), 0, many).ok());
  auto all = store_.audit("prod", 100000);
  ASSERT_EQ(all->size(), kMaxKubeAuditEntries);
  EXPECT_EQ(all->back().message, "m" + std::to_string(kMaxKubeAuditEntries + 19));
  // Large entries: the oldest give way so the ConfigMap stays under 1 MiB.
  const auto big = [](int n) {
    std::vector<core::AuditEntry> out;
    for (int i = 0; i < n; ++i) {
      out.push_back({core::from_epoch_ms(i), "prod", "k", std::string(40 * 1024, 'x'), "", ""});
    }
    return out;
  };
  ASSERT_TRUE(store_.compare_and_set(*store_.load("prod"), 1, big(20)).ok());
  auto v = store_.compare_and_set(*store_.load("prod"), 2, big(10));
  ASSERT_TRUE(v.ok()) << v.error().message;
  const auto cm = cluster_.object(cm_path("prod"));
  std::size_t size = 0;
  for (const auto& [k, val] : cm->at("data").as_object()) size += k.size() + val.as_string().size();
  EXPECT_LE(size, kKubeConfigMapBudget);
  const auto kept = store_.audit("prod", 100000);
  EXPECT_LT(kept->size(), 30u);
  EXPECT_GE(kept->size(), 10u) << "this write's own lines are kept";
  // One entry that cannot fit on its own: refused, saying why (never written without it).
  auto e = store_.compare_and_set(*store_.load("prod"), 3,
                                  {{core::from_epoch_ms(1), "prod", "k",
                                    std::string(1100 * 1024, 'y'), "", ""}});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, core::ErrorCode::kInvalidInput);
  EXPECT_NE(e.error().message.find("1 MiB"), std::string::npos) << e.error().message;
}

TEST_F(KubeStoreTest, AConfigMapOfAnotherEnvironmentIsNotTakenOver) {
  ASSERT_TRUE(store_.compare_and_set(*store_.load("prod"), 0, {}).ok());
  auto cm = *cluster_.object(cm_path("prod"));
  cm["metadata"].as_object()["annotations"].as_object()["intermission/environment"] = "other";
  cluster_.handle("PUT", cm_path("prod"), json::serialize(cm));
  auto s = store_.load("prod");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("holds environment 'other'"), std::string::npos);
}

TEST_F(KubeStoreTest, TheLeaseIsKeptAsLeaderElectionKeepsIt) {
  const core::Time t0 = core::from_epoch_ms(1'700'000'000'000);
  const auto s = std::chrono::seconds(1);
  ASSERT_EQ(store_.acquire_lease("prod", "a", t0, t0 + 15 * s)->holder, "a");
  auto l = *cluster_.object(lease_path("prod"));
  EXPECT_EQ(l.at("apiVersion"), "coordination.k8s.io/v1");
  auto spec = l.at("spec").as_object();
  EXPECT_EQ(spec.at("holderIdentity"), "a");
  EXPECT_EQ(spec.at("leaseDurationSeconds"), 15);
  EXPECT_EQ(spec.at("acquireTime"), "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(spec.at("renewTime"), "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(spec.at("leaseTransitions"), 0);
  // Renewed by its holder: renewTime moves, acquireTime and transitions stay.
  ASSERT_EQ(store_.acquire_lease("prod", "a", t0 + 5 * s, t0 + 20 * s)->holder, "a");
  spec = cluster_.object(lease_path("prod"))->at("spec").as_object();
  EXPECT_EQ(spec.at("renewTime"), "2023-11-14T22:13:25.000000Z");
  EXPECT_EQ(spec.at("acquireTime"), "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(spec.at("leaseTransitions"), 0);
  // Run out and taken by b: a transition.
  ASSERT_EQ(store_.acquire_lease("prod", "b", t0 + 21 * s, t0 + 30 * s)->holder, "b");
  spec = cluster_.object(lease_path("prod"))->at("spec").as_object();
  EXPECT_EQ(spec.at("leaseTransitions"), 1);
  EXPECT_EQ(spec.at("acquireTime"), "2023-11-14T22:13:41.000000Z");
  ASSERT_TRUE(store_.release_lease("prod", "b").ok());
  spec = cluster_.object(lease_path("prod"))->at("spec").as_object();
  EXPECT_FALSE(spec.contains("holderIdentity"));
  EXPECT_EQ(spec.at("leaseTransitions"), 1) << "history kept";
}

TEST_F(KubeStoreTest, A403SaysWhichRbacVerbIsMissing) {
  cluster_.set_interceptor([](const std::string& method, const std::string&) {
    if (method != "POST") return std::optional<kube::Response>();
    return std::optional<kube::Response>(kube::Response{
        403, R"({"kind":"Status","reason":"Forbidden","message":"leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:ops:intermission\" cannot create resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"ops\""})"});
  });
  const core::Time t0 = core::from_epoch_ms(1'700'000'000'000);
  auto r = store_.acquire_lease("prod", "a", t0, t0 + std::chrono::minutes(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, core::ErrorCode::kPermission);
  EXPECT_NE(r.error().message.find("needs verb 'create' on resource 'leases'"), std::string::npos)
      << r.error().message;
}

// The RBAC rules in the docs list exactly these: a call outside them would be refused in a
// cluster set up from the docs.
TEST_F(KubeStoreTest, EveryCallIsOneTheDocumentedRbacRulesAllow) {
  const core::Time t0 = core::from_epoch_ms(1'700'000'000'000);
  const auto min = std::chrono::minutes(1);
  auto s = *store_.load("prod");
  ASSERT_TRUE(store_.compare_and_set(s, 0, {}).ok());
  ASSERT_TRUE(store_.compare_and_set(*store_.load("prod"), 1, {}).ok());
  ASSERT_TRUE(store_.audit("prod", 5).ok());
  ASSERT_TRUE(store_.environments().ok());
  ASSERT_TRUE(store_.acquire_lease("prod", "a", t0, t0 + min).ok());
  ASSERT_TRUE(store_.acquire_lease("prod", "a", t0, t0 + 2 * min).ok());
  ASSERT_TRUE(store_.lease("prod").ok());
  ASSERT_TRUE(store_.release_lease("prod", "a").ok());
  const std::set<std::string> allowed{
      "get configmaps ",           "list configmaps ",           "create configmaps ",
      "update configmaps ",        "get leases coordination.k8s.io",
      "create leases coordination.k8s.io", "update leases coordination.k8s.io"};
  std::set<std::string> used;
  for (const auto& c : cluster_.calls()) {
    const auto need = kube::rbac_need(c.method, c.path);
    EXPECT_EQ(need.namespace_name, "ops");
    used.insert(need.verb + " " + need.resource + " " + need.group);
  }
  EXPECT_EQ(used, allowed);
}

}  // namespace
}  // namespace intermission::adapters
