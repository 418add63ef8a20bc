// The nginx backend: maintenance for an environment is a state file that nginx tests on every
// request (`if (-f FILE)`, see `intermission nginx-config`), so a switch needs no reload and
// cannot drop a request. The file is written by an atomic rename and removed by unlink; an
// optional probe asks nginx itself (a local-only location) what it sees, so `observe` reads
// what nginx will really do and a switch nginx does not follow is reported and undone. In
// file mode the backend also writes the page nginx serves (page.html, page.json, assets/)
// before every switch on, each file by an atomic rename.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "core/backend.h"

namespace intermission::adapters::nginx {

// The page nginx serves in file mode, as the page server would send it.
struct PageFiles {
  std::string html;
  std::string json;
  std::map<std::string, std::string> assets;  // '/'-separated path below assets/ -> bytes
};

// What the page is made of in file mode (the backend's settings).
struct PageSource {
  std::string page_file;   // the HTML template; empty = the built-in page
  std::string assets_dir;  // copied to page_dir/assets/; empty = none
  std::chrono::seconds retry_after{120};
};

// Makes the page for a switch on (its reason and expected end). Called on the thread that
// calls apply(); may read files (the template, the assets).
using PageRenderer = std::function<core::Result<PageFiles>(const core::SetSwitch&)>;

struct NginxSettings {
  std::string environment;
  std::string state_file;  // the file whose presence means maintenance on
  std::string probe;       // e.g. http://127.0.0.1/.intermission/prod/state; empty = none
  std::chrono::milliseconds probe_timeout{3000};
  // File mode: the directory nginx serves the page from (must exist), and what makes the
  // page. Empty = the page is proxied to `intermission page` and nothing is written.
  std::string page_dir;
  PageRenderer render_page;
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
  core::Status write_page(const core::SetSwitch& step) const;

  NginxSettings s_;
};

}  // namespace intermission::adapters::nginx
