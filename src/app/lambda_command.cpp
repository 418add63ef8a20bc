#include "app/lambda_command.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "adapters/aws/aws_context.h"
#include "adapters/aws/codedeploy_lookup.h"
#include "adapters/backend/factory.h"
#include "adapters/config/yaml_config.h"
#include "adapters/lambda/runtime_api.h"
#include "adapters/log/json_logger.h"
#include "adapters/store/factory.h"
#include "app/notifications.h"
#include "core/event_parser.h"
#include "core/time.h"

namespace intermission::app {
namespace {

// Every AWS call, retry and wait of an invocation ends this long before its deadline, so the
// switching lease can still be given back...
constexpr auto kDeadlineMargin = std::chrono::milliseconds(2500);
// ...which may take until this long before it, so the response is still posted.
constexpr auto kCleanupMargin = std::chrono::milliseconds(500);

std::string summary(const std::vector<core::Outcome>& outcomes) {
  boost::json::array out;
  for (const auto& o : outcomes) {
    boost::json::array applied;
    for (const auto& s : o.applied) applied.emplace_back(core::describe(s));
    out.push_back(boost::json::object{{"environment", o.environment},
                                      {"ignored", o.ignored},
                                      {"on", o.decision.on},
                                      {"note", o.note},
                                      {"applied", std::move(applied)}});
  }
  return boost::json::serialize(out);
}

// The notices of one invocation's switches, kept until its event is handled: an invocation is
// frozen as soon as it answers, so they are sent and waited for inside it (deliver_notices),
// never left queued in a thread that would wake at some later invocation.
class InvocationNotices final : public core::Notifier {
 public:
  void notify(const core::Notice& notice) override { notices_.push_back(notice); }
  std::vector<core::Notice> take() { return std::exchange(notices_, {}); }

