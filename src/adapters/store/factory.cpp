#include "adapters/store/factory.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
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

// When process `pid` started, in clock ticks after boot (field 22 of /proc/PID/stat, after
// the command name in parentheses, which may hold anything): with the pid, it names one
// process for the life of the machine, where a pid alone is reused.
std::optional<unsigned long long> process_start(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {  // fields 3.. follow the name
    if (!(fields >> field)) return std::nullopt;
  }
  unsigned long long start = 0;
  const auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), start);
  if (ec != std::errc() || ptr != field.data() + field.size()) return std::nullopt;
  return start;
}

}  // namespace

std::string lease_holder_id() {
  const std::string host = this_host();
  const long pid = static_cast<long>(::getpid());
  std::string process = std::to_string(pid);
  if (const auto start = process_start(pid)) process += "." + std::to_string(*start);
  std::random_device random;
  char id[360];
  std::snprintf(id, sizeof id, "%s/%s/%08x", host.c_str(), process.c_str(), random());
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
  if (ec != std::errc() || pid <= 0) return false;
  std::optional<unsigned long long> start;  // absent in ids written before it was added
  if (ptr != end) {
    unsigned long long s = 0;
    if (*ptr != '.') return false;
    const auto [sptr, sec] = std::from_chars(ptr + 1, end, s);
    if (sec != std::errc() || sptr != end) return false;
    start = s;
  }
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  // The pid is taken; by the same process only if it started when the holder did (a daemon
  // restarted in its container is pid 1 again, with the same host name).
  return !start || process_start(pid) == start;
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
      return core::Error::config(
          "store: the kubernetes store needs a namespace: store.namespace, "
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
