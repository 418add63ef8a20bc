// The controller: the one place where an input becomes a stored decision and a converged
// backend. It reaches the world only through the interfaces it is given (store, backends,
// clock, log, lookup), so every path through it is unit-tested with fakes.
#pragma once

#include <string>
#include <vector>

#include "core/backend.h"
#include "core/config.h"
#include "core/event.h"
#include "core/ledger.h"
#include "core/log.h"
#include "core/lookup.h"
#include "core/notice.h"
#include "core/random.h"
#include "core/store.h"

namespace intermission::core {

// Attempts at a compare-and-set before giving up; each retry re-reads and re-decides.
inline constexpr int kCasAttempts = 32;
// Between attempts the controller pauses for a random time ("full jitter") of up to
// kCasBackoffBase * 2^attempt, at most kCasBackoffCap, so that processes that collided do not
// collide again in step.
inline constexpr Duration kCasBackoffBase{10};
inline constexpr Duration kCasBackoffCap{500};

// What handling one input did.
struct Outcome {
  std::string environment;  // empty when the input was ignored before routing
  bool ignored = false;     // acknowledged and not acted on (see note)
  bool recorded = false;    // the ledger changed and was stored
  // Another process holds the environment's switching lease: it applies what was recorded
  // here when it finishes (it looks at the ledger again after giving the lease up).
  bool deferred = false;
  std::string note;         // why ignored, or why nothing changed ("duplicate delivery ...")
  Decision decision;
  std::vector<Step> planned;  // dry run: what would be applied
  std::vector<Step> applied;  // what was applied to the backend
};

class Controller {
 public:
  struct Deps {
    Store& store;
    BackendFactory& backends;
    const Clock& clock;
    Logger& log;
    DeploymentLookup* lookup = nullptr;  // optional; null = creators stay unknown
    // Who this process is, in the store's switching leases (host, pid and a random part).
    std::string holder = "intermission";
    // Pauses between compare-and-set attempts; either null = no pause (unit tests).
    Sleeper* sleeper = nullptr;
    Random* random = nullptr;
    // Told about switches, failed or stuck switches and expired deployments; null = none.
    // Only the process whose write recorded a switch (or an expiry) announces it, so a switch
    // is announced once however many processes converge. Never waited for.
    Notifier* notifier = nullptr;
  };

  // `config` and everything in `deps` must outlive the controller. Not thread-safe; use one
  // controller per thread (several processes may share a store: that is what CAS is for).
  Controller(const Config& config, Deps deps);

  // Records one input item and brings its environment's backend to the decided state.
  // dry_run: nothing is stored or applied; Outcome::planned says what would be.
  // Errors are failures worth retrying (store or backend), or kRefused for an operator command
  // check() refuses (nothing is written then); other bad input is never an error here.
  Result<Outcome> handle(const ParsedItem& item, bool dry_run = false);

  // As handle(), and a TickRequest runs tick() for every configured environment (one outcome
  // each; an environment that fails does not stop the others, its error is returned last).
  Result<std::vector<Outcome>> handle_all(const ParsedItem& item, bool dry_run = false);

  // Periodic work for one environment: ends expired holds and deployments, asks the lookup
  // about deployments still active, then reconciles.
  Result<Outcome> tick(const std::string& environment, bool dry_run = false);

  // Schedules, changes or cancels a maintenance window and brings the backend to the decided
  // state (converge_now false: records only, like record()). A refused window is an error
  // (kRefused, or kNotFound for an unknown id) and changes nothing; Outcome::note is the
  // window's id.
  Result<Outcome> handle_window(const WindowCommand& command, bool dry_run = false,
                                bool converge_now = true);

  // Records one input item in the ledger without touching the backend (the daemon answers
  // SNS as soon as the event is safe, then converges with reconcile()). Outcome::environment
  // says which environment to reconcile; empty when the item was ignored.
  Result<Outcome> record(const ParsedItem& item);

  // Whether `item` would be refused (kRefused, with the reason) rather than acted on: an
  // operator command that check_operator_command refuses now. handle() and record() check this
  // themselves; a front end with several items checks them all first, to act on none of a
  // batch with a refused command in it.
  Status check(const ParsedItem& item) const;

  // Brings the backend to the decided state without recording any input.
  Result<Outcome> reconcile(const std::string& environment, bool dry_run = false);

 private:
  template <class Fn>
  Result<Transition> update(const EnvironmentConfig& env, Fn&& change, bool dry_run);
  Result<Outcome> converge(const EnvironmentConfig& env, EnvState state, Outcome outcome,
                           bool dry_run);
  Result<Outcome> converge_passes(const EnvironmentConfig& env, EnvState state, Outcome outcome,
                                  bool dry_run);
  void announce(const Notice& notice);
  Result<Outcome> converge_leased(const EnvironmentConfig& env, EnvState state, Outcome outcome,
                                  bool dry_run);
  Result<Lease> take_lease(const std::string& environment);
  Result<Outcome> handle_item(const ParsedItem& item, bool dry_run, bool converge_now);
  Result<Outcome> handle_deployment(DeploymentEvent event, bool dry_run, bool converge_now);
  void log_audit(const std::vector<AuditEntry>& audit);
  void back_off(int attempt);

  const Config& config_;
  Deps deps_;
  FailureTracker failures_;
};

}  // namespace intermission::core
