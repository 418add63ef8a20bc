#include "app/page_ledger.h"

#include "adapters/aws/aws_context.h"
#include "adapters/config/yaml_config.h"
#include "adapters/store/factory.h"

namespace intermission::app {

namespace {

// What the ledger needs alive while the page server runs, in the order it must be destroyed
// (the store before the AWS context it uses).
struct Opened {
  adapters::LoadedConfig loaded;
  std::unique_ptr<adapters::aws::AwsContext> aws;
  std::unique_ptr<core::Store> store;
};

}  // namespace

std::variant<PageLedger, int> open_page_ledger(const Args& global, const std::string& name,
                                               CliIo& io, const core::Clock& clock,
                                               core::Logger& log) {
  auto opened = std::make_shared<Opened>();
  std::string path = global.option("--config").value_or("");
  if (path.empty()) path = io.getenv("INTERMISSION_CONFIG").value_or("/etc/intermission/config.yaml");
  opened->loaded = adapters::load_config_file(path);
  for (const auto& e : opened->loaded.errors) io.err << e.to_string() << "\n";
  if (!opened->loaded.errors.empty()) return kExitConfig;
  const core::EnvironmentConfig* env = opened->loaded.config.environment(name);
  if (env == nullptr) {
    io.err << "intermission page: no environment '" << name << "' in " << path << "\n";
    return kExitUsage;
  }
  opened->aws = std::make_unique<adapters::aws::AwsContext>(opened->loaded.config.aws.region,
                                                            io.getenv, clock, log);
  auto s = adapters::open_store(opened->loaded.config.store, opened->aws.get(), clock, log);
  if (!s) {
    io.err << "intermission page: " << s.error().message << "\n";
    return kExitFailed;
  }
  opened->store = std::move(*s);
  PageLedger ledger;
  ledger.env = env;
  ledger.store = opened->store.get();
  ledger.owner = std::move(opened);
  return ledger;
}

}  // namespace intermission::app
