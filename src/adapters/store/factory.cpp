#include "adapters/store/factory.h"

#include <unistd.h>

#include <cstdio>
#include <random>

#include "adapters/store/dynamodb_store.h"
#include "adapters/store/postgres_store.h"
#include "adapters/store/sqlite_store.h"

namespace intermission::adapters {

std::string lease_holder_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "%s", "unknown-host");
  }
  std::random_device random;
  char id[320];
  std::snprintf(id, sizeof id, "%s/%ld/%08x", host, static_cast<long>(::getpid()), random());
  return id;
}

core::Result<std::unique_ptr<core::Store>> open_store(const core::StoreConfig& config,
                                                      aws::AwsContext* aws,
                                                      const core::Clock& clock, core::Logger& log) {
  if (config.type == "dynamodb") {
    if (aws == nullptr) return core::Error::internal("dynamodb store without an AWS context");
    auto client = aws->client(aws::dynamodb_service(), config.region);
    if (!client) return client.error();
    return std::unique_ptr<core::Store>(
        std::make_unique<DynamoDbStore>(**client, config.table, config.audit_ttl, clock, log));
  }
  if (config.type == "postgresql") {
    auto s = PostgresStore::open(config.connection);
    if (!s) return s.error();
    return std::unique_ptr<core::Store>(std::move(*s));
  }
  if (config.type == "sqlite") {
    auto s = SqliteStore::open(config.path.empty() ? kDefaultSqlitePath : config.path);
    if (!s) return s.error();
    return std::unique_ptr<core::Store>(std::move(*s));
  }
  return core::Error::config("unknown store type '" + config.type + "'");
}

}  // namespace intermission::adapters
