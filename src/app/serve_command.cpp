#include "app/serve_command.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <optional>
#include <thread>

#include "adapters/aws/aws_context.h"
#include "adapters/aws/codedeploy_lookup.h"
#include "adapters/backend/factory.h"
#include "adapters/kube/client.h"
#include "adapters/config/yaml_config.h"
#include "adapters/log/json_logger.h"
#include "adapters/sns/verifier.h"
#include "adapters/store/factory.h"
#include "app/nginx_page.h"
#include "app/serve_api.h"
#include "app/notifications.h"
#include "app/serve_secrets.h"
#include "page/server.h"

namespace intermission::app {
namespace {

namespace asio = boost::asio;

// Everything one thread needs to act: its own store connection, AWS clients and controller
// (none of them is shared between threads).
struct Engine {
  std::unique_ptr<adapters::aws::AwsContext> aws;
  std::unique_ptr<core::Store> store;
  std::unique_ptr<adapters::aws::CodeDeployLookup> lookup;
  std::unique_ptr<adapters::DefaultBackendFactory> backends;
  std::unique_ptr<adapters::ThreadSleeper> sleeper = std::make_unique<adapters::ThreadSleeper>();
  std::unique_ptr<adapters::SeededRandom> random = std::make_unique<adapters::SeededRandom>();
  std::unique_ptr<core::Controller> controller;
};

core::Result<Engine> make_engine(const core::Config& config, CliIo& io, const core::Clock& clock,
                                 core::Logger& log, bool with_lookup,
                                 core::Notifier* notifier = nullptr) {
  Engine e;
  if (config.aws.present || adapters::uses_aws(config)) {
    adapters::aws::RetryPolicy retry;
    retry.max_attempts = config.aws.max_attempts;
    e.aws = std::make_unique<adapters::aws::AwsContext>(config.aws.region, io.getenv, clock, log, retry);
  }
  auto store = adapters::open_store(config.store, e.aws.get(), clock, log);
  if (!store) return store.error();
  e.store = std::move(*store);
  if (with_lookup && config.aws.present && config.aws.codedeploy_lookup) {
    auto client = e.aws->client(adapters::aws::codedeploy_service());
    if (!client) return client.error();
    e.lookup = std::make_unique<adapters::aws::CodeDeployLookup>(**client);
  }
  e.backends = std::make_unique<adapters::DefaultBackendFactory>(
      clock, e.aws.get(), [&c = clock](const auto& source, const auto& step) {
        return build_nginx_page(source, step, c.now());
      },
      [&l = log](const std::string& kubeconfig, const std::string& context) {
        return adapters::kube::open_api(kubeconfig, context, l);
      });
  e.controller = std::make_unique<core::Controller>(
      config, core::Controller::Deps{*e.store, *e.backends, clock, log, e.lookup.get(),
                                     adapters::lease_holder_id(), e.sleeper.get(), e.random.get(),
                                     notifier});
  return e;
}

// The environments waiting for the worker, without duplicates.
class WorkQueue {
 public:
  void push(const std::string& env) {
    {
      const std::lock_guard lock(mu_);
      pending_.insert(env);
    }
    cv_.notify_one();
  }
  // Waits for work or `timeout`; false when stopping.
  bool pop(std::set<std::string>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return stop_ || !pending_.empty(); });
    out.swap(pending_);
    pending_.clear();
    return !stop_;
  }
  void stop() {
    {
      const std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> pending_;
  bool stop_ = false;
};

// Loads one secret; a configured one that is unusable is said loudly, and its feature stays off.
std::string secret(const SecretSource& source, CliIo& io, core::Logger& log) {
  const LoadedSecret s = load_secret(source, io.getenv);
  if (!s.problem.empty()) {
    log.warn(source.what + " unusable; its endpoints stay disabled", {{"problem", s.problem}});
  }
  return s.value;
}

enum class Exit { kStop, kReload };

}  // namespace

int run_serve(const Args& global, const Args&, CliIo& io) {
  adapters::SystemClock clock;
  core::LogLevel level = core::LogLevel::kInfo;
  if (auto l = global.option("--log-level")) level = adapters::parse_log_level(*l).value_or(level);
  adapters::JsonLogger log(stderr, clock, level);
  std::string path = global.option("--config").value_or(io.getenv("INTERMISSION_CONFIG").value_or(""));
  if (path.empty()) path = "/etc/intermission/config.yaml";
  auto loaded = adapters::load_config_file(path);
  for (const auto& e : loaded.errors) io.err << e.to_string() << "\n";
  if (!loaded.errors.empty()) return kExitConfig;

  // The SNS signing certificates fetched so far, kept across reloads.
  const auto cert_memory = std::make_shared<adapters::sns::CertMemory>();
  for (;;) {  // one pass per configuration; SIGHUP with a valid file starts the next
    const core::Config& config = loaded.config;
    const std::string operator_token = secret({"operator token", config.serve.operator_token_file,
                                               "operator-token", "INTERMISSION_OPERATOR_TOKEN"},
                                              io, log);
    const std::string webhook_secret = secret({"webhook secret", config.serve.webhook_secret_file,
                                               "webhook-secret", "INTERMISSION_WEBHOOK_SECRET"},
                                              io, log);
    const std::string flux_secret = secret({"Flux webhook secret", config.serve.flux_secret_file,
                                            "flux-webhook-secret", "INTERMISSION_FLUX_SECRET"},
                                           io, log);
    const std::string argocd_token = secret({"Argo CD webhook token", config.serve.argocd_token_file,
                                             "argocd-webhook-token", "INTERMISSION_ARGOCD_TOKEN"},
                                            io, log);
    const std::string github_secret = secret({"GitHub webhook secret", config.serve.github_secret_file,
                                              "github-webhook-secret", "INTERMISSION_GITHUB_SECRET"},
                                             io, log);
    Metrics metrics;
    // Notifications: delivered on the notifier's own thread, which alone uses `notify_engine`'s
    // store to write each delivery's end to the audit trail. Declared before the engines whose
    // controllers tell it, so it outlives them.
    std::optional<core::Result<Engine>> notify_engine;
    std::unique_ptr<adapters::HttpNotifier> notifier;
    if (!config.notifications.targets.empty()) {
      LoadedTargets targets = load_notify_targets(config.notifications, io.getenv);
      for (const auto& p : targets.problems) log.error("notification target left out", {{"problem", p}});
      notify_engine = make_engine(config, io, clock, log, false);
      if (!*notify_engine) {
        io.err << "intermission serve: " << (*notify_engine).error().message << "\n";
        return kExitFailed;
      }
      core::Store* audit_store = (**notify_engine).store.get();
      notifier = std::make_unique<adapters::HttpNotifier>(
          std::move(targets.targets), notifier_options(config.notifications), clock,
          [&, audit_store](const adapters::DeliveryReport& r) {
            metrics.count("intermission_notifications_total",
                          {{"target", r.target}, {"kind", std::string(core::to_string(r.notice.kind))},
                           {"result", std::string(adapters::to_string(r.result))}});
            record_delivery(r, *audit_store, log, clock.now());
          });
    }
    auto http_engine = make_engine(config, io, clock, log, false, notifier.get());
    auto worker_engine = make_engine(config, io, clock, log, true, notifier.get());
    if (!http_engine || !worker_engine) {
      io.err << "intermission serve: " << (!http_engine ? http_engine.error() : worker_engine.error()).message << "\n";
      return kExitFailed;
    }
    WorkQueue queue;
    const auto sns_endpoint = io.getenv("AWS_ENDPOINT_URL_SNS");
    // Signing certificates are fetched off the I/O thread (rate-limited, failures cached).
    adapters::aws::HttpClient cert_http(adapters::aws::HttpTimeouts{std::chrono::milliseconds(3000),
                                                                    std::chrono::milliseconds(10000)});
    cert_http.set_ca_file(config.serve.sns_ca_file);
    adapters::sns::AsyncCertSource::Options cert_options;
    if (!config.serve.sns_cert_dir.empty()) cert_options.dir = config.serve.sns_cert_dir;
    cert_options.memory = cert_memory;  // what was fetched survives the reload
    adapters::sns::AsyncCertSource certs(cert_options, [&](const std::string& url) {
      return adapters::sns::fetch_certificate(cert_http, url, sns_endpoint.value_or(""));
    });
    adapters::aws::HttpClient confirm_http;
    ServeApi api({config, *http_engine->controller, *http_engine->store, *http_engine->backends, certs,
                  clock, log, metrics, [&queue](const std::string& env) { queue.push(env); },
                  [&](const std::string& url) -> core::Status {
                    std::string target = url;
                    if (sns_endpoint && !sns_endpoint->empty()) {  // an emulator, as the SDKs allow
                      target = *sns_endpoint + url.substr(url.find('/', 8));
                    }
                    auto r = confirm_http.request("GET", target, {}, "");
                    if (!r) return r.error();
                    if (r->status != 200) return core::Error::unavailable("HTTP " + std::to_string(r->status));
                    return {};
                  },
                  operator_token, webhook_secret, flux_secret, argocd_token, github_secret});

    // The worker: switches after the answers, the periodic tick, and a tick at the moment an
    // environment's state changes by time alone (a window starts or ends, a hold expires:
    // core::next_wake), so that happens on time rather than up to tick_interval late.
    std::thread worker([&] {
      using steady = std::chrono::steady_clock;
      auto next_tick = steady::now();
      std::map<std::string, steady::time_point> wake_at;
      std::set<std::string> envs;
      for (;;) {
        auto deadline = next_tick;
        for (const auto& [env, at] : wake_at) deadline = std::min(deadline, at);
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        const bool running = queue.pop(envs, std::max(wait, std::chrono::milliseconds(0)));
        if (steady::now() >= next_tick) {
          for (const auto& [name, env] : config.environments) envs.insert(name);
          next_tick = steady::now() + config.serve.tick_interval;
        }
        for (auto it = wake_at.begin(); it != wake_at.end();) {
          if (it->second <= steady::now()) {
            envs.insert(it->first);
            it = wake_at.erase(it);
          } else {
            ++it;
          }
        }
        for (const auto& env : envs) {
          const auto started = std::chrono::steady_clock::now();
          auto o = worker_engine->controller->tick(env);
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          if (!o) {
            metrics.count("intermission_backend_errors_total", {{"environment", env}});
            log.error("switch failed; the next tick retries", {{"environment", env}, {"error", o.error().message}});
            continue;
          }
          if (auto state = worker_engine->store->load(env); state) {
            const core::Time now = clock.now();
            if (auto at = core::next_wake(*state, *config.environment(env), now)) {
              // 1 ms past the moment (a window starts at `start <= now`); at least 1 s ahead if
              // a tick is already due, so an environment whose store fails cannot spin.
              auto in = *at - now + std::chrono::milliseconds(1);
              if (in <= core::Duration(0)) in = std::chrono::seconds(1);
              if (in < config.serve.tick_interval) {
                wake_at[env] = steady::now() + std::chrono::duration_cast<steady::duration>(in);
              }
            }
          }
          metrics.set("intermission_maintenance", {{"environment", env}}, o->decision.on ? 1 : 0);
          if (o->deferred) metrics.count("intermission_switches_deferred_total", {{"environment", env}});
          if (!o->applied.empty()) {
            metrics.count("intermission_switches_total",
                          {{"environment", env}, {"direction", o->decision.on ? "on" : "off"}});
            metrics.observe("intermission_switch_duration_seconds", {{"environment", env}}, seconds);
          }
        }
        envs.clear();
        if (!running) return;  // SIGTERM: the switch in progress finished above
      }
    });

    // The API's handlers (verification, store writes that may wait for a lock or a throttled
    // DynamoDB) run on a thread of their own, one for both listeners, so the I/O thread keeps
    // accepting and answering; /healthz is answered on the I/O thread itself.
    // `ctx` is declared first so that it outlives `handlers`: a job queued on the handler
    // thread completes into ctx (and its frame unwinds there) even during shutdown.
    asio::io_context ctx(1);
    asio::io_context handlers(1);
    auto handlers_work = asio::make_work_guard(handlers);
    std::thread handler_thread([&handlers] { handlers.run(); });
    HttpLimits http_limits;  // each listener its own cap: a flood on one leaves the other usable
    http_limits.max_connections = daemon_connection_cap(2);
    const HttpOffload offload{handlers.get_executor(), [](const HttpRequest& r) {
                                const bool health = r.target == "/healthz" &&
                                                    (r.method == "GET" || r.method == "HEAD");
                                return health ? std::optional(health_response()) : std::nullopt;
                              }};
    // Lets the handler thread drain its queue (what is queued behind a slow handler answers
    // 503 at once, the servers being stopped) and end.
    auto stop_handlers = [&] {
      handlers_work.reset();
      handler_thread.join();
    };
    HttpServer public_server(ctx, http_limits,
                             [&api](const HttpRequest& r) { return api.public_side(r); }, offload);
    HttpServer admin_server(ctx, http_limits,
                            [&api](const HttpRequest& r) { return api.admin_side(r); }, offload);
    Exit exit = Exit::kStop;
    // A reloaded configuration takes effect after every thread that reads the current one
    // (handlers, worker) has stopped.
    std::optional<adapters::LoadedConfig> reloaded;
    core::Status listening = [&]() -> core::Status {
      auto pub = page::parse_listen(config.serve.listen);
      if (!pub) return pub.error().with_context("serve.listen");
      auto adm = page::parse_listen(config.serve.admin_listen);
      if (!adm) return adm.error().with_context("serve.admin_listen");
      if (auto st = public_server.listen(*pub); !st) return st;
      return admin_server.listen(*adm);
    }();
    if (!listening) {
      io.err << "intermission serve: " << listening.error().message << "\n";
      stop_handlers();
      queue.stop();
      worker.join();
      return kExitFailed;
    }
    log.info("serving", {{"listen", config.serve.listen}, {"admin_listen", config.serve.admin_listen},
                         {"sns_topics", std::to_string(config.serve.sns_topics.size())},
                         {"operator_api", operator_token.empty() ? "disabled" : "enabled"},
                         {"webhook", webhook_secret.empty() ? "disabled" : "enabled"},
                         {"flux_webhook", flux_secret.empty() ? "disabled" : "enabled"},
                         {"argocd_webhook", argocd_token.empty() ? "disabled" : "enabled"},
                         {"github_webhook", github_secret.empty() ? "disabled" : "enabled"}});
    asio::signal_set signals(ctx, SIGINT, SIGTERM, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& ec, int sig) {
          if (ec) return;
          if (sig == SIGHUP) {
            auto next = adapters::load_config_file(path);
            if (!next.errors.empty()) {
              for (const auto& e : next.errors) log.error("reload refused: " + e.to_string());
              signals.async_wait(on_signal);
              return;
            }
            log.info("configuration reloaded", {{"file", path}});
            reloaded = std::move(next);
            exit = Exit::kReload;
          } else {
            log.info("stopping");
          }
          public_server.stop();
          admin_server.stop();
          ctx.stop();
        };
    signals.async_wait(on_signal);
    ctx.run();
    stop_handlers();  // a handler in progress finishes first (its answer goes nowhere)
    queue.stop();
    worker.join();
    // Notices of the last switches get one timeout's worth of time to go out; what is left is
    // written to the audit trail as dropped.
    if (notifier && !notifier->wait_idle(config.notifications.timeout)) {
      log.warn("stopping with notices undelivered; they are dropped");
    }
    notifier.reset();
    if (reloaded) loaded = std::move(*reloaded);
    if (exit == Exit::kStop) return kExitOk;
  }
}

}  // namespace intermission::app
