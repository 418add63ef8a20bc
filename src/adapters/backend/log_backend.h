// The `log` backend: switches nothing, records each step it is asked to apply as one JSON
// line in a file, and observes its switch by reading that file back. It lets the whole path
// (event -> ledger -> plan -> apply) run before a real load balancer is wired, and is what the
// CLI tests use.
#pragma once

#include <string>

#include "core/backend.h"
#include "core/time.h"

namespace intermission::adapters {

class LogBackend final : public core::Backend {
 public:
  // `path`: the step log (created if missing, shared by environments); `clock` must outlive
  // this. Appends are single write(2) calls with O_APPEND, so several processes may share it.
  // `delay`: each step takes this long before it is logged, as a real load balancer's would
  // (to try out timeouts and several processes switching at once).
  LogBackend(std::string path, std::string environment, const core::Clock& clock,
             core::Duration delay = core::Duration{0});

  core::Result<core::Observation> observe() override;
  core::Status apply(const core::Step& step) override;
  [[nodiscard]] std::string describe() const override;

 private:
  std::string path_;
  std::string environment_;
  const core::Clock& clock_;
  core::Duration delay_;
};

}  // namespace intermission::adapters
