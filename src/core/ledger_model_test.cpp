// The ledger's rules stated a second time, plainly (a reference model written from
// docs/ledger.md, sharing no code with ledger.cpp), and a seeded generator that feeds the same
// random inputs to the real controller (store, codec and backend fakes included) and to the
// model, comparing the decision after every step.
//
// Reproducible: the seed of a failing case is printed; INTERMISSION_MODEL_SEED=<seed> replays
// it. INTERMISSION_MODEL_CASES=<n> runs more and INTERMISSION_MODEL_FIRST_SEED=<s> starts
// elsewhere (`make fuzz` does both). Cases it finds are kept as regression tests in
// ledger_test.cpp.
#include "core/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/controller.h"
#include "core/state_codec.h"
#include "testing/fakes.h"

namespace intermission::core {
namespace {

using namespace intermission::testing;  // NOLINT
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// ---------------------------------------------------------------------------------------------
// The model. One environment; every rule is one short statement.

struct ModelDeployment {
  DeploymentStatus status = DeploymentStatus::kCreated;
  Time first_seen{};
  std::optional<Time> ended_at, started, finished;  // ours; theirs (start, end)
  std::optional<std::string> creator, rollback_of;
  bool expired = false, dismissed = false;
};

struct ModelWindow {
  Time start{}, end{};
};

struct Model {
  EnvironmentConfig env;
  std::map<std::string, ModelDeployment> deployments;
  std::optional<bool> hold_on;
  std::optional<Time> hold_until;
  std::map<std::string, ModelWindow> windows;
  int window_ids = 0;

  static bool terminal(DeploymentStatus s) {
    return s == DeploymentStatus::kSucceeded || s == DeploymentStatus::kFailed ||
           s == DeploymentStatus::kStopped;
  }
  static int order(DeploymentStatus s) {  // Created < Queued < InProgress < Baking = Ready
    const int o[] = {0, 1, 2, 3, 3, 9, 9, 9};
    return o[static_cast<int>(s)];
  }
  bool skipped(const ModelDeployment& d) const {
    if (!d.creator) return env.unknown_creator == UnknownCreatorPolicy::kIgnore;
    return std::count(env.skip_creators.begin(), env.skip_creators.end(), *d.creator) > 0;
  }

  // Time passes: a hold ends at its `until`; an active deployment expires max_duration after
  // its own start (when known and not after we first saw it), else after we first saw it.
  void tick(Time now) {
    if (hold_on && hold_until && *hold_until <= now) hold_on.reset(), hold_until.reset();
    std::erase_if(windows, [now](const auto& w) { return w.second.end <= now; });
    for (auto& [id, d] : deployments) {
      const Time since = d.started ? std::min(*d.started, d.first_seen) : d.first_seen;
      if (!terminal(d.status) && !d.dismissed && since + env.max_duration <= now) {
        d.expired = true;
      }
    }
  }

  // An event, and time's effects on what it taught (an earlier start may make a deployment
  // already past max_duration).
  void event(const DeploymentEvent& e, Time now) {
    tick(now);
    record(e, now);
    tick(now);
  }

  void record(const DeploymentEvent& e, Time now) {
    auto found = deployments.find(e.deployment_id);
    if (found == deployments.end()) {  // new: counts from now, unless it is already old
      ModelDeployment d;
      d.status = e.status;
      d.first_seen = now;
      d.creator = e.creator;
      d.rollback_of = e.rollback_of;
      if (terminal(e.status)) d.ended_at = now, d.finished = e.time;
      if (!terminal(e.status)) d.started = e.time;
      d.expired = !terminal(e.status) && e.time && *e.time + env.max_duration <= now;
      deployments[e.deployment_id] = d;
      return;
    }
    ModelDeployment& d = found->second;
    if (!terminal(e.status) && e.time && (!d.started || *e.time < *d.started)) d.started = e.time;
    if (terminal(d.status)) return;  // a final status is final
    if (terminal(e.status) || order(e.status) > order(d.status)) {
      d.status = e.status;
      if (terminal(e.status)) d.ended_at = now, d.finished = e.time;
    }
    if (!d.rollback_of) d.rollback_of = e.rollback_of;
    if (!d.creator) d.creator = e.creator;
  }

