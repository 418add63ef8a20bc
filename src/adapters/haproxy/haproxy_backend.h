// The HAProxy backend: maintenance for an environment is one entry in a HAProxy map, switched
// through the runtime API (no reload), and written to the map file too (atomic rename) so a
// reload or restart keeps the state. HAProxy's config routes to the page server when the
// entry is present (see `intermission haproxy-config`).
#pragma once

#include <string>

#include "adapters/haproxy/runtime_client.h"
#include "core/backend.h"

namespace intermission::adapters::haproxy {

struct HaproxySettings {
  std::string socket;  // runtime API address (see RuntimeClient)
  std::string map;     // the map file, named exactly as in haproxy.cfg
  std::string key;     // the entry for this environment (default: the environment name)
  std::string value = "on";
  std::chrono::milliseconds timeout{5000};
};

class HaproxyBackend final : public core::Backend {
 public:
  explicit HaproxyBackend(HaproxySettings settings);

  // Live state from `show map` (after checking the socket has admin level), plus whether the
  // map file on disk agrees.
  core::Result<core::Observation> observe() override;
  // On: `add map` unless the entry is there; off: `del map`. Then the file is rewritten.
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  core::Result<bool> live_on() const;
  core::Status write_file(bool on) const;

  HaproxySettings s_;
  RuntimeClient client_;
  mutable bool admin_level_ = false;  // the socket answered `show cli level` with admin
};

}  // namespace intermission::adapters::haproxy