 private:
  std::vector<core::Notice> notices_;
};

// Sends `notices` to the targets and waits for their deliveries, all of it within `budget`
// (none: no deadline): each attempt gets at most half of it, the wait for retries what is left
// of it after one more attempt's timeout (an attempt in flight when the wait ends is let finish
// within its timeout), and at most notifications.timeout, as the CLI waits. What is still
// undelivered then is dropped, in the audit trail as such. The audit lines are written after
// that, in the time kept for cleaning up (the caller moves the store's deadline there).
void deliver_notices(std::vector<core::Notice> notices,
                     const std::vector<adapters::NotifyTarget>& targets,
                     const core::NotificationsConfig& config,
                     std::optional<std::chrono::milliseconds> budget, core::Store& audit,
                     core::Logger& log, const core::Clock& clock) {
  if (notices.empty() || targets.empty()) return;
  adapters::NotifierOptions options = notifier_options(config);
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(config.timeout);
  if (budget) {
    if (*budget < std::chrono::milliseconds(200)) {
      // Not sent, but said where every other drop is said: the log and the audit trail.
      for (const auto& n : notices) {
        for (const auto& t : targets) {
          if (!t.wants(n)) continue;
          record_delivery({adapters::DeliveryReport::Result::kDropped, t.name, n, 0,
                           "no time was left in the invocation that switched"},
                          audit, log, clock.now());
        }
      }
      return;
    }
    options.timeout = std::min(options.timeout, *budget / 2);
    wait = std::min(wait, *budget - options.timeout);
  }
  adapters::HttpNotifier notifier(targets, options, clock, [&](const adapters::DeliveryReport& r) {
    record_delivery(r, audit, log, clock.now());
  });
  for (const auto& n : notices) notifier.notify(n);
  if (!notifier.wait_idle(wait)) {
    log.warn("notices left undelivered at the end of the invocation; they are dropped");
  }
}

}  // namespace

std::string lambda_error_type(core::ErrorCode code) {
  // "not_found" -> "Intermission.NotFound": Lambda's errorType, for alarms and the DLQ.
  std::string type = "Intermission.";
  bool upper = true;
  for (const char c : core::to_string(code)) {
    if (c == '_') {
      upper = true;
      continue;
    }
    type += upper ? static_cast<char>(c - 'a' + 'A') : c;
    upper = false;
  }
  return type;
}

std::string give_back_leases(core::Store& store, const core::Config& config,
                             const std::string& holder, core::Time now) {
  std::string given;
  std::string held;
  for (const auto& [name, env] : config.environments) {
    auto lease = store.lease(name);
    if (!lease) {
      held += (held.empty() ? "" : "; ") + name + " (" + lease.error().message + ")";
      continue;
    }
    if (!*lease || (*lease)->holder != holder || (*lease)->until <= now) continue;
    if (auto st = store.release_lease(name, holder); st) {
      given += (given.empty() ? "" : ", ") + name;
    } else {
      held += (held.empty() ? "" : "; ") + name + " until " + core::format_iso8601((*lease)->until) +
              " (" + st.error().message + ")";
    }
  }
  std::string out = given.empty() ? "" : "gave the switching lease of " + given + " back";
  if (!held.empty()) {
    out += (out.empty() ? "" : "; ") + std::string("could not give the switching lease of ") +
           held + " back: it runs out by itself";
  }
  return out.empty() ? "held no switching lease" : out;
}

InvocationResult handle_invocation(core::Controller& controller, const std::string& event,
                                   core::Logger& log, const std::function<bool()>& deadline_passed,
                                   const std::function<std::string()>& give_back) {
  auto items = core::parse_events(event);
  if (!items) {
    log.error("event acknowledged without action: it cannot be parsed",
              {{"error", items.error().message}, {"event", event.substr(0, 2000)}});
    return {true,
            boost::json::serialize(boost::json::object{{"status", "ignored"},
                                                       {"reason", items.error().message}}),
            "", ""};
  }
  // An operator command the core refuses refuses the invocation before anything is acted on
  // (the invoker sees why; a retry of it is refused the same way and changes nothing).
  for (const auto& item : *items) {
    if (auto st = controller.check(item); !st) {
      log.error("event refused; nothing was done", {{"error", st.error().message}});
      return {false, "", lambda_error_type(st.error().code), st.error().message};
    }
  }
  std::vector<core::Outcome> all;
  std::string stopped;  // what the deadline stopped
  auto failed = [&](const core::Error& e) -> InvocationResult {
    log.error("event failed; Lambda will retry it", {{"error", e.message}});
    return {false, "", lambda_error_type(e.code), e.message};
  };
  for (const auto& item : *items) {
    std::vector<core::Outcome> outcomes;
    core::Status converged;
    if (std::holds_alternative<core::TickRequest>(item)) {
      auto ticks = controller.handle_all(item);
      if (ticks) outcomes = std::move(*ticks);
      if (!ticks) converged = ticks.error();
    } else {
      // Recorded first, on its own: an input the ledger has not got must never be acknowledged
      // (a deadline stop here would lose it), so that failure always asks Lambda to retry; a
      // retry of an input already recorded is a duplicate the ledger ignores.
      auto recorded = controller.record(item);
      if (!recorded) return failed(recorded.error());
      if (recorded->ignored || recorded->environment.empty()) {
        outcomes.push_back(std::move(*recorded));
      } else {
        auto o = controller.reconcile(recorded->environment);
        if (o) {
          o->recorded = recorded->recorded;
          if (!recorded->note.empty()) o->note = recorded->note;
          outcomes.push_back(std::move(*o));
        } else {
          converged = o.error();
        }
      }
    }
    if (!converged) {
      // Recorded, but the switch did not finish: past the deadline that is for the next
      // invocation or tick (a Lambda retry would only repeat it), before it a retry may help.
      if (!deadline_passed()) return failed(converged.error());
      stopped += (stopped.empty() ? "" : "; ") + converged.error().message;
      continue;
    }
    all.insert(all.end(), outcomes.begin(), outcomes.end());
  }
  boost::json::object body{{"status", stopped.empty() ? "done" : "deferred"}};
  if (!stopped.empty()) {
    const std::string leases = give_back ? give_back() : "";
    const std::string error = stopped + (leases.empty() ? "" : "; " + leases);
    log.warn("stopped before the invocation's deadline" + (leases.empty() ? "" : "; " + leases) +
                 "; the next invocation or tick continues",
             {{"error", error}});
    body["error"] = error;
  }
  body["results"] = boost::json::parse(summary(all));
  return {true, boost::json::serialize(body), "", ""};
}

int run_lambda(const Args& global, const Args&, CliIo& io) {
  const auto api_address = io.getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api_address || api_address->empty()) {
    io.err << "intermission lambda: AWS_LAMBDA_RUNTIME_API is not set (this runs inside Lambda; "
              "use `intermission handle` elsewhere)\n";
    return kExitUsage;
  }
  adapters::lambda::RuntimeApi api(*api_address);
  adapters::SystemClock clock;
  core::LogLevel level = core::LogLevel::kInfo;
  if (auto l = io.getenv("INTERMISSION_LOG_LEVEL")) {
    level = adapters::parse_log_level(*l).value_or(core::LogLevel::kInfo);
  }
  adapters::JsonLogger log(stdout, clock, level);
  auto init_failed = [&](const std::string& type, const std::string& message) {
    log.error("init failed", {{"error", message}});
    (void)api.init_error(type, message);
    return kExitConfig;
  };

