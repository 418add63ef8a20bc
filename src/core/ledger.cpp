#include "core/ledger.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "core/sns.h"
#include "core/text.h"

namespace intermission::core {

static_assert(kReplayWindow >= kSnsMaxAge + 2 * kSnsMaxSkew,
              "a message SNS may still deliver must find its deployment in the ledger");

namespace {

// Order of the non-terminal statuses: a later one replaces an earlier one, never the reverse.
int rank(DeploymentStatus s) {
  switch (s) {
    case DeploymentStatus::kCreated: return 0;
    case DeploymentStatus::kQueued: return 1;
    case DeploymentStatus::kInProgress: return 2;
    case DeploymentStatus::kBaking: return 3;
    case DeploymentStatus::kReady: return 3;
    case DeploymentStatus::kSucceeded:
    case DeploymentStatus::kFailed:
    case DeploymentStatus::kStopped: return 10;
  }
  return 0;
}

bool failed(DeploymentStatus s) {
  return s == DeploymentStatus::kFailed || s == DeploymentStatus::kStopped;
}

bool skipped_creator(const DeploymentRecord& r, const EnvironmentConfig& env) {
  if (!r.creator) return env.unknown_creator == UnknownCreatorPolicy::kIgnore;
  return std::find(env.skip_creators.begin(), env.skip_creators.end(), *r.creator) !=
         env.skip_creators.end();
}

// Since when a deployment has been active, for max_duration: its own start when the input
// said it (and not after we first saw it, whatever a skewed clock claims), else our first sight.
Time active_since(const DeploymentRecord& r) {
  return r.started ? std::min(*r.started, r.first_seen) : r.first_seen;
}

std::string describe(const DeploymentRecord& r) {
  return "deployment " + r.id + " (" + r.application + "/" + r.deployment_group + ")";
}

AuditEntry entry(const EnvState& s, Time now, std::string kind, std::string message,
                 std::string deployment_id = "", std::string who = "") {
  return AuditEntry{now,
                    s.environment,
                    std::move(kind),
                    std::move(message),
                    std::move(who),
                    std::move(deployment_id)};
}

void remember_message(EnvState& s, const std::string& message_id) {
  if (message_id.empty()) return;
  s.recent_message_ids.push_back(message_id);
  while (s.recent_message_ids.size() > kRecentMessageIds) s.recent_message_ids.pop_front();
}

// When a failure's grace (policy lift) began: when the deployment ended by its own time, if
// the event said (not later than we heard of it, whatever the clocks), else when we heard.
// A failure delivered late has had part of its grace already, whatever order it came in.
Time grace_start(const DeploymentRecord& r) {
  return r.finished ? std::min(*r.finished, *r.ended_at) : *r.ended_at;
}

// Whether `other` began after `failed_one` ended: by the deployments' own times when both are
// known, else by when we saw them.
bool began_after(const DeploymentRecord& other, const DeploymentRecord& failed_one) {
  if (other.started && failed_one.finished) return *other.started >= *failed_one.finished;
  return failed_one.ended_at && other.first_seen >= *failed_one.ended_at;
}

// A failed deployment is superseded by a later one: its rollback, or any deployment (not
// skipped by creator) that began after it ended. `need_success`: only a superseding deployment
// that succeeded counts (the `hold` policy lifts only when the site is known to be good again).
bool superseded(const EnvState& s, const DeploymentRecord& failed_one, const EnvironmentConfig& env,
                bool need_success) {
  for (const auto& [id, other] : s.deployments) {
    if (id == failed_one.id || skipped_creator(other, env)) continue;
    const bool later = other.rollback_of == failed_one.id || began_after(other, failed_one);
    if (!later) continue;
    if (!need_success || other.status == DeploymentStatus::kSucceeded) return true;
  }
  return false;
}

}  // namespace

bool counts(const EnvState& state, const DeploymentRecord& r, const EnvironmentConfig& env,
            Time now) {
  if (r.dismissed || r.expired || skipped_creator(r, env)) return false;
  if (!is_terminal(r.status)) return true;
  if (!failed(r.status)) return false;
  if (env.failure_policy == FailurePolicy::kHold) return !superseded(state, r, env, true);
  if (superseded(state, r, env, false)) return false;
  return r.ended_at && now < grace_start(r) + env.failure_grace;
}

Transition apply_deployment_event(const EnvState& state, const DeploymentEvent& event,
                                  const EnvironmentConfig& env, Time now) {
  Transition t{state, {}, false, ""};
  EnvState& s = t.state;
  if (!event.message_id.empty() &&
      std::find(s.recent_message_ids.begin(), s.recent_message_ids.end(), event.message_id) !=
          s.recent_message_ids.end()) {
    t.note = "duplicate delivery of message " + event.message_id;
    return t;
  }
  const std::string status{to_string(event.status)};
  auto it = s.deployments.find(event.deployment_id);
  if (it == s.deployments.end() && s.forgotten.contains(event.deployment_id)) {
    // Its record was dropped a moment ago (the count bound): this is a late or replayed
    // message of a deployment that no longer counted, not a new one.
    t.note = "late " + status + " of deployment " + event.deployment_id +
             ", already settled and forgotten";
    return t;
  }
  if (it == s.deployments.end()) {
    DeploymentRecord r;
    r.id = event.deployment_id;
    r.application = event.application;
    r.deployment_group = event.deployment_group;
    r.status = event.status;
    r.creator = event.creator;
    r.rollback_of = event.rollback_of;
    r.codedeploy = event.source != EventSource::kWebhook;
    r.first_seen = now;
    r.last_seen = now;
    if (is_terminal(event.status)) {
      r.ended_at = now;
      r.finished = event.time;
    } else {
      r.started = event.time;
    }
    std::string message =
        describe(r) + " " + status + " (from " + std::string(to_string(event.source)) + ")";
    if (r.rollback_of) message += ", rolling back " + *r.rollback_of;
    if (event.error_code) message += ", error " + *event.error_code;
    t.audit.push_back(entry(s, now, "deployment", message, r.id));
    if (!is_terminal(r.status) && event.time && *event.time + env.max_duration <= now) {
      r.expired = true;
    }
    if (r.expired && !skipped_creator(r, env)) {  // one it skips never raised the page anyway
      t.audit.push_back(entry(s, now, "expired",
                              describe(r) + " started more than max_duration (" +
                                  format_duration(env.max_duration) +
                                  ") ago: it does not raise the page",
                              r.id));
    }
    if (r.creator && skipped_creator(r, env)) {
      t.audit.push_back(
          entry(s, now, "skipped",
                describe(r) + " was created by '" + *r.creator + "': no maintenance for it", r.id));
    }
    s.deployments.emplace(r.id, std::move(r));
    t.changed = true;
  } else {
    DeploymentRecord& r = it->second;
    // The deployment's own start is its earliest non-terminal event, whenever that arrives.
    if (!is_terminal(event.status) && event.time && (!r.started || *event.time < *r.started)) {
      r.started = event.time;
      t.changed = true;
    }
    if (is_terminal(r.status)) {
      if (t.changed) {
        r.last_seen = now;
        remember_message(s, event.message_id);
        return t;
      }
      t.note = event.status == r.status
                   ? "duplicate: " + describe(r) + " is already " + status
                   : "late " + status + " for " + describe(r) + ", which already finished as " +
                         std::string(to_string(r.status)) + " (a final status is final)";
      return t;
    }
    if (is_terminal(event.status) || rank(event.status) > rank(r.status)) {
      r.status = event.status;
      if (is_terminal(event.status)) {
        r.ended_at = now;
        r.finished = event.time;
      }
      std::string message = describe(r) + " " + status;
      if (event.error_code) message += ", error " + *event.error_code;
      t.audit.push_back(entry(s, now, "deployment", message, r.id));
      t.changed = true;
    } else {
      t.note = "duplicate or late: " + describe(r) + " is already " +
               std::string(to_string(r.status)) + ", got " + status;
    }
    if (event.rollback_of && !r.rollback_of) {
      r.rollback_of = event.rollback_of;
      t.changed = true;
    }
    if (event.creator && !r.creator) {
      r.creator = event.creator;
      t.changed = true;
    }
    if (t.changed) r.last_seen = now;
  }
  if (t.changed) {
    remember_message(s, event.message_id);
    t.note.clear();
  }
  return t;
}

Transition apply_operator_command(const EnvState& state, const OperatorCommand& command, Time now) {
  Transition t{state, {}, true, ""};
  EnvState& s = t.state;
  // Kept within the times a store can write back and read (the year 9999), whatever the
  // front end let through.
  std::optional<Time> until = command.until;
  if (!until && command.duration) until = add_bounded(now, *command.duration);
  if (until) until = std::clamp(*until, kEarliestTime, kLatestTime);
  const std::string who = command.who.empty() ? "operator" : command.who;
  const std::string until_text = until ? " until " + format_iso8601(*until) : "";
  const std::string reason_text = command.reason.empty() ? "" : ": " + command.reason;
  if (command.action == OperatorAction::kOn) {
    s.hold = Hold{true, command.reason, who, now, until};
    t.audit.push_back(
        entry(s, now, "hold", "maintenance on by " + who + until_text + reason_text, "", who));
    return t;
  }
  // Off: lift now. Everything that keeps the page up today stops counting.
  std::string lifted;
  for (auto& [id, r] : s.deployments) {
    if (r.dismissed) continue;
    if (!is_terminal(r.status) || failed(r.status)) {
      r.dismissed = true;
      lifted += (lifted.empty() ? "" : ", ") + id;
    }
  }
  // A window in progress ends too: "off" during planned maintenance means it is over early.
  // Windows still to come are kept (cancel them with `schedule --cancel`).
  for (auto it = s.windows.begin(); it != s.windows.end();) {
    const Window& w = it->second;
    if (w.start <= now && now < w.end) {
      t.audit.push_back(entry(s, now, "window-ended",
                              "maintenance window " + w.id + " ended early by " + who + " (off)",
                              "", who));
      it = s.windows.erase(it);
    } else {
      ++it;
    }
  }
  if (until) {
    s.hold = Hold{false, command.reason, who, now, until};
  } else {
    s.hold.reset();
  }
  std::string message = "maintenance off by " + who + until_text + reason_text;
  if (!lifted.empty()) message += " (no longer counting " + lifted + ")";
  t.audit.insert(t.audit.begin(), entry(s, now, "lifted", message, "", who));
  return t;
}

namespace {

std::string describe(const Window& w) {
  std::string out = "maintenance window " + w.id + " (" + format_iso8601(w.start) + " to " +
                    format_iso8601(w.end) + ")";
  if (!w.reason.empty()) out += ": " + w.reason;
  return out;
}

// The refusals shared by a new window and a changed one. `start_moved`: the start is new (a
// new window, or a new start for one that has not begun), so it must not be in the past.
Status check_window(const Window& w, bool start_moved, Time now) {
  if (!within_bounds(w.start) || !within_bounds(w.end)) {
    return Error::refused("a window must lie within the years 0000-9999");
  }
  if (w.end <= w.start) {
    return Error::refused("a window must end after its start (" + format_iso8601(w.start) + " to " +
                          format_iso8601(w.end) + ")");
  }
  if (start_moved && w.start < now) {
    return Error::refused("the window would start in the past (" + format_iso8601(w.start) +
                          "; it is now " + format_iso8601(now) +
                          "); for maintenance now, use --at +0s or intermission on");
  }
  if (w.end <= now) {
    return Error::refused("the window would end in the past (" + format_iso8601(w.end) +
                          "); to end it now, cancel it");
  }
  if (w.start - now > kLongestDuration) {
    return Error::refused("the window would start too far ahead (more than " +
                          format_duration(kLongestDuration) + " from now)");
  }
  if (w.end - w.start > kLongestDuration) {
    return Error::refused("the window would be too long (more than " +
                          format_duration(kLongestDuration) + ")");
  }
  if (auto st = check_utf8(w.reason, "the window's reason"); !st) return st;
  if (auto st = check_utf8(w.who, "the window's who"); !st) return st;
  if (w.reason.size() > kMaxOperatorText || w.who.size() > kMaxOperatorText) {
    return Error::refused("a window's reason and who are at most " +
                          std::to_string(kMaxOperatorText) + " bytes each");
  }
  return {};
}

// Resolves an absolute or relative time; nullopt when neither is given.
std::optional<Time> resolve(const std::optional<Time>& at, const std::optional<Duration>& in,
                            Time base) {
  if (at) return at;
  if (in) return add_bounded(base, *in);
  return std::nullopt;
}

}  // namespace

Result<Transition> apply_window_command(const EnvState& state, const WindowCommand& command,
                                        Time now) {
  Transition t{state, {}, true, ""};
  EnvState& s = t.state;
  const std::string who = command.who.empty() ? "operator" : command.who;
  if (command.action == WindowAction::kSchedule) {
    if (s.windows.size() >= kMaxWindows) {
      return Error::refused("'" + s.environment + "' has " + std::to_string(s.windows.size()) +
                            " windows scheduled, at most " + std::to_string(kMaxWindows) +
                            " are kept: cancel one first");
    }
    Window w;
    const auto start = resolve(command.start, command.start_in, now);
    if (!start) return Error::refused("a window needs a start (--at)");
    w.start = *start;
    const auto end = resolve(command.end, command.duration, w.start);
    if (!end) return Error::refused("a window needs an end (--for or --until)");
    w.end = *end;
    w.reason = command.reason.value_or("");
    w.who = who;
    w.created = now;
    if (auto st = check_window(w, true, now); !st) return st.error();
    w.id = "w" + std::to_string(s.last_window_id + 1);
    s.last_window_id += 1;
    t.audit.push_back(
        entry(s, now, "window-scheduled", describe(w) + ", scheduled by " + who, "", who));
    if (w.start <= now) {  // "+0s": it starts now, not at the next tick
      w.started = true;
      t.audit.push_back(entry(s, now, "window-started", describe(w) + " started", "", w.who));
    }
    t.note = w.id;
    s.windows.emplace(w.id, std::move(w));
    return t;
  }
  auto it = s.windows.find(command.id);
  if (it == s.windows.end() || it->second.end <= now) {
    return Error::not_found("'" + s.environment + "' has no upcoming or active window '" +
                            command.id + "'");
  }
  Window& w = it->second;
  t.note = w.id;
  if (command.action == WindowAction::kCancel) {
    t.audit.push_back(
        entry(s, now, "window-cancelled", describe(w) + ", cancelled by " + who, "", who));
    s.windows.erase(it);
    return t;
  }
  Window changed = w;
  const auto start = resolve(command.start, command.start_in, now);
  if (start && w.start <= now) {
    return Error::refused("window " + w.id + " already started at " + format_iso8601(w.start) +
                          "; its start stays (change its end)");
  }
  if (start) changed.start = *start;
  if (auto end = resolve(command.end, command.duration, changed.start)) changed.end = *end;
  if (command.reason) changed.reason = *command.reason;
  if (auto st = check_window(changed, start.has_value(), now); !st) return st.error();
  t.audit.push_back(
      entry(s, now, "window-changed", describe(changed) + ", changed by " + who, "", who));
  w = std::move(changed);
  return t;
}

std::vector<Window> upcoming_windows(const EnvState& state, Time now) {
  std::vector<Window> out;
  for (const auto& [id, w] : state.windows) {
    if (w.end > now) out.push_back(w);
  }
  std::sort(out.begin(), out.end(), [](const Window& a, const Window& b) {
    return std::tie(a.start, a.created, a.id) < std::tie(b.start, b.created, b.id);
  });
  return out;
}

Transition apply_lookup(const EnvState& state, const DeploymentInfo& info, Time now) {
  Transition t{state, {}, false, ""};
  EnvState& s = t.state;
  auto it = s.deployments.find(info.id);
  if (it == s.deployments.end()) {
    t.note = "lookup for unknown deployment " + info.id;
    return t;
  }
  DeploymentRecord& r = it->second;
  if (info.creator && r.creator != info.creator) {
    r.creator = info.creator;
    t.audit.push_back(
        entry(s, now, "creator", describe(r) + " was created by '" + *r.creator + "'", r.id));
    t.changed = true;
  }
  if (info.rollback_of && !r.rollback_of) {
    r.rollback_of = info.rollback_of;
    t.changed = true;
  }
  if (info.status && is_terminal(*info.status) && !is_terminal(r.status)) {
    r.status = *info.status;
    r.ended_at = now;  // GetDeployment's completeTime is not read: ordering falls back to ours
    t.audit.push_back(entry(s, now, "deployment",
                            "CodeDeploy reports " + describe(r) + " " +
                                std::string(to_string(*info.status)) +
                                " (its notification was lost or is late)",
                            r.id));
    t.changed = true;
  }
  if (t.changed) r.last_seen = now;
  return t;
}

namespace {

// Drops records that no longer count: settled ones after kRetention, and the oldest beyond
// kMaxSettledRecords (remembered in `forgotten` for kReplayWindow, so that a replayed message
// of one is not taken for a new deployment). A failure that a dropped deployment had taken
// over would count again; it is dropped too (until nothing new counts), so what counts is the
// same before and after.
bool forget(EnvState& s, const EnvironmentConfig& env, Time now) {
  std::set<std::string> counting;
  std::vector<std::pair<std::pair<bool, Time>, std::string>> idle;  // (active, last_seen), id
  for (const auto& [id, r] : s.deployments) {
    if (counts(s, r, env, now)) {
      counting.insert(id);
    } else {
      idle.push_back({{!is_terminal(r.status), r.last_seen}, id});
    }
  }
  std::sort(idle.begin(), idle.end());  // finished before active, each oldest first
  const auto bytes_of = [](const DeploymentRecord& r) {
    return r.id.size() + r.application.size() + r.deployment_group.size() +
           r.creator.value_or("").size() + r.rollback_of.value_or("").size() + kRecordOverheadBytes;
  };
  std::size_t keep = idle.size();
  std::size_t kept_bytes = 0;
  for (const auto& candidate : idle) kept_bytes += bytes_of(s.deployments.at(candidate.second));
  bool changed = false;
  for (const auto& candidate : idle) {
    const std::string& id = candidate.second;
    const DeploymentRecord& r = s.deployments.at(id);
    const bool settled = is_terminal(r.status) || r.expired || r.dismissed;
    const bool aged = settled && r.last_seen + kRetention <= now;
    if (keep > kMaxSettledRecords || kept_bytes > kMaxSettledBytes || aged) {
      if (!aged) s.forgotten[id] = now;
      kept_bytes -= bytes_of(r);
      s.deployments.erase(id);
      --keep;
      changed = true;
    }
  }
  for (bool again = changed; again;) {
    again = false;
    for (auto it = s.deployments.begin(); it != s.deployments.end();) {
      if (!counting.contains(it->first) && counts(s, it->second, env, now)) {
        s.forgotten[it->first] = now;
        it = s.deployments.erase(it);
        again = true;
      } else {
        ++it;
      }
    }
  }
  // The forgotten ids: for kReplayWindow, the newest kMaxForgottenBytes at most.
  const auto expired = [now](const auto& f) { return f.second + kReplayWindow <= now; };
  if (std::erase_if(s.forgotten, expired) > 0) changed = true;
  std::size_t bytes = 0;
  for (const auto& f : s.forgotten) bytes += f.first.size() + kForgottenEntryBytes;
  while (bytes > kMaxForgottenBytes) {
    const auto oldest =
        std::min_element(s.forgotten.begin(), s.forgotten.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; });
    bytes -= oldest->first.size() + kForgottenEntryBytes;
    s.forgotten.erase(oldest);
    changed = true;
  }
  return changed;
}

}  // namespace

