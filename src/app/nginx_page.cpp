#include "app/nginx_page.h"

#include "page/assets.h"
#include "page/response.h"

namespace intermission::app {

core::Result<adapters::nginx::PageFiles> build_nginx_page(const adapters::nginx::PageSource& source,
                                                          const core::SetSwitch& step,
                                                          core::Time now) {
  page::PageOptions o;
  if (!source.page_file.empty()) {
    auto text = page::read_file(source.page_file);
    if (!text) return text.error();
    o.html_template = std::move(*text);
  }
  o.reason = step.reason;
  o.until = step.until;
  o.default_retry_after = source.retry_after;
  o.fixed_retry_after = true;
  page::PageBodies bodies = page::page_bodies(o, now);
  adapters::nginx::PageFiles out{std::move(bodies.html), std::move(bodies.json), {}};
  if (!source.assets_dir.empty()) {
    auto assets = page::load_assets(source.assets_dir);
    if (!assets) return assets.error();
    for (auto& [path, asset] : *assets) out.assets.emplace(path, std::move(asset.body));
  }
  return out;
}

}  // namespace intermission::app
