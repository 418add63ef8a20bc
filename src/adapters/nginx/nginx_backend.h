// The nginx backend: maintenance for an environment is a state file that nginx tests on every
// request (`if (-f FILE)`, see `intermission nginx-config`), so a switch needs no reload and
// cannot drop a request. The file is written by an atomic rename and removed by unlink; an
// optional probe asks nginx itself (a local-only location) what it sees, so `observe` reads
// what nginx will really do and a switch nginx does not follow is reported and undone.
#pragma once

#include <chrono>
#include <string>

#include "core/backend.h"

namespace intermission::adapters::nginx {

struct NginxSettings {
  std::string environment;
  std::string state_file;  // the file whose presence means maintenance on
  std::string probe;       // e.g. http://127.0.0.1/.intermission/prod/state; empty = none
  std::chrono::milliseconds probe_timeout{3000};
};

class NginxBackend final : public core::Backend {
 public:
  explicit NginxBackend(NginxSettings settings);

  // The state file, and with a probe, what nginx answers for it; an nginx that cannot see
  // the file as it is (no include, a directory its workers cannot search) is an error.
  core::Result<core::Observation> observe() override;
  // Writes (atomically) or removes the state file; with a probe, checks nginx follows and
  // puts the file back as it was if it does not.
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  core::Result<bool> file_on() const;
  core::Result<bool> nginx_on() const;  // asks the probe
  core::Status write(bool on, const core::SetSwitch& step) const;

  NginxSettings s_;
};

}  // namespace intermission::adapters::nginx