Transition tick(const EnvState& state, const EnvironmentConfig& env, Time now) {
  Transition t{state, {}, false, ""};
  EnvState& s = t.state;
  for (auto it = s.windows.begin(); it != s.windows.end();) {
    Window& w = it->second;
    if (w.end <= now) {
      t.audit.push_back(entry(s, now, "window-ended", describe(w) + " ended", "", w.who));
      it = s.windows.erase(it);
      t.changed = true;
      continue;
    }
    if (w.start <= now && !w.started) {
      w.started = true;
      t.audit.push_back(entry(s, now, "window-started", describe(w) + " started", "", w.who));
      t.changed = true;
    }
    ++it;
  }
  if (s.hold && s.hold->until && *s.hold->until <= now) {
    t.audit.push_back(entry(s, now, "hold-expired",
                            std::string("operator hold (maintenance ") +
                                (s.hold->on ? "on" : "off") + ") by " + s.hold->who + " expired",
                            "", s.hold->who));
    s.hold.reset();
    t.changed = true;
  }
  for (auto it = s.deployments.begin(); it != s.deployments.end();) {
    DeploymentRecord& r = it->second;
    if (!is_terminal(r.status) && !r.expired && !r.dismissed &&
        active_since(r) + env.max_duration <= now) {
      r.expired = true;
      r.last_seen = now;
      if (skipped_creator(r, env)) {
        // It never kept the page up: nothing to warn about (no error, no notice).
        t.audit.push_back(entry(s, now, "skipped",
                                describe(r) + " has been active for longer than max_duration (" +
                                    format_duration(env.max_duration) + "); no longer watched",
                                r.id));
      } else {
        t.audit.push_back(entry(s, now, "expired",
                                describe(r) + " has been active for longer than max_duration (" +
                                    format_duration(env.max_duration) +
                                    "); it no longer keeps the page up. Check it in CodeDeploy.",
                                r.id));
      }
      t.changed = true;
    }
    ++it;
  }
  if (forget(s, env, now)) t.changed = true;
  return t;
}

