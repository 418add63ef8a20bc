#include "testing/fakes.h"

#include "core/state_codec.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace intermission::testing {

Result<EnvState> MemoryStore::load(const std::string& environment) {
  ++loads;
  if (load_failures_to_inject > 0) {
    --load_failures_to_inject;
    return Error::unavailable("injected: the store cannot be read");
  }
  auto it = states_.find(environment);
  if (it == states_.end()) {
    EnvState s;
    s.environment = environment;
    return s;
  }
  return it->second;
}

Result<std::int64_t> MemoryStore::compare_and_set(const EnvState& state,
                                                  std::int64_t expected_version,
                                                  const std::vector<AuditEntry>& audit) {
  EnvState& stored = states_[state.environment];
  if (stored.environment.empty()) stored.environment = state.environment;
  if (failures_to_inject > 0) {
    --failures_to_inject;
    return Error::unavailable("injected store failure");
  }
  if (conflicts_to_inject > 0) {
    --conflicts_to_inject;
    ++stored.version;  // someone else wrote meanwhile
    return Error::conflict("injected conflict");
  }
  if (stored.version != expected_version) return Error::conflict("version moved");
  // As the real stores do: the state goes through the codec and the size check, so every
  // test that writes a state also shows that it can be stored and read back.
  const std::string encoded = encode_state(state);
  if (auto st = check_state_size(state, encoded); !st) return st.error();
  auto decoded = decode_state(encoded, state.environment, expected_version + 1);
  if (!decoded) return decoded.error().with_context("memory store: read back");
  stored = std::move(*decoded);
  all_audit.insert(all_audit.end(), audit.begin(), audit.end());
  ++writes;
  if (lost_replies_to_inject > 0) {
    --lost_replies_to_inject;
    return Error::conflict("version moved (the write was made; its answer was lost)");
  }
  return stored.version;
}

Result<std::vector<AuditEntry>> MemoryStore::audit(const std::string& environment,
                                                   std::size_t limit) {
  std::vector<AuditEntry> out;
  for (const auto& a : all_audit) {
    if (a.environment == environment) out.push_back(a);
  }
  if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<long>(limit));
  return out;
}

Result<std::vector<std::string>> MemoryStore::environments() {
  std::vector<std::string> out;
  for (const auto& [name, s] : states_) out.push_back(name);
  return out;
}

Result<Lease> MemoryStore::acquire_lease(const std::string& environment, const std::string& holder,
                                         Time now, Time until) {
  ++lease_calls;
  if (before_next_acquire) std::exchange(before_next_acquire, nullptr)();
  auto it = leases.find(environment);
  const std::optional<Lease> current =
      it == leases.end() ? std::nullopt : std::optional<Lease>(it->second);
  Lease next = lease_after(current, holder, now, until);
  leases[environment] = next;
  return next;
}

Status MemoryStore::release_lease(const std::string& environment, const std::string& holder) {
  if (before_next_release) std::exchange(before_next_release, nullptr)();
  auto it = leases.find(environment);
  if (it != leases.end() && it->second.holder == holder) leases.erase(it);
  return {};
}

Result<std::optional<Lease>> MemoryStore::lease(const std::string& environment) {
  auto it = leases.find(environment);
  if (it == leases.end()) return std::optional<Lease>();
  return std::optional<Lease>(it->second);
}

Result<Observation> FakeBackend::observe() {
  ++s_.observations;
  return Observation{SwitchObservation{s_.on, s_.on ? "on" : "off"}};
}

Status FakeBackend::apply(const Step& step) {
  if (s_.fail_next_applies > 0) {
    --s_.fail_next_applies;
    return Error::unavailable("injected failure");
  }
  if (s_.conflict_next_applies > 0) {
    --s_.conflict_next_applies;
    return Error::conflict("injected write race");
  }
  s_.applied.push_back(step);
  if (const auto* sw = std::get_if<SetSwitch>(&step)) s_.on = sw->on;
  if (auto hook = std::exchange(s_.after_next_apply, nullptr)) hook();
  return {};
}

Result<std::unique_ptr<Backend>> FakeBackendFactory::make(const EnvironmentConfig& env) {
  return std::unique_ptr<Backend>(std::make_unique<FakeBackend>(switches[env.name]));
}

Result<DeploymentInfo> FakeLookup::get_deployment(const std::string& id) {
  ++calls;
  if (unavailable) return Error::unavailable("lookup down");
  auto it = known.find(id);
  if (it == known.end()) return Error::not_found("no deployment " + id);
  return it->second;
}

bool RecordingLogger::contains(LogLevel level, std::string_view fragment) const {
  for (const auto& l : lines) {
    if (l.level == level && l.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

std::string read_fixture(const std::string& relative_path) {
  const std::string path =
      std::string(INTERMISSION_SOURCE_DIR) + "/testing/fixtures/" + relative_path;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    std::fprintf(stderr, "missing fixture %s\n", path.c_str());
    std::abort();
  }
  std::string out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

}  // namespace intermission::testing