  void command(const OperatorCommand& c, Time now) {
    tick(now);
    std::optional<Time> until = c.until;
    if (!until && c.duration) until = std::min(now + *c.duration, kLatestTime);
    if (c.action == OperatorAction::kOn) {
      hold_on = true, hold_until = until;
      return;
    }
    for (auto& [id, d] : deployments) {
      const bool failed =
          d.status == DeploymentStatus::kFailed || d.status == DeploymentStatus::kStopped;
      if (!terminal(d.status) || failed) d.dismissed = true;
    }
    // Off ends the window in progress; windows to come stay.
    std::erase_if(windows,
                  [now](const auto& w) { return w.second.start <= now && now < w.second.end; });
    hold_on.reset(), hold_until.reset();
    if (until) hold_on = false, hold_until = until;
  }

  // A window: refused when it would start in the past (only a new start), end in the past, not
  // end after its start, start or last more than 36500 days, or be one too many. Returns
  // whether it was accepted (time passes first either way).
  bool window(const WindowCommand& c, Time now) {
    tick(now);
    auto fits = [now](ModelWindow w, bool new_start) {
      if (w.end <= w.start || w.end <= now || (new_start && w.start < now)) return false;
      return w.start - now <= kLongestDuration && w.end - w.start <= kLongestDuration &&
             w.end <= kLatestTime;
    };
    std::optional<Time> start = c.start;
    if (!start && c.start_in) start = now + *c.start_in;
    if (c.action == WindowAction::kSchedule) {
      if (!start || windows.size() >= kMaxWindows) return false;
      ModelWindow w{*start, *start};
      if (c.end)
        w.end = *c.end;
      else if (c.duration)
        w.end = *start + *c.duration;
      else
        return false;
      if (!fits(w, true)) return false;
      windows["w" + std::to_string(++window_ids)] = w;
      return true;
    }
    auto found = windows.find(c.id);
    if (found == windows.end()) return false;
    if (c.action == WindowAction::kCancel) {
      windows.erase(found);
      return true;
    }
    ModelWindow w = found->second;
    if (start && w.start <= now) return false;  // a started window keeps its start
    if (start) w.start = *start;
    if (c.end)
      w.end = *c.end;
    else if (c.duration)
      w.end = w.start + *c.duration;
    if (!fits(w, start.has_value())) return false;
    found->second = w;
    return true;
  }

  // `later` began after `failed` ended: by their own times if both are known, else by ours.
  static bool began_after(const ModelDeployment& later, const ModelDeployment& failed) {
    if (later.started && failed.finished) return *later.started >= *failed.finished;
    return failed.ended_at && later.first_seen >= *failed.ended_at;
  }

  bool taken_over(const std::string& id, bool by_success_only) const {
    for (const auto& [other_id, o] : deployments) {
      if (other_id == id || skipped(o)) continue;
      if (o.rollback_of != id && !began_after(o, deployments.at(id))) continue;
      if (!by_success_only || o.status == DeploymentStatus::kSucceeded) return true;
    }
    return false;
  }

  bool counts(const std::string& id, Time now) const {
    const ModelDeployment& d = deployments.at(id);
    if (d.dismissed || d.expired || skipped(d)) return false;
    if (!terminal(d.status)) return true;
    if (d.status == DeploymentStatus::kSucceeded) return false;
    if (env.failure_policy == FailurePolicy::kHold) return !taken_over(id, true);
    // Grace from the failure's own end when known (never later than we heard of it).
    const Time from = d.finished ? std::min(*d.finished, *d.ended_at) : *d.ended_at;
    return !taken_over(id, false) && now < from + env.failure_grace;
  }

