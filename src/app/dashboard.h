// The live dashboard of the admin listener, as pure functions: (stored state, audit trail, lease,
// now) -> the dashboard's model, its SVG timelines, the server-rendered HTML page and the JSON
// its script polls. No I/O here; serve_api reads the store and sends what these return.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/ledger.h"
#include "core/store.h"
#include "core/time.h"

namespace intermission::app {

// Audit lines read per environment for the dashboard (the newest ones). A busy environment may
// have more in 7 days; the timeline then says "no data" before the oldest line it has.
inline constexpr std::size_t kDashboardAuditLimit = 2000;

// How often the page's script asks /dashboard.json again.
inline constexpr int kDashboardPollSeconds = 5;

// What the dashboard knows of one environment. `config` must outlive the value.
struct DashboardEnv {
  const core::EnvironmentConfig* config = nullptr;
  core::EnvState state;
  std::vector<core::AuditEntry> audit;  // oldest first; the newest kDashboardAuditLimit at most
  bool audit_complete = true;           // false: older lines may exist that were not read
  std::optional<core::Lease> lease;     // as stored (it may have run out)
  // Set when the ledger could not be read: the environment is shown as unreadable, with this,
  // and the rest is not looked at (as in `intermission status`).
  std::optional<std::string> error;
};

// A stretch of time over which the page was up (on) or down, as far as the audit trail says;
// known == false where it says nothing (before the oldest line read).
struct Interval {
  core::Time start{};
  core::Time end{};
  bool on = false;
  bool known = true;
};

enum class MarkKind {
  kDeploymentStarted,
  kDeploymentSucceeded,
  kDeploymentFailed,  // Failed or Stopped
  kHoldOn,            // an operator's "on"
  kHoldOff,           // an operator's "off" (the page lifted by hand)
};

struct Mark {
  core::Time at{};
  MarkKind kind = MarkKind::kDeploymentStarted;
  std::string label;  // plain text (escaped when drawn)
};

// One environment's picture over [from, to]: `now` lies inside, the part after it shows the
// scheduled windows to come.
struct Timeline {
  core::Time from{};
  core::Time now{};
  core::Time to{};
  std::string scale;                  // "24 h", "7 d"
  std::vector<Interval> intervals;    // ordered, clipped to [from, now], covering it
  std::vector<Mark> marks;            // within [from, now], by time
  std::vector<core::Window> windows;  // scheduled (active or upcoming) overlapping [from, to]
};

// Where the page was up or down over [from, now]: from the audit trail's "switched" lines
// (each starts "maintenance on" or "maintenance off"), the last of them reaching to now unless
// the state's `applied` says otherwise. Before the first line: off when the trail was read
// whole (nothing was ever switched), unknown when it was cut at the limit.
std::vector<Interval> maintenance_intervals(const DashboardEnv& env, core::Time from,
                                            core::Time now);

// The timeline over the last `span` up to `now`, and a further span/8 to come.
Timeline build_timeline(const DashboardEnv& env, core::Duration span, const std::string& scale,
                        core::Time now);

// The timeline drawn as an inline SVG (no script, no external reference; every text escaped),
// with a text alternative (role=img, aria-label) and axis labels in UTC.
std::string timeline_svg(const Timeline& t);

// The colours of the page, and their contrast ratio (WCAG 2.x) for the tests and the CSS.
struct Palette {
  static constexpr std::string_view kText = "#1d2330";
  static constexpr std::string_view kBackground = "#ffffff";
  static constexpr std::string_view kMuted = "#525a6b";  // secondary text on the background
  static constexpr std::string_view kOn = "#b3471d";     // ON badge (white text) and up bars
  static constexpr std::string_view kOff = "#2b7a3d";    // off badge (white text)
  static constexpr std::string_view kFailed = "#a3123a";
  static constexpr std::string_view kStarted = "#1d5fa8";
  static constexpr std::string_view kHold = "#6b3fa0";
  static constexpr std::string_view kFocus = "#1d5fa8";
};
// The contrast ratio of two "#rrggbb" colours, 1 to 21.
double contrast_ratio(std::string_view a, std::string_view b);

// The part of an environment's section that the script replaces on every poll: badge, reason,
// who, since, expected end (a countdown), active deployments, lease holder, windows, timelines.
std::string environment_status_html(const DashboardEnv& env, core::Time now);

// The whole page, server-rendered (it works without JavaScript; /dashboard.js only refreshes
// it and drives the controls). `controls`: whether the operator API is usable (a token is
// configured); else the controls are not shown.
std::string dashboard_html(const std::vector<DashboardEnv>& envs, core::Time now, bool controls);

// What /dashboard.json answers: {"time", "poll_seconds", "environments": [{"environment",
// "on", "reason", "who", "since", "expected_end", "pending", "switching", "active_deployments",
// "windows", "html"}]} where "html" is environment_status_html.
boost::json::value dashboard_json(const std::vector<DashboardEnv>& envs, core::Time now);

// The static assets, served as /dashboard.js and /dashboard.css so that the page's
// Content-Security-Policy can forbid inline script and style.
std::string_view dashboard_script();
std::string dashboard_css();

// The Content-Security-Policy of the dashboard's responses.
inline constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

}  // namespace intermission::app
