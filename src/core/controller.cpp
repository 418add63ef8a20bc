#include "core/controller.h"

#include <algorithm>
#include <utility>

#include "core/routing.h"

namespace intermission::core {
namespace {

// Steps one convergence may take; a backend that needs more does not converge. An ALB rule
// change on several listeners is about four steps per rule and listener (make-before-break).
constexpr int kMaxSteps = 64;
// Times a convergence starts over because the ledger changed under it.
constexpr int kConvergeRounds = 4;
// Steps in a row that may lose a write race (ErrorCode::kConflict: a Kubernetes object
// changed between its read and our write) before the convergence gives up until next time.
constexpr int kStepConflicts = 16;

LogFields env_fields(const std::string& env) { return {{"environment", env}}; }

// Whether two decisions ask the same of the backend.
bool same_decision(const Decision& a, const Decision& b) {
  return a.on == b.on && a.page_message == b.page_message && a.expected_end == b.expected_end;
}

}  // namespace

Controller::Controller(const Config& config, Deps deps)
    : config_(config), deps_(deps), failures_(config.notifications.stuck_after) {}

void Controller::announce(const Notice& notice) {
  if (deps_.notifier != nullptr) deps_.notifier->notify(notice);
}

void Controller::log_audit(const std::vector<AuditEntry>& audit) {
  for (const auto& a : audit) {
    const LogLevel level = a.kind == "expired" ? LogLevel::kError : LogLevel::kInfo;
    LogFields f{{"environment", a.environment}, {"kind", a.kind}};
    if (!a.deployment_id.empty()) f.emplace_back("deployment_id", a.deployment_id);
    if (!a.who.empty()) f.emplace_back("who", a.who);
    deps_.log.log(level, a.message, f);
  }
}

void Controller::back_off(int attempt) {
  if (deps_.sleeper == nullptr || deps_.random == nullptr) return;
  const Duration ceiling =
      std::min(kCasBackoffBase * (std::int64_t{1} << std::min(attempt, 20)), kCasBackoffCap);
  const auto span = static_cast<std::uint64_t>(ceiling.count());
  deps_.sleeper->sleep_for(Duration(1 + static_cast<std::int64_t>(deps_.random->next() % span)));
}

// Loads the environment's state, applies the passage of time and then `change`, and stores
// the result with compare-and-set, retrying on conflict from a fresh read.
template <class Fn>
Result<Transition> Controller::update(const EnvironmentConfig& env, Fn&& change, bool dry_run) {
  for (int attempt = 0; attempt < kCasAttempts; ++attempt) {
    auto loaded = deps_.store.load(env.name);
    if (!loaded) return loaded.error().with_context("store: load " + env.name);
    const std::int64_t version = loaded->version;
    const Time now = deps_.clock.now();
    Transition t = core::tick(*loaded, env, now);
    Transition c = change(t.state, now);
    t.state = std::move(c.state);
    t.audit.insert(t.audit.end(), c.audit.begin(), c.audit.end());
    t.changed = t.changed || c.changed;
    t.note = c.note;
    if (!t.changed || dry_run) return t;
    auto written = deps_.store.compare_and_set(t.state, version, t.audit);
    if (written) {
      t.state.version = *written;
      log_audit(t.audit);
      for (const auto& n : audit_notices(t.audit)) announce(n);
      return t;
    }
    if (written.error().code != ErrorCode::kConflict) {
      return written.error().with_context("store: save " + env.name);
    }
    if (attempt + 1 < kCasAttempts) back_off(attempt);
  }
  return Error::conflict("store: " + env.name + " changed under us " +
                         std::to_string(kCasAttempts) + " times in a row");
}

Result<std::vector<Outcome>> Controller::handle_all(const ParsedItem& item, bool dry_run) {
  if (!std::holds_alternative<TickRequest>(item)) {
    auto o = handle(item, dry_run);
    if (!o) return o.error();
    return std::vector<Outcome>{std::move(*o)};
  }
  std::vector<Outcome> out;
  std::optional<Error> failed;
  for (const auto& [name, env] : config_.environments) {
    auto o = tick(name, dry_run);
    if (o) {
      out.push_back(std::move(*o));
    } else {
      deps_.log.error("tick failed", {{"environment", name}, {"error", o.error().message}});
      failed = o.error();
    }
  }
  if (failed) return *failed;
  return out;
}

Result<Outcome> Controller::handle(const ParsedItem& item, bool dry_run) {
  return handle_item(item, dry_run, true);
}

Result<Outcome> Controller::record(const ParsedItem& item) {
  return handle_item(item, false, false);
}

Status Controller::check(const ParsedItem& item) const {
  if (const auto* command = std::get_if<OperatorCommand>(&item)) {
    return check_operator_command(*command, deps_.clock.now());
  }
  return {};
}

Result<Outcome> Controller::handle_item(const ParsedItem& item, bool dry_run, bool converge_now) {
  if (std::holds_alternative<TickRequest>(item)) {
    return Error::internal("a tick request is handled by handle_all()");
  }
  if (const auto* ignored = std::get_if<Ignored>(&item)) {
    deps_.log.info("ignored: " + ignored->reason);
    Outcome o;
    o.ignored = true;
    o.note = ignored->reason;
    return o;
  }
  if (const auto* event = std::get_if<DeploymentEvent>(&item)) {
    return handle_deployment(*event, dry_run, converge_now);
  }
  const auto& command = std::get<OperatorCommand>(item);
  if (auto st = check(item); !st) return st.error();
  const EnvironmentConfig* env = config_.environment(command.environment);
  if (env == nullptr) {
    return Error::not_found("no environment '" + command.environment + "' in " + config_.file);
  }
  auto t = update(
      *env, [&](const EnvState& s, Time now) { return apply_operator_command(s, command, now); },
      dry_run);
  if (!t) return t.error();
  Outcome o;
  o.environment = env->name;
  o.recorded = t->changed && !dry_run;
  if (!converge_now) {
    o.decision = decide(t->state, *env, deps_.clock.now());
    return o;
  }
  return converge(*env, std::move(t->state), std::move(o), dry_run);
}

Result<Outcome> Controller::handle_window(const WindowCommand& command, bool dry_run,
                                          bool converge_now) {
  const EnvironmentConfig* env = config_.environment(command.environment);
  if (env == nullptr) {
    return Error::not_found("no environment '" + command.environment + "' in " + config_.file);
  }
  std::optional<Error> refused;
  auto t = update(
      *env,
      [&](const EnvState& s, Time now) {
        refused.reset();  // from an attempt that lost a compare-and-set
        auto w = apply_window_command(s, command, now);
        if (w) return std::move(*w);
        refused = w.error();
        return Transition{s, {}, false, ""};
      },
      dry_run);
  if (!t) return t.error();
  if (refused) return *refused;
  Outcome o;
  o.environment = env->name;
  o.recorded = t->changed && !dry_run;
  o.note = t->note;
  if (!converge_now) {
    o.decision = decide(t->state, *env, deps_.clock.now());
    return o;
  }
  return converge(*env, std::move(t->state), std::move(o), dry_run);
}

Result<Outcome> Controller::handle_deployment(DeploymentEvent event, bool dry_run,
                                              bool converge_now) {
  Outcome o;
  auto route = event.environment.empty()
                   ? route_deployment(config_.routes, event.application, event.deployment_group)
                   : std::optional<RouteMatch>(RouteMatch{event.environment, 0});
  const LogFields where{{"deployment_id", event.deployment_id.substr(0, 100)},
                        {"application", event.application.substr(0, 100)},
                        {"deployment_group", event.deployment_group.substr(0, 100)}};
  if (auto st = check_deployment_event(event); !st) {
    o.ignored = true;  // malformed input: logged and acknowledged, nothing kept
    o.note = st.error().message;
    deps_.log.error("ignored: " + o.note, where);
    return o;
  }
  if (!route) {
    o.ignored = true;
    o.note = "no route matches application '" + event.application + "' and deployment group '" +
             event.deployment_group + "'";
    deps_.log.warn("ignored: " + o.note, where);
    return o;
  }
  const EnvironmentConfig* env = config_.environment(route->environment);
  if (env == nullptr) {
    o.ignored = true;
    o.note = event.environment.empty()
                 ? "route " + std::to_string(route->route_index + 1) + " maps to environment '" +
                       route->environment + "', which is not configured"
                 : "environment '" + route->environment + "' is not configured";
    deps_.log.warn("ignored: " + o.note, where);
    return o;
  }
  o.environment = env->name;
  if (!event.creator && deps_.lookup != nullptr) {
    auto info = deps_.lookup->get_deployment(event.deployment_id);
    if (info) {
      event.creator = info->creator;
      if (!event.rollback_of) event.rollback_of = info->rollback_of;
    } else {
      LogFields f = where;
      f.emplace_back("error", info.error().message);
      deps_.log.warn("creator lookup failed; the environment's unknown_creator policy applies", f);
    }
  }
  auto t = update(
      *env,
      [&](const EnvState& s, Time now) { return apply_deployment_event(s, event, *env, now); },
      dry_run);
  if (!t) return t.error();
  o.recorded = t->changed && !dry_run;
  o.note = t->note;
  if (!t->note.empty()) deps_.log.info(t->note, env_fields(env->name));
  if (!converge_now) {
    o.decision = decide(t->state, *env, deps_.clock.now());
    return o;
  }
  return converge(*env, std::move(t->state), std::move(o), dry_run);
}

Result<Outcome> Controller::tick(const std::string& environment, bool dry_run) {
  const EnvironmentConfig* env = config_.environment(environment);
  if (env == nullptr) return Error::not_found("no environment '" + environment + "' configured");
  std::vector<DeploymentInfo> infos;
  if (deps_.lookup != nullptr) {
    auto loaded = deps_.store.load(environment);
    if (!loaded) return loaded.error().with_context("store: load " + environment);
    for (const auto& [id, r] : loaded->deployments) {
      const bool active = !is_terminal(r.status) && !r.expired && !r.dismissed;
      if (!active && r.creator) continue;
      if (!r.codedeploy) continue;  // a pipeline's deployment: CodeDeploy does not know it
      auto info = deps_.lookup->get_deployment(id);
      if (info) {
        infos.push_back(std::move(*info));
      } else {
        deps_.log.warn("lookup failed", {{"deployment_id", id}, {"error", info.error().message}});
      }
    }
  }
  auto t = update(
      *env,
      [&](const EnvState& s, Time now) {
        Transition merged{s, {}, false, ""};
        for (const auto& info : infos) {
          Transition one = apply_lookup(merged.state, info, now);
          merged.state = std::move(one.state);
          merged.audit.insert(merged.audit.end(), one.audit.begin(), one.audit.end());
          merged.changed = merged.changed || one.changed;
        }
        return merged;
      },
      dry_run);
  if (!t) return t.error();
  Outcome o;
  o.environment = environment;
  o.recorded = t->changed && !dry_run;
  return converge(*env, std::move(t->state), std::move(o), dry_run);
}

Result<Outcome> Controller::reconcile(const std::string& environment, bool dry_run) {
  const EnvironmentConfig* env = config_.environment(environment);
  if (env == nullptr) return Error::not_found("no environment '" + environment + "' configured");
  auto loaded = deps_.store.load(environment);
  if (!loaded) return loaded.error().with_context("store: load " + environment);
  Outcome o;
  o.environment = environment;
  return converge(*env, std::move(*loaded), std::move(o), dry_run);
}

Result<Lease> Controller::take_lease(const std::string& environment) {
  const Time now = deps_.clock.now();
  auto lease = deps_.store.acquire_lease(environment, deps_.holder, now, now + config_.store.lease);
  if (!lease) return lease.error().with_context("store: lease of " + environment);
  return lease;
}

// Only the holder of the environment's lease touches its backend. A process that finds the
// lease taken leaves its recorded change to the holder, which looks at the ledger once more
// after giving the lease up: whatever was recorded before that look is applied by the holder,
// and whatever comes after finds the lease free.
// A failed convergence is announced once per run of failures, and once more when the run
// has lasted notifications.stuck_after (FailureTracker). Losing a race (kConflict: another
// process holds the lease or kept changing the ledger) is not a failure of the switch.
Result<Outcome> Controller::converge(const EnvironmentConfig& env, EnvState state, Outcome outcome,
                                     bool dry_run) {
  const bool wanted_on = decide(state, env, deps_.clock.now()).on;
  auto done = converge_passes(env, std::move(state), std::move(outcome), dry_run);
  if (dry_run) return done;
  if (done) {
    if (!done->deferred) failures_.succeeded(env.name);
  } else if (done.error().code != ErrorCode::kConflict) {
    if (auto n = failures_.failed(env.name, wanted_on, done.error().message, deps_.clock.now())) {
      announce(*n);
    }
  }
  return done;
}

Result<Outcome> Controller::converge_passes(const EnvironmentConfig& env, EnvState state,
                                            Outcome outcome, bool dry_run) {
  if (dry_run) return converge_leased(env, std::move(state), std::move(outcome), true);
  std::optional<Error> failure;
  for (int pass = 0; pass < kConvergeRounds; ++pass) {
    const Decision attempted = decide(state, env, deps_.clock.now());
    auto lease = take_lease(env.name);
    if (!lease) return lease.error();
    if (lease->holder != deps_.holder) {
      outcome.decision = decide(state, env, deps_.clock.now());
      outcome.deferred = true;
      outcome.note = lease->holder + " is switching " + env.name + " (lease until " +
                     format_iso8601(lease->until) + ") and applies this when it is done";
      deps_.log.info(outcome.note, env_fields(env.name));
      return outcome;
    }
    // A copy: after a failed pass that is retried, the caller's fields must still be there.
    auto done = converge_leased(env, std::move(state), Outcome{outcome}, false);
    if (auto st = deps_.store.release_lease(env.name, deps_.holder); !st) {
      deps_.log.warn("could not give the switching lease up; it runs out by itself",
                     {{"environment", env.name}, {"error", st.error().message}});
    }
    // Whatever happened, look at the ledger once more: a change another process recorded
    // while this one held the lease was left to this one, failed convergence or not.
    auto loaded = deps_.store.load(env.name);
    if (!done) {
      if (!loaded || same_decision(decide(*loaded, env, deps_.clock.now()), attempted)) {
        return done.error();  // nothing new to apply: the error stands, the caller retries
      }
      deps_.log.warn("convergence failed, and the ledger changed meanwhile: applying that",
                     {{"environment", env.name}, {"error", done.error().message}});
      failure = done.error();
      state = std::move(*loaded);
      continue;
    }
    outcome = std::move(*done);
    if (!loaded) return loaded.error().with_context("store: load " + env.name);
    if (same_decision(decide(*loaded, env, deps_.clock.now()), outcome.decision)) return outcome;
    state = std::move(*loaded);
  }
  if (failure) return *failure;
  return Error::conflict(env.name + ": the ledger kept changing while the backend converged");
}

Result<Outcome> Controller::converge_leased(const EnvironmentConfig& env, EnvState state,
                                            Outcome outcome, bool dry_run) {
  auto backend = deps_.backends.make(env);
  if (!backend) return backend.error().with_context("backend for " + env.name);
  Backend& b = **backend;
  for (int round = 0; round < kConvergeRounds; ++round) {
    const Decision decision = decide(state, env, deps_.clock.now());
    outcome.decision = decision;
    const PageContext page{decision.page_message, decision.expected_end};
    std::vector<Step> applied;
    bool stale = false;
    int steps = 0;
    int conflicts = 0;
    for (;; ++steps) {
      auto observed = b.observe();
      if (!observed) return observed.error().with_context("observe " + b.describe());
      auto todo = plan(decision.on, *observed, page);
      if (todo.empty()) break;
      if (dry_run) {
        outcome.planned = std::move(todo);
        return outcome;
      }
      if (steps == kMaxSteps) {
        return Error::internal(b.describe() + " did not converge after " +
                               std::to_string(kMaxSteps) + " steps");
      }
      auto lease = take_lease(env.name);  // renewed before every step
      if (!lease) return lease.error();
      if (lease->holder != deps_.holder) {
        return Error::conflict("lost the switching lease of " + env.name + " to " + lease->holder +
                               "; stopped before " + describe(todo.front()));
      }
      // The decision may have gone stale during the last step (a wait for health checks can
      // take minutes): check it against the ledger before every change to the backend, and
      // re-plan from a fresh observation when it moved.
      auto fresh = deps_.store.load(env.name);
      if (!fresh) return fresh.error().with_context("store: load " + env.name);
      const Decision current = decide(*fresh, env, deps_.clock.now());
      state = std::move(*fresh);
      if (!same_decision(current, decision)) {
        deps_.log.info("the decision changed during the switch; planning again",
                       env_fields(env.name));
        stale = true;
        break;
      }
      LogFields f = env_fields(env.name);
      f.emplace_back("step", describe(todo.front()));
      f.emplace_back("backend", b.describe());
      if (auto st = b.apply(todo.front()); !st) {
        f.emplace_back("error", st.error().message);
        // Lost a write race: nothing was written. Observe again and plan from that, never
        // write over what the other writer did.
        if (st.error().code == ErrorCode::kConflict && ++conflicts < kStepConflicts) {
          deps_.log.warn("backend step lost a write race; observing again", f);
          back_off(conflicts);
          continue;
        }
        deps_.log.error("backend step failed", f);
        return st.error().with_context(describe(todo.front()) + " on " + b.describe());
      }
      conflicts = 0;
      deps_.log.info("backend step applied", f);
      applied.push_back(std::move(todo.front()));
    }
    outcome.applied.insert(outcome.applied.end(), applied.begin(), applied.end());
    if (dry_run) return outcome;
    if (stale) continue;
    // Record what the backend now is, unless the ledger moved on meanwhile: then decide again.
    const bool switched =
        !applied.empty() || state.applied.on != decision.on || !state.applied.since;
    // Announced: a switch this process made, or one found made (a process that died between
    // its steps and this record); not the first record of a backend that already was so.
    std::optional<Notice> notice;
    bool recorded_already = false;
    auto t = update(
        env,
        [&](const EnvState& s, Time now) {
          notice.reset();  // from an attempt that lost a compare-and-set
          recorded_already = false;
          Transition r{s, {}, false, ""};
          if (s.version != state.version && decide(s, env, now).on != decision.on) return r;
          if (!switched) return r;
          // The switch was recorded after we read the ledger: only the holder records one, so
          // it is our own write whose answer was lost (the store's retry then finds the version
          // moved). It stands; a second "switched" line would be a switch that never happened.
          if (s.version != state.version && s.applied.since && s.applied.on == decision.on &&
              s.applied.reason == decision.reason_text() &&
              (s.applied.since != state.applied.since || state.applied.on != decision.on)) {
            recorded_already = true;
            if (!applied.empty() || (state.applied.since && state.applied.on != decision.on)) {
              notice = switch_notice(s, env, decision, *s.applied.since);
            }
            return r;
          }
          r.state.applied = Applied{decision.on, now, decision.reason_text()};
          r.changed = true;
          const std::string what = std::string("maintenance ") + (decision.on ? "on" : "off");
          std::string message = applied.empty() ? what + " (" + b.describe() + " already was)"
                                                : what + " via " + b.describe();
          if (decision.on) message += ": " + decision.reason_text();
          r.audit.push_back(AuditEntry{now, env.name, "switched", message, "", ""});
          if (!applied.empty() || (s.applied.since && s.applied.on != decision.on)) {
            notice = switch_notice(r.state, env, decision, now);
          }
          return r;
        },
        false);
    if (!t) return t.error();
    if (notice && (t->changed || recorded_already)) announce(*notice);
    if (t->state.version == state.version ||
        decide(t->state, env, deps_.clock.now()).on == decision.on) {
      return outcome;
    }
    state = std::move(t->state);
  }
  return Error::conflict(env.name + ": the ledger kept changing while the backend converged");
}

}  // namespace intermission::core