  bool on(Time now) const {
    if (hold_on && (!hold_until || *hold_until > now)) return *hold_on;
    for (const auto& [id, w] : windows) {
      if (w.start <= now && now < w.end) return true;
    }
    for (const auto& [id, d] : deployments) {
      if (counts(id, now)) return true;
    }
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// The generator.

const std::vector<std::string> kEnvironments = {"prod", "staging"};
const std::vector<std::string> kGroups = {"prod-web", "prod-api", "staging-web"};

std::string environment_of(const std::string& group) { return group.substr(0, group.find('-')); }

struct PlannedDeployment {
  std::string id, group;
  std::optional<std::string> creator;  // what CodeDeploy would say
  bool creator_on_events = false;      // the source carries it (the webhook may)
  std::optional<std::string> rollback_of;
  std::vector<DeploymentStatus> path;  // the statuses it goes through, in order
  std::size_t next = 0;
};

struct Case {
  std::uint64_t seed;
  std::mt19937_64 random;
  Config config;
  MemoryStore store;
  FakeBackendFactory backends;
  ManualClock clock;
  RecordingLogger log;
  std::map<std::string, Model> models;
  std::vector<PlannedDeployment> planned;
  std::vector<DeploymentEvent> pending;    // happened, not delivered yet
  std::vector<DeploymentEvent> delivered;  // for duplicates
  Time start;
  std::string trace;  // what happened, printed when a check fails
  int messages = 0;
  int on_checks = 0, off_checks = 0;
  int windows_commanded = 0;

  explicit Case(std::uint64_t s) : seed(s), random(s) {
    config.file = "model.yaml";
    config.routes = {{"*", "*-*", "{1}", {}}};
    EnvironmentConfig env;
    env.backend.type = "fake";
    env.failure_policy = pick(2) == 0 ? FailurePolicy::kLift : FailurePolicy::kHold;
    env.failure_grace = minutes(1 + span(30));
    env.max_duration = minutes(10 + span(180));
    env.unknown_creator =
        pick(4) == 0 ? UnknownCreatorPolicy::kIgnore : UnknownCreatorPolicy::kMaintain;
    for (const auto& name : kEnvironments) {
      env.name = name;
      config.environments[name] = env;
      models[name].env = env;
    }
    clock.set(from_epoch_ms(1'700'000'000'000) + minutes(span(100000)));
    start = clock.now();
  }

  std::uint64_t pick(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(random);
  }
  std::int64_t span(std::uint64_t n) { return static_cast<std::int64_t>(pick(n)); }
  bool chance(int percent) { return pick(100) < static_cast<std::uint64_t>(percent); }

  void plan_deployment() {
    PlannedDeployment d;
    d.id = "d-" + std::to_string(planned.size());
    d.group = kGroups[pick(kGroups.size())];
    const int who = static_cast<int>(pick(4));
    if (who == 1) d.creator = "user";
    if (who == 2) d.creator = "autoscaling";
    if (who == 3) d.creator = "CodeDeployRollback";
    d.creator_on_events = d.creator && chance(70);
    for (const auto& p : planned) {
      if (p.group == d.group && chance(30)) d.rollback_of = p.id;
    }
    d.path = {DeploymentStatus::kCreated};
    if (chance(70)) d.path.push_back(DeploymentStatus::kInProgress);
    const int end = static_cast<int>(pick(10));
    if (end < 5)
      d.path.push_back(DeploymentStatus::kSucceeded);
    else if (end < 8)
      d.path.push_back(DeploymentStatus::kFailed);
    else if (end < 9)
      d.path.push_back(DeploymentStatus::kStopped);
    planned.push_back(d);
  }

  // The next thing that happens to a planned deployment, into the delivery queue.
  void happen() {
    std::vector<PlannedDeployment*> open;
    for (auto& p : planned) {
      if (p.next < p.path.size()) open.push_back(&p);
    }
    if (open.empty() || (planned.size() < 24 && chance(30))) {
      plan_deployment();
      open = {&planned.back()};
    }
    PlannedDeployment& p = *open[pick(open.size())];
    DeploymentEvent e;
    e.source = chance(50) ? EventSource::kEventBridge : EventSource::kCodeDeploy;
    e.application = "shop";
    e.deployment_group = chance(3) ? "nodash" : p.group;
    e.deployment_id = p.id;
    e.status = p.path[p.next++];
    if (p.creator_on_events) e.creator = p.creator;
    if (p.rollback_of && chance(60)) e.rollback_of = p.rollback_of;
    if (chance(90)) e.time = clock.now() - seconds(span(30));
    e.message_id = "m-" + std::to_string(messages++);
    pending.push_back(e);
  }

  // The same input to the controller and to the model.
  Result<Outcome> deliver(const DeploymentEvent& e, Controller& c) {
    trace += "  deliver " + e.deployment_id + " " + std::string(to_string(e.status)) + " (" +
             e.deployment_group + ", " + e.message_id +
             (e.time ? ", at " + format_iso8601(*e.time) : "") + ") at " +
             format_iso8601(clock.now()) + "\n";
    if (e.deployment_group.find('-') != std::string::npos) {
      models[environment_of(e.deployment_group)].event(e, clock.now());
    }
    return c.handle(e);
  }

  std::string step(Controller& c, std::string& touched) {
    const int what = static_cast<int>(pick(100));
    if (what < 30) {
      happen();
      return "";
    }
    if (what < 60 && !pending.empty()) {  // deliver, mostly in order, sometimes late
      const std::size_t i = chance(70) ? 0 : pick(pending.size());
      const DeploymentEvent e = pending[i];
      pending.erase(pending.begin() + static_cast<long>(i));
      delivered.push_back(e);
      touched = e.deployment_group.find('-') != std::string::npos
                    ? environment_of(e.deployment_group)
                    : "";
      auto o = deliver(e, c);
      return o ? "" : "handle failed: " + o.error().message;
    }
    if (what < 66 && !delivered.empty()) {  // a duplicate delivery
      const DeploymentEvent e = delivered[pick(delivered.size())];
      touched = e.deployment_group.find('-') != std::string::npos
                    ? environment_of(e.deployment_group)
                    : "";
      auto o = deliver(e, c);
      return o ? "" : "duplicate failed: " + o.error().message;
    }
    if (what < 74) {  // an operator
      OperatorCommand cmd;
      cmd.environment = kEnvironments[pick(kEnvironments.size())];
      cmd.action = chance(50) ? OperatorAction::kOn : OperatorAction::kOff;
      cmd.who = "op";
      const int len = static_cast<int>(pick(4));
      if (len == 1) cmd.duration = minutes(1 + span(120));
      if (len == 2) cmd.until = clock.now() + minutes(1 + span(120));
      trace += std::string("  operator ") + (cmd.action == OperatorAction::kOn ? "on " : "off ") +
               cmd.environment + (cmd.duration ? " for " + format_duration(*cmd.duration) : "") +
               (cmd.until ? " until " + format_iso8601(*cmd.until) : "") + " at " +
               format_iso8601(clock.now()) + "\n";
      models[cmd.environment].command(cmd, clock.now());
      touched = cmd.environment;
      auto o = c.handle(cmd);
      return o ? "" : "operator failed: " + o.error().message;
    }
    if (what < 82) {  // a maintenance window: new, changed, cancelled; often overlapping
      WindowCommand cmd;
      cmd.environment = kEnvironments[pick(kEnvironments.size())];
      cmd.who = "op";
      const int kind = static_cast<int>(pick(10));
      cmd.action = kind < 6 ? WindowAction::kSchedule
                            : (kind < 8 ? WindowAction::kChange : WindowAction::kCancel);
      cmd.id = "w" + std::to_string(1 + pick(8));
      const bool new_start = cmd.action == WindowAction::kSchedule || chance(40);
      if (new_start) {
        Duration ahead = minutes(span(90)) - (chance(10) ? minutes(1 + span(10)) : Duration(0));
        if (chance(3)) ahead = kLongestDuration + hours(1);
        if (chance(50)) {
          cmd.start = clock.now() + ahead;
        } else {
          cmd.start_in = ahead;
        }
      }
      if (cmd.action == WindowAction::kSchedule || chance(60)) {
        const Duration length = minutes(span(60)) - (chance(5) ? minutes(span(30)) : Duration(0));
        if (chance(50)) {
          cmd.duration = length;
        } else if (cmd.start) {
          cmd.end = *cmd.start + length;
        } else {
          cmd.end = clock.now() + length;
        }
      }
      const char* names[] = {"schedule", "change", "cancel"};
      trace += std::string("  window ") + names[static_cast<int>(cmd.action)] + " " +
               cmd.environment + " " + cmd.id +
               (cmd.start ? " at " + format_iso8601(*cmd.start) : "") +
               (cmd.start_in ? " in " + format_duration(*cmd.start_in) : "") +
               (cmd.end ? " until " + format_iso8601(*cmd.end) : "") +
               (cmd.duration ? " for " + format_duration(*cmd.duration) : "") + " at " +
               format_iso8601(clock.now()) + "\n";
      const bool accepted = models[cmd.environment].window(cmd, clock.now());
      auto o = c.handle_window(cmd);
      if (o.ok() != accepted) {
        return std::string("window command ") +
               (o.ok() ? "accepted" : "refused (" + o.error().message + ")") + ", the model " +
               (accepted ? "accepts it" : "refuses it");
      }
      if (accepted) touched = cmd.environment;
      ++windows_commanded;
      return "";
    }
    if (what < 90) {  // a tick
      const std::string name = kEnvironments[pick(kEnvironments.size())];
      trace += "  tick " + name + " at " + format_iso8601(clock.now()) + "\n";
      models[name].tick(clock.now());
      touched = name;
      auto o = c.tick(name);
      return o ? "" : "tick failed: " + o.error().message;
    }
    // Time: mostly seconds to minutes; sometimes a jump forward of hours, or back (NTP).
    Duration d = seconds(1 + span(600));
    if (chance(10)) d = minutes(30 + span(300));
    if (chance(5)) d = -minutes(1 + span(60));
    if (clock.now() + d > start + hours(24 * 5)) d = seconds(1);  // nothing is forgotten
    clock.advance(d);
    trace += "  clock " + format_iso8601(clock.now()) + "\n";
    return "";
  }

  // The checks after every step: the same decision everywhere, and a state that can be
  // stored and read back.
  std::string check(const std::string& touched) {
    for (const auto& name : kEnvironments) {
      auto s = store.load(name);
      if (!s) return "load " + name + ": " + s.error().message;
      const std::string encoded = encode_state(*s);
      if (auto st = check_state_size(*s, encoded); !st) return st.error().message;
      auto back = decode_state(encoded, name, s->version);
      if (!back) return "decode " + name + ": " + back.error().message;
      if (encode_state(*back) != encoded) return name + ": the codec does not round-trip";
      const bool real = decide(*s, config.environments.at(name), clock.now()).on;
      const bool expected = models.at(name).on(clock.now());
      ++(expected ? on_checks : off_checks);
      if (real != expected) {
        return name + ": the ledger decides " + (real ? "on" : "off") + ", the model " +
               (expected ? "on" : "off");
      }
      if (name == touched && backends.switches[name].on != expected) {
        return name + ": the backend is " + (backends.switches[name].on ? "on" : "off") +
               " after converging, the model says " + (expected ? "on" : "off");
      }
    }
    return "";
  }

  // Runs `steps` steps; returns "" or what went wrong, with the trace.
  std::string run(int steps) {
    Controller c(config, {store, backends, clock, log, nullptr, "model"});
    for (int i = 0; i < steps; ++i) {
      std::string touched;
      std::string problem;
      try {
        problem = step(c, touched);
        if (problem.empty()) problem = check(touched);
      } catch (const std::exception& e) {
        problem = std::string("threw: ") + e.what();
      }
      if (!problem.empty()) {
        return "seed " + std::to_string(seed) + ", step " + std::to_string(i) + ": " + problem +
               "\n" + trace;
      }
    }
    return "";
  }
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(LedgerModel, RandomInputsDecideAsTheModelDoes) {
  const std::uint64_t only = env_number("INTERMISSION_MODEL_SEED", 0);
  const std::uint64_t cases = only != 0 ? 1 : env_number("INTERMISSION_MODEL_CASES", 2000);
  const std::uint64_t first = env_number("INTERMISSION_MODEL_FIRST_SEED", 1000);
  long on = 0, off = 0, windows = 0;
  for (std::uint64_t i = 0; i < cases; ++i) {
    const std::uint64_t seed = only != 0 ? only : first + i;
    Case c(seed);
    const std::string problem = c.run(10 + static_cast<int>(seed % 50));
    ASSERT_EQ(problem, "") << "replay with INTERMISSION_MODEL_SEED=" << seed;
    on += c.on_checks;
    off += c.off_checks;
    windows += c.windows_commanded;
  }
  std::printf("%llu cases, %ld decisions compared: %ld on, %ld off; %ld window commands\n",
              static_cast<unsigned long long>(cases), on + off, on, off, windows);
  if (cases >= 100) {
    EXPECT_GT(windows, static_cast<long>(cases)) << "windows are exercised";
  }
  // A generator that never raised the page (or never lowered it) would prove nothing.
  EXPECT_GT(on, (on + off) / 10);
  EXPECT_GT(off, (on + off) / 10);
}

// Where the inputs carry their own times, the order they arrive in does not change the
// decision: the same deployments delivered in two random orders, minutes apart, end the same,
// under either failure policy (a failure's grace runs from its own end, not from when we
// heard of it).
TEST(LedgerModel, DeliveryOrderDoesNotMatterWhereInputsCarryTheirTimes) {
  const std::uint64_t cases = env_number("INTERMISSION_MODEL_CASES", 2000);
  const std::uint64_t first = env_number("INTERMISSION_MODEL_FIRST_SEED", 1000) + 1'000'000;
  for (std::uint64_t i = 0; i < cases; ++i) {
    std::mt19937_64 random(first + i);
    auto pick = [&random](std::uint64_t n) {
      return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(random);
    };
    auto span = [&pick](std::uint64_t n) { return static_cast<std::int64_t>(pick(n)); };
    EnvironmentConfig env;
    env.name = "prod";
    env.failure_policy = pick(2) == 0 ? FailurePolicy::kHold : FailurePolicy::kLift;
    env.failure_grace = minutes(1 + span(30));
    env.max_duration = hours(6);
    const Time t0 = from_epoch_ms(1'700'000'000'000);
    std::vector<DeploymentEvent> events;
    Time t = t0;
    Time last_end = t0;  // nothing is delivered before it happened
    const int n = 1 + static_cast<int>(pick(5));
    for (int d = 0; d < n; ++d) {
      const std::string id = "d-" + std::to_string(d);
      const Time begin = t + minutes(span(20)) - minutes(10);  // may overlap the previous one
      const Time end = begin + minutes(1 + span(20));
      t = end;
      last_end = std::max(last_end, end);
      DeploymentEvent start;
      start.deployment_id = id;
      start.application = "shop";
      start.deployment_group = "prod-web";
      start.status = pick(2) == 0 ? DeploymentStatus::kCreated : DeploymentStatus::kInProgress;
      start.time = begin;
      start.message_id = id + "-start";
      if (d > 0 && pick(3) == 0) start.rollback_of = "d-" + std::to_string(d - 1);
      events.push_back(start);
      if (pick(5) == 0) continue;  // still running
      DeploymentEvent finish = start;
      const int how = static_cast<int>(pick(3));
      finish.status = how == 0
                          ? DeploymentStatus::kSucceeded
                          : (how == 1 ? DeploymentStatus::kFailed : DeploymentStatus::kStopped);
      finish.time = end;
      finish.message_id = id + "-end";
      events.push_back(finish);
    }
    // Delivered from a minute after the last end, a few minutes apart (SNS retries, a queue
    // drained late); decided once all have arrived, at the same moment for every order.
    const Time delivered = last_end + minutes(1);
    const Time decided = delivered + minutes(4 * static_cast<std::int64_t>(events.size()));
    auto replay = [&](std::vector<DeploymentEvent> order) {
      std::shuffle(order.begin(), order.end(), random);
      EnvState s;
      s.environment = "prod";
      Time now = delivered;
      std::string trace;
      for (const auto& e : order) {
        s = apply_deployment_event(s, e, env, now).state;
        trace += " " + e.message_id;
        now += minutes(1 + span(3));
      }
      return std::make_pair(decide(s, env, decided).on, trace);
    };
    const auto a = replay(events);
    const auto b = replay(events);
    ASSERT_EQ(a.first, b.first) << "seed " << first + i << " ("
                                << (env.failure_policy == FailurePolicy::kHold ? "hold" : "lift")
                                << "): order" << a.second << " vs" << b.second;
  }
}

}  // namespace
}  // namespace intermission::core
