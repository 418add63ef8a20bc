// The nginx backend's page files (file mode), built by the page server's own response builder
// (page::page_bodies) so nginx serves the same HTML and JSON as `intermission page`.
#pragma once

#include "adapters/nginx/nginx_backend.h"
#include "core/time.h"

namespace intermission::app {

// The page for `step` (its reason and expected end) as of `now`: the template and assets are
// read from `source` at every call, so a changed template shows at the next switch on.
// Retry-After is `source.retry_after` seconds (nginx sends a fixed header; a date would go
// stale in a file).
core::Result<adapters::nginx::PageFiles> build_nginx_page(const adapters::nginx::PageSource& source,
                                                          const core::SetSwitch& step,
                                                          core::Time now);

}  // namespace intermission::app