std::string Decision::reason_text() const {
  std::string out;
  for (const auto& r : reasons) out += (out.empty() ? "" : "; ") + r;
  return out;
}

Decision decide(const EnvState& state, const EnvironmentConfig& env, Time now) {
  Decision d;
  auto soonest = [&d](Time t) {
    if (!d.recheck_at || t < *d.recheck_at) d.recheck_at = t;
  };
  if (state.hold && (!state.hold->until || *state.hold->until > now)) {
    const Hold& h = *state.hold;
    d.on = h.on;
    std::string reason = std::string("operator hold (") + (h.on ? "on" : "off") + ") by " + h.who;
    if (!h.reason.empty()) reason += ": " + h.reason;
    d.reasons.push_back(reason);
    if (h.on) d.page_message = h.reason;
    if (h.until) {
      soonest(*h.until);
      if (h.on) d.expected_end = h.until;
    }
    return d;
  }
  std::optional<Time> page_from;
  // Scheduled windows: one in progress keeps the page up until the end of the whole stretch
  // of windows that overlap or touch it.
  for (const auto& [id, w] : state.windows) {
    if (w.start > now) {
      soonest(w.start);
      continue;
    }
    if (w.end <= now) continue;
    d.on = true;
    std::string reason = "maintenance window " + w.id + " by " + w.who;
    if (!w.reason.empty()) reason += ": " + w.reason;
    d.reasons.push_back(reason);
    if (!page_from || w.start < *page_from) {  // the one that began first speaks
      page_from = w.start;
      d.page_message = w.reason;
    }
    soonest(w.end);
    if (!d.expected_end || w.end > *d.expected_end) d.expected_end = w.end;
  }
  for (bool grew = d.expected_end.has_value(); grew;) {
    grew = false;
    for (const auto& [id, w] : state.windows) {
      if (w.start <= *d.expected_end && w.end > *d.expected_end) {
        d.expected_end = w.end;
        grew = true;
      }
    }
  }
  bool active = false;
  for (const auto& [id, r] : state.deployments) {
    if (!counts(state, r, env, now)) continue;
    d.on = true;
    if (!is_terminal(r.status)) {
      active = true;
      d.reasons.push_back(describe(r) + " is " + std::string(to_string(r.status)));
      soonest(active_since(r) + env.max_duration);
    } else if (env.failure_policy == FailurePolicy::kHold) {
      d.reasons.push_back(describe(r) + " " + std::string(to_string(r.status)) +
                          "; held until an operator lifts it (failure_policy: hold)");
    } else {
      const Time end = grace_start(r) + env.failure_grace;
      d.reasons.push_back(describe(r) + " " + std::string(to_string(r.status)) + "; waiting " +
                          format_duration(env.failure_grace) +
                          " for its rollback (failure_policy: lift)");
      soonest(end);
      if (!d.expected_end || end > *d.expected_end) d.expected_end = end;
    }
  }
  // With a deployment still running, nobody knows when the page will go.
  if (active) d.expected_end.reset();
  return d;
}

std::optional<Time> next_wake(const EnvState& state, const EnvironmentConfig& env, Time now) {
  std::optional<Time> wake = decide(state, env, now).recheck_at;
  auto consider = [&](Time t) {
    if (t > now && (!wake || t < *wake)) wake = t;
  };
  if (state.hold && state.hold->until) consider(*state.hold->until);
  for (const auto& [id, w] : state.windows) {
    consider(w.start);
    consider(w.end);
  }
  return wake;
}

}  // namespace intermission::core
