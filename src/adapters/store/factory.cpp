#include "adapters/store/factory.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <thread>

#include <cstdio>
#include <random>

#include "adapters/kube/client.h"
#include "adapters/store/dynamodb_store.h"
#include "adapters/store/kube_store.h"
#include "adapters/store/postgres_store.h"
#include "adapters/store/sqlite_store.h"

namespace intermission::adapters {

namespace {

std::string this_host() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "unknown-host";
  return host;
}

}  // namespace

std::string lease_holder_id() {
  const std::string host = this_host();
  std::random_device random;
  char id[320];
  std::snprintf(id, sizeof id, "%s/%ld/%08x", host.c_str(), static_cast<long>(::getpid()),
                random());
  return id;
}

bool lease_holder_alive_here(const std::string& holder) {
  const auto last = holder.rfind('/');
  if (last == std::string::npos || last == 0) return false;
  const auto middle = holder.rfind('/', last - 1);
  if (middle == std::string::npos) return false;
  if (holder.substr(0, middle) != this_host()) return false;
  long pid = 0;
  const char* begin = holder.data() + middle + 1;
  const char* end = holder.data() + last;
  const auto [ptr, ec] = std::from_chars(begin, end, pid);
  if (ec != std::errc() || ptr != end || pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

void ThreadSleeper::sleep_for(core::Duration d) { std::this_thread::sleep_for(d); }

SeededRandom::SeededRandom() {
  std::random_device device;
  std::seed_seq seed{device(), device(), device(), device()};
  engine_.seed(seed);
}

std::uint64_t SeededRandom::next() {
  std::lock_guard<std::mutex> lock(mutex_);
  return engine_();
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
  if (config.type == "kubernetes") {
    auto client = kube::KubeClient::open({config.kubeconfig, config.context}, log);
    if (!client) return client.error().with_context("store");
    std::string ns = config.namespace_name;
    if (ns.empty()) ns = (*client)->connection().namespace_name;
    if (ns.empty()) {
      return core::Error::config("store: the kubernetes store needs a namespace: store.namespace, "
                                 "or one in the kubeconfig context (" +
                                 (*client)->connection().source + ")");
    }
    return std::unique_ptr<core::Store>(std::make_unique<KubeStore>(std::move(*client), ns, log));
  }
  if (config.type == "sqlite") {
    auto s = SqliteStore::open(config.path.empty() ? kDefaultSqlitePath : config.path);
    if (!s) return s.error();
    return std::unique_ptr<core::Store>(std::move(*s));
  }
  return core::Error::config("unknown store type '" + config.type + "'");
}

}  // namespace intermission::adapters
