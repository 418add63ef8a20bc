#include "adapters/store/factory.h"

#include "adapters/store/sqlite_store.h"

namespace intermission::adapters {

core::Result<std::unique_ptr<core::Store>> open_store(const core::StoreConfig& config) {
  if (config.type == "sqlite") {
    auto s = SqliteStore::open(config.path.empty() ? kDefaultSqlitePath : config.path);
    if (!s) return s.error();
    return std::unique_ptr<core::Store>(std::move(*s));
  }
  return core::Error::config("unknown store type '" + config.type + "'");
}

}  // namespace intermission::adapters
