#include "adapters/store/kube_store.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cstdio>

#include "adapters/kube/client.h"
#include "core/state_codec.h"

namespace intermission::adapters {
namespace {

namespace json = boost::json;

constexpr const char* kManagedBy = "app.kubernetes.io/managed-by";
constexpr const char* kComponent = "app.kubernetes.io/component";
constexpr const char* kEnvironmentAnnotation = "intermission/environment";
constexpr const char* kLedgerSelector =
    "app.kubernetes.io%2Fmanaged-by%3Dintermission%2Capp.kubernetes.io%2Fcomponent%3Dledger";
constexpr int kLeaseAttempts = 5;

std::string percent_encode(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

const json::object* child(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

std::string text(const json::object* o, const char* key) {
  if (o == nullptr) return {};
  const auto* v = o->if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t integer(const json::object* o, const char* key) {
  if (o == nullptr) return 0;
  const auto* v = o->if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return 0;
}

json::object metadata(const std::string& name, const std::string& ns,
                      const std::string& environment, const char* component) {
  return {{"name", name},
          {"namespace", ns},
          {"labels", json::object{{kManagedBy, "intermission"}, {kComponent, component}}},
          {"annotations", json::object{{kEnvironmentAnnotation, environment}}}};
}

json::value audit_json(const core::AuditEntry& a) {
  return json::object{{"time_ms", core::to_epoch_ms(a.time)},
                      {"kind", a.kind},
                      {"message", a.message},
                      {"who", a.who},
                      {"deployment_id", a.deployment_id}};
}

core::AuditEntry audit_entry(const json::object& o, const std::string& environment) {
  return {core::from_epoch_ms(integer(&o, "time_ms")), environment, text(&o, "kind"),
          text(&o, "message"), text(&o, "who"), text(&o, "deployment_id")};
}

// What Kubernetes counts against a ConfigMap's 1 MiB: its data keys and values.
std::size_t data_size(const json::object& data) {
  std::size_t n = 0;
  for (const auto& [k, v] : data) n += k.size() + (v.is_string() ? v.get_string().size() : 0);
  return n;
}

}  // namespace

std::string kube_object_name(const std::string& environment) {
  std::uint32_t hash = 2166136261u;  // FNV-1a
  for (const char ch : environment) {
    hash ^= static_cast<unsigned char>(ch);
    hash *= 16777619u;
  }
  std::string slug;
  for (const char ch : environment) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    if (ok) {
      slug.push_back(lower);
    } else if (!slug.empty() && slug.back() != '-') {
      slug.push_back('-');
    }
    if (slug.size() >= 40) break;
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", hash);
  return "intermission-" + (slug.empty() ? "" : slug + "-") + hex;
}

std::string kube_micro_time(core::Time t) {
  std::string s = core::format_iso8601(t);  // "...:46.039Z"
  s.insert(s.size() - 1, "000");
  return s;
}

struct KubeStore::Stored {
  json::object object;
  std::int64_t version = 0;
  std::string state;
  json::array audit;
};

struct KubeStore::StoredLease {
  json::object object;
  std::string holder;
  core::Time until;
  std::int64_t transitions = 0;
};

KubeStore::KubeStore(std::unique_ptr<kube::Api> api, std::string namespace_name,
                     core::Logger& log)
    : api_(std::move(api)), namespace_(std::move(namespace_name)), log_(log) {}

std::string KubeStore::configmap_path(const std::string& environment) const {
  return "/api/v1/namespaces/" + namespace_ + "/configmaps/" + kube_object_name(environment);
}

std::string KubeStore::lease_path(const std::string& environment) const {
  return "/apis/coordination.k8s.io/v1/namespaces/" + namespace_ + "/leases/" +
         kube_object_name(environment);
}

core::Error KubeStore::refused(const kube::Response& r, const std::string& method,
                               const std::string& path) const {
  return kube::status_error(r, method, path, api_->describe()).with_context("kubernetes store");
}

core::Result<kube::Response> KubeStore::call(const std::string& method, const std::string& path,
                                             const std::string& body) {
  const std::lock_guard<std::mutex> hold(mutex_);
  auto r = api_->request(method, path, body, kube::kJson);
  if (!r) return r.error().with_context("kubernetes store (" + api_->describe() + ")");
  return r;
}

core::Result<std::optional<KubeStore::Stored>> KubeStore::get_configmap(
    const std::string& environment) {
  const std::string path = configmap_path(environment);
  auto r = call("GET", path);
  if (!r) return r.error();
  if (r->status == 404) return std::optional<Stored>();
  if (r->status != 200) return refused(*r, "GET", path);
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object()) return core::Error::invalid_input(path + ": not a JSON object");
  Stored s;
  s.object = std::move(v.get_object());
  const auto* meta = child(s.object, "metadata");
  const std::string owner = text(meta != nullptr ? child(*meta, "annotations") : nullptr,
                                 kEnvironmentAnnotation);
  if (owner != environment) {
    return core::Error::config(path + " holds environment '" + owner + "', not '" + environment +
                               "' (a ConfigMap of that name was made by someone else: rename "
                               "or remove it)");
  }
  const auto* data = child(s.object, "data");
  const std::string version = text(data, "version");
  try {
    s.version = std::stoll(version);
  } catch (const std::exception&) {
    return core::Error::invalid_input(path + ": data.version '" + version + "' is not a number");
  }
  s.state = text(data, "state");
  if (const std::string audit = text(data, "audit"); !audit.empty()) {
    json::value a = json::parse(audit, ec);
    if (ec || !a.is_array()) return core::Error::invalid_input(path + ": data.audit is not a list");
    s.audit = std::move(a.get_array());
  }
  return std::optional<Stored>(std::move(s));
}

core::Result<core::EnvState> KubeStore::load(const std::string& environment) {
  auto s = get_configmap(environment);
  if (!s) return s.error();
  if (!*s) {
    core::EnvState fresh;
    fresh.environment = environment;
    return fresh;
  }
  return core::decode_state((*s)->state, environment, (*s)->version);
}

core::Result<std::int64_t> KubeStore::compare_and_set(
    const core::EnvState& state, std::int64_t expected_version,
    const std::vector<core::AuditEntry>& audit) {
  const std::string& env = state.environment;
  const std::string encoded = core::encode_state(state);
  if (auto st = core::check_state_size(state, encoded); !st) return st.error();
  const std::int64_t next = expected_version + 1;
  json::object object;
  json::array trail;
  if (expected_version == 0) {
    object = {{"apiVersion", "v1"},
              {"kind", "ConfigMap"},
              {"metadata", metadata(kube_object_name(env), namespace_, env, "ledger")}};
  } else {
    auto s = get_configmap(env);
    if (!s) return s.error();
    if (!*s || (*s)->version != expected_version) {
      return core::Error::conflict(env + " changed since version " +
                                   std::to_string(expected_version));
    }
    object = std::move((*s)->object);  // keeps metadata.resourceVersion: the CAS
    trail = std::move((*s)->audit);
  }
  for (const auto& a : audit) trail.push_back(audit_json(a));
  std::size_t drop = trail.size() > kMaxKubeAuditEntries ? trail.size() - kMaxKubeAuditEntries : 0;
  // For size, only entries written before may give way: this write's own lines are kept (or
  // the write refused), never lost silently.
  const std::size_t droppable = std::max(drop, trail.size() - audit.size());
  json::object data;
  for (;;) {
    json::array kept(trail.begin() + static_cast<std::ptrdiff_t>(drop), trail.end());
    data = {{"version", std::to_string(next)},
            {"state", encoded},
            {"audit", json::serialize(kept)}};
    if (data_size(data) <= kKubeConfigMapBudget) break;
    if (drop >= droppable) {
      return core::Error::invalid_input(
          "the ledger of '" + env + "' would be a ConfigMap of " +
          std::to_string(data_size(data)) + " bytes, over the " +
          std::to_string(kKubeConfigMapBudget) +
          " this store writes (Kubernetes keeps a ConfigMap up to 1 MiB)");
    }
    drop = std::max(drop + 1, drop + (trail.size() - drop) / 8);  // the oldest entries go
    drop = std::min(drop, droppable);
  }
  object["data"] = std::move(data);
  const bool create = expected_version == 0;
  const std::string path = create ? "/api/v1/namespaces/" + namespace_ + "/configmaps"
                                  : configmap_path(env);
  const std::string method = create ? "POST" : "PUT";
  auto r = call(method, path, json::serialize(object));
  if (!r) return r.error();
  if (r->status == 409) {
    return core::Error::conflict(env + " changed since version " +
                                 std::to_string(expected_version));
  }
  if (r->status != 200 && r->status != 201) {
    return refused(*r, method, path);
  }
  return next;
}

core::Result<std::vector<core::AuditEntry>> KubeStore::audit(const std::string& environment,
                                                             std::size_t limit) {
  auto s = get_configmap(environment);
  if (!s) return s.error();
  std::vector<core::AuditEntry> out;
  if (!*s) return out;
  const auto& trail = (*s)->audit;
  const std::size_t start = trail.size() > limit ? trail.size() - limit : 0;
  for (std::size_t i = start; i < trail.size(); ++i) {
    if (trail[i].is_object()) out.push_back(audit_entry(trail[i].get_object(), environment));
  }
  return out;
}

core::Result<std::vector<std::string>> KubeStore::environments() {
  std::vector<std::string> out;
  std::string next;
  for (int page = 0; page < 1000; ++page) {
    const std::string path = "/api/v1/namespaces/" + namespace_ +
                             "/configmaps?labelSelector=" + kLedgerSelector + "&limit=250" +
                             (next.empty() ? "" : "&continue=" + percent_encode(next));
    auto r = call("GET", path);
    if (!r) return r.error();
    if (r->status != 200) return refused(*r, "GET", path);
    boost::system::error_code ec;
    const json::value v = json::parse(r->body, ec);
    if (ec || !v.is_object()) return core::Error::invalid_input(path + ": not a JSON object");
    if (const auto* items = v.get_object().if_contains("items"); items != nullptr && items->is_array()) {
      for (const auto& item : items->get_array()) {
        if (!item.is_object()) continue;
        const auto* meta = child(item.get_object(), "metadata");
        const std::string name =
            text(meta != nullptr ? child(*meta, "annotations") : nullptr, kEnvironmentAnnotation);
        if (!name.empty()) out.push_back(name);
      }
    }
    next = text(child(v.get_object(), "metadata"), "continue");
    if (next.empty()) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

core::Result<std::optional<KubeStore::StoredLease>> KubeStore::get_lease(
    const std::string& environment) {
  const std::string path = lease_path(environment);
  auto r = call("GET", path);
  if (!r) return r.error();
  if (r->status == 404) return std::optional<StoredLease>();
  if (r->status != 200) return refused(*r, "GET", path);
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec || !v.is_object()) return core::Error::invalid_input(path + ": not a JSON object");
  StoredLease l;
  l.object = std::move(v.get_object());
  const auto* spec = child(l.object, "spec");
  l.holder = text(spec, "holderIdentity");
  l.transitions = integer(spec, "leaseTransitions");
  const std::string renew = text(spec, "renewTime");
  const auto renewed = core::parse_iso8601(renew);
  if (!renew.empty() && !renewed) {
    return core::Error::invalid_input(path + ": spec.renewTime '" + renew +
                                      "' is not a MicroTime");
  }
  l.until = core::add_bounded(renewed.value_or(core::from_epoch_ms(0)),
                              std::chrono::seconds(integer(spec, "leaseDurationSeconds")));
  return std::optional<StoredLease>(std::move(l));
}

core::Result<std::optional<core::Lease>> KubeStore::lease(const std::string& environment) {
  auto l = get_lease(environment);
  if (!l) return l.error();
  if (!*l || (*l)->holder.empty()) return std::optional<core::Lease>();
  return std::optional<core::Lease>(core::Lease{(*l)->holder, (*l)->until});
}

// As client-go's leader election: read the Lease, decide by core::lease_after, write it back
// on its resourceVersion (create it when absent); a 409 means another process wrote first, so
// read and decide again.
core::Result<core::Lease> KubeStore::acquire_lease(const std::string& environment,
                                                   const std::string& holder, core::Time now,
                                                   core::Time until) {
  const auto ms = (until - now).count();
  const std::int64_t seconds = std::max<std::int64_t>(1, (ms + 999) / 1000);
  for (int attempt = 0; attempt < kLeaseAttempts; ++attempt) {
    auto got = get_lease(environment);
    if (!got) return got.error();
    std::optional<core::Lease> current;
    if (*got && !(*got)->holder.empty()) current = core::Lease{(*got)->holder, (*got)->until};
    const core::Lease next = core::lease_after(current, holder, now, until);
    if (next.holder != holder) return next;
    json::object spec{{"holderIdentity", holder},
                      {"leaseDurationSeconds", seconds},
                      {"renewTime", kube_micro_time(now)}};
    std::string method = "POST";
    std::string path = "/apis/coordination.k8s.io/v1/namespaces/" + namespace_ + "/leases";
    json::object object;
    if (*got) {
      object = (*got)->object;
      const auto* old = child(object, "spec");
      const bool same = (*got)->holder == holder;
      spec["acquireTime"] = same && old != nullptr && old->contains("acquireTime")
                                ? old->at("acquireTime")
                                : json::value(kube_micro_time(now));
      spec["leaseTransitions"] = same ? (*got)->transitions : (*got)->transitions + 1;
      method = "PUT";
      path = lease_path(environment);
    } else {
      object = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", metadata(kube_object_name(environment), namespace_, environment,
                                      "switching-lease")}};
      spec["acquireTime"] = kube_micro_time(now);
      spec["leaseTransitions"] = 0;
    }
    object["spec"] = std::move(spec);
    auto r = call(method, path, json::serialize(object));
    if (!r) return r.error();
    if (r->status == 200 || r->status == 201) return core::Lease{holder, core::add_bounded(now, std::chrono::seconds(seconds))};
    if (r->status != 409) return refused(*r, method, path);
  }
  return core::Error::conflict("kubernetes store: the lease of " + environment +
                               " kept changing hands");
}

core::Status KubeStore::release_lease(const std::string& environment, const std::string& holder) {
  for (int attempt = 0; attempt < kLeaseAttempts; ++attempt) {
    auto got = get_lease(environment);
    if (!got) return got.error();
    if (!*got || (*got)->holder != holder) return {};
    // As client-go releases: the holder cleared, the history (transitions) kept.
    json::object object = (*got)->object;
    json::object spec = object["spec"].is_object() ? object["spec"].get_object() : json::object{};
    spec.erase("holderIdentity");
    spec["leaseDurationSeconds"] = 1;
    object["spec"] = std::move(spec);
    const std::string path = lease_path(environment);
    auto r = call("PUT", path, json::serialize(object));
    if (!r) return r.error();
    if (r->status == 200) return {};
    if (r->status != 409) return refused(*r, "PUT", path);
  }
  return core::Error::conflict("kubernetes store: the lease of " + environment +
                               " kept changing while it was released");
}

}  // namespace intermission::adapters
