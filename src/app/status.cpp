#include "app/status.h"

#include <boost/json.hpp>

#include "core/state_codec.h"

namespace intermission::app {
namespace {

namespace json = boost::json;
using core::format_iso8601;

json::value opt_time(const std::optional<core::Time>& t) {
  return t ? json::value(format_iso8601(*t)) : json::value(nullptr);
}

// "since" is when the backend last took the decided state, if it did.
std::optional<core::Time> since(const EnvironmentStatus& e, const core::Decision& d) {
  if (e.state.applied.since && e.state.applied.on == d.on) return e.state.applied.since;
  return std::nullopt;
}

std::optional<bool> observed_on(const EnvironmentStatus& e) {
  if (!e.observed || !e.observed->ok()) return std::nullopt;
  return core::observed_on(e.observed->value());
}

}  // namespace

json::value status_json(const std::vector<EnvironmentStatus>& envs, core::Time now) {
  json::array out;
  for (const auto& e : envs) {
    if (e.error) {
      out.push_back(json::object{{"environment", e.config->name}, {"error", *e.error}});
      continue;
    }
    const core::Decision d = core::decide(e.state, *e.config, now);
    json::array why;
    for (const auto& r : d.reasons) why.emplace_back(r);
    json::array active;
    json::array deployments;
    for (const auto& [id, r] : e.state.deployments) {
      json::value v = core::to_json(r);
      v.as_object()["counts"] = core::counts(e.state, r, *e.config, now);
      if (v.as_object()["counts"].as_bool()) active.push_back(v);
      deployments.push_back(std::move(v));
    }
    json::object o{{"environment", e.config->name},
                   {"on", d.on},
                   {"why", std::move(why)},
                   {"since", opt_time(since(e, d))},
                   {"expected_end", opt_time(d.expected_end)},
                   {"active_deployments", std::move(active)},
                   {"deployments", std::move(deployments)},
                   {"backend", e.backend},
                   {"version", e.state.version}};
    if (e.state.hold) {
      const auto& h = *e.state.hold;
      o["hold"] = json::object{{"on", h.on},         {"reason", h.reason},
                               {"who", h.who},       {"since", format_iso8601(h.since)},
                               {"until", opt_time(h.until)}};
    } else {
      o["hold"] = nullptr;
    }
    o["applied"] = json::object{{"on", e.state.applied.on},
                                {"since", opt_time(e.state.applied.since)}};
    if (e.lease && e.lease->until > now) {
      o["switching"] = json::object{{"holder", e.lease->holder},
                                    {"until", format_iso8601(e.lease->until)}};
    } else {
      o["switching"] = nullptr;
    }
    if (e.observed) {
      if (e.observed->ok()) {
        o["observed"] = json::object{{"on", *observed_on(e)},
                                     {"detail", core::observed_detail(e.observed->value())}};
      } else {
        o["observed"] = json::object{{"error", e.observed->error().message}};
      }
    }
    json::array windows;
    for (const auto& w : core::upcoming_windows(e.state, now)) {
      json::value v = core::to_json(w);
      v.as_object()["active"] = w.start <= now;
      windows.push_back(std::move(v));
    }
    o["windows"] = std::move(windows);
    json::array recent;
    for (const auto& a : e.recent) recent.push_back(core::to_json(a));
    o["recent"] = std::move(recent);
    out.push_back(std::move(o));
  }
  return json::object{{"time", format_iso8601(now)}, {"environments", std::move(out)}};
}

std::string status_text(const std::vector<EnvironmentStatus>& envs, core::Time now) {
  std::string out;
  for (const auto& e : envs) {
    if (e.error) {
      out += e.config->name + ": unreadable: " + *e.error + "\n";
      continue;
    }
    const core::Decision d = core::decide(e.state, *e.config, now);
    out += e.config->name + ": maintenance " + (d.on ? "ON" : "off");
    if (auto s = since(e, d)) {
      out += " since " + format_iso8601(*s) + " (" +
             core::format_duration(std::chrono::duration_cast<std::chrono::seconds>(now - *s)) +
             " ago)";
    } else if (d.on != e.state.applied.on || !e.state.applied.since) {
      out += " (not yet applied to the backend)";
    }
    out += "\n";
    for (const auto& r : d.reasons) out += "  why: " + r + "\n";
    if (d.expected_end) out += "  expected end: " + format_iso8601(*d.expected_end) + "\n";
    for (const auto& [id, r] : e.state.deployments) {
      if (!core::counts(e.state, r, *e.config, now)) continue;
      out += "  deployment " + id + " " + std::string(core::to_string(r.status)) + " (" +
             r.application + "/" + r.deployment_group + ", creator " +
             r.creator.value_or("unknown") + ", since " + format_iso8601(r.first_seen) + ")\n";
    }
    for (const auto& w : core::upcoming_windows(e.state, now)) {
      out += "  window " + w.id + (w.start <= now ? " (active) " : " ") + format_iso8601(w.start) +
             " to " + format_iso8601(w.end) + " by " + w.who +
             (w.reason.empty() ? "" : ": " + w.reason) + "\n";
    }
    if (e.lease && e.lease->until > now) {
      out += "  being switched by " + e.lease->holder + " (lease until " +
             format_iso8601(e.lease->until) + ")\n";
    }
    out += "  backend: " + e.backend;
    if (e.observed) {
      if (!e.observed->ok()) {
        out += " (cannot observe: " + e.observed->error().message + ")";
      } else if (*observed_on(e) != d.on) {
        out += std::string(" (observed ") + (*observed_on(e) ? "on" : "off") +
               ": differs, run `intermission tick`)";
      }
      if (e.observed->ok() && !core::observed_detail(e.observed->value()).empty()) {
        out += "\n  observed: " + core::observed_detail(e.observed->value());
      }
    }
    out += "\n";
  }
  return out;
}

std::vector<core::AuditEntry> status_recent(const std::vector<core::AuditEntry>& audit,
                                            std::size_t count) {
  std::vector<core::AuditEntry> kept;
  for (auto it = audit.rbegin(); it != audit.rend() && kept.size() < count; ++it) {
    if (it->kind != "notified") kept.push_back(*it);
  }
  return {kept.rbegin(), kept.rend()};
}

}  // namespace intermission::app