  // The config: a YAML text in INTERMISSION_CONFIG_YAML (a template parameter), or a file:
  // --config, INTERMISSION_CONFIG, or config.yaml in the zip ($LAMBDA_TASK_ROOT).
  adapters::LoadedConfig loaded;
  if (auto text = io.getenv("INTERMISSION_CONFIG_YAML"); text && !text->empty()) {
    loaded = adapters::parse_config(*text, "INTERMISSION_CONFIG_YAML");
  } else {
    std::string path = global.option("--config").value_or(io.getenv("INTERMISSION_CONFIG").value_or(""));
    if (path.empty()) path = io.getenv("LAMBDA_TASK_ROOT").value_or("/var/task") + "/config.yaml";
    loaded = adapters::load_config_file(path);
  }
  if (!loaded.errors.empty()) {
    std::string all;
    for (const auto& e : loaded.errors) all += e.to_string() + "; ";
    return init_failed("Runtime.ConfigError", all);
  }
  adapters::aws::RetryPolicy retry;
  retry.max_attempts = loaded.config.aws.max_attempts;
  adapters::aws::AwsContext aws(loaded.config.aws.region, io.getenv, clock, log, retry);
  auto store = adapters::open_store(loaded.config.store, &aws, clock, log);
  if (!store) return init_failed("Runtime.StoreError", store.error().message);
  std::unique_ptr<adapters::aws::CodeDeployLookup> lookup;
  if (loaded.config.aws.codedeploy_lookup) {
    auto client = aws.client(adapters::aws::codedeploy_service());
    if (!client) return init_failed("Runtime.ConfigError", client.error().message);
    lookup = std::make_unique<adapters::aws::CodeDeployLookup>(**client);
  }
  adapters::DefaultBackendFactory backends(clock, &aws);
  const std::string holder = adapters::lease_holder_id();
  adapters::ThreadSleeper sleeper;
  adapters::SeededRandom random;
  // Notifications: sent at the end of each invocation that switched (deliver_notices), their
  // audit lines written through a store connection of their own (the notifier's thread).
  InvocationNotices notices;
  std::vector<adapters::NotifyTarget> notify_targets;
  std::unique_ptr<core::Store> notify_store;
  if (!loaded.config.notifications.targets.empty()) {
    LoadedTargets targets = load_notify_targets(loaded.config.notifications, io.getenv);
    for (const auto& p : targets.problems) {
      log.error("notification target left out", {{"problem", p}});
    }
    auto opened = adapters::open_store(loaded.config.store, &aws, clock, log);
    if (!opened) return init_failed("Runtime.StoreError", opened.error().message);
    notify_store = std::move(*opened);
    notify_targets = std::move(targets.targets);
  }
  core::Controller controller(
      loaded.config, {**store, backends, clock, log, lookup.get(), holder, &sleeper, &random,
                      notify_store ? &notices : nullptr});
  log.info("lambda runtime ready", {{"environments", std::to_string(loaded.config.environments.size())}});

  for (;;) {
    auto inv = api.next();
    if (!inv) {
      log.error("runtime API failed", {{"error", inv.error().message}});
      return kExitFailed;  // Lambda starts a fresh environment
    }
    if (!inv->trace_id.empty()) ::setenv("_X_AMZN_TRACE_ID", inv->trace_id.c_str(), 1);
    const auto now_ms = core::to_epoch_ms(clock.now());
    std::optional<std::chrono::steady_clock::time_point> cleanup;
    std::optional<std::chrono::steady_clock::time_point> work_ends;
    if (inv->deadline_ms > 0) {
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(inv->deadline_ms - now_ms);
      cleanup = deadline - kCleanupMargin;
      work_ends = deadline - kDeadlineMargin;
      aws.set_deadline(work_ends, cleanup);
    } else {
      aws.set_deadline(std::nullopt);
    }
    log.info("invocation", {{"request_id", inv->request_id}});
    auto give_back = [&] {
      aws.set_deadline(cleanup, cleanup);  // the work ran out of time: only giving back is left
      return give_back_leases(**store, loaded.config, holder, clock.now());
    };
    // A call stops up to a backoff sleep, a wait up to a poll interval, before the deadline.
    const auto early = retry.cap + std::chrono::milliseconds(1000);
    const InvocationResult r = handle_invocation(
        controller, inv->event, log, [&] { return aws.deadline_passed(early); }, give_back);
    // The switch is done (or given up); its notices go out before the answer, in what is left
    // of the work's time.
    std::optional<std::chrono::milliseconds> budget;
    if (work_ends) {
      budget = std::chrono::duration_cast<std::chrono::milliseconds>(
          *work_ends - std::chrono::steady_clock::now());
    }
    if (auto taken = notices.take(); !taken.empty()) {  // only with notify_store
      // Deliveries end by the work's end; their audit lines (store calls) may use the time
      // kept for cleaning up, as giving a lease back does.
      if (cleanup) aws.set_deadline(cleanup, cleanup);
      deliver_notices(std::move(taken), notify_targets, loaded.config.notifications, budget,
                      *notify_store, log, clock);
    }
    const core::Status posted = r.ok ? api.respond(inv->request_id, r.body)
                                     : api.fail(inv->request_id, r.error_type, r.error_message);
    if (!posted) log.error("could not post the result", {{"error", posted.error().message}});
  }
}

}  // namespace intermission::app
