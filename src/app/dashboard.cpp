#include "app/dashboard.h"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "core/state_codec.h"
#include "page/response.h"

namespace intermission::app {
namespace {

namespace json = boost::json;
using core::Duration;
using core::Time;
using page::html_escape;

constexpr double kWidth = 600;  // the SVG's user units; it scales to the page's width
constexpr double kHeight = 86;
constexpr std::array<std::string_view, 7> kWeekdays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};

// "2026-12-02 10:11 UTC"
std::string readable(Time t) {
  std::string s = core::format_iso8601(t);
  return s.substr(0, 10) + " " + s.substr(11, 5) + " UTC";
}

// "in 1h30m" style, to the minute (the script ticks it by the second).
std::string left_text(Time end, Time now) {
  if (end <= now) return "any moment now";
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(end - now);
  if (minutes.count() == 0) return "in less than a minute";
  return "in " + core::format_duration(minutes);
}

std::string time_html(Time t) {
  return "<time datetime=\"" + core::format_iso8601(t) + "\">" + readable(t) + "</time>";
}

std::string fixed(double v) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1f", v);
  return buf.data();
}

bool failed_status(core::DeploymentStatus s) {
  return s == core::DeploymentStatus::kFailed || s == core::DeploymentStatus::kStopped;
}

std::string describe(const core::DeploymentRecord& r) {
  return "deployment " + r.id + " (" + r.application + "/" + r.deployment_group + ")";
}

// The label of a tick at `t`: "06:00" on the 24 h scale, "Wed 02" on the 7 d one.
std::string tick_label(Time t, bool days) {
  const std::string iso = core::format_iso8601(t);
  if (!days) return iso.substr(11, 5);
  const auto day = std::chrono::floor<std::chrono::days>(t).time_since_epoch().count();
  const auto weekday = static_cast<std::size_t>(((day % 7) + 7 + 4) % 7);  // 1970-01-01: Thu
  return std::string(kWeekdays[weekday]) + " " + iso.substr(8, 2);
}

double channel(unsigned v) {
  const double c = v / 255.0;
  return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}

double luminance(std::string_view hex) {
  unsigned r = 0;
  unsigned g = 0;
  unsigned b = 0;
  if (hex.size() != 7 || hex[0] != '#' ||
      std::sscanf(std::string(hex).c_str(), "#%2x%2x%2x", &r, &g, &b) != 3) {
    return 0;
  }
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
}

struct Summary {
  core::Decision decision;
  std::string who;
  std::optional<Time> since;  // when the backend took the decided state
  bool pending = false;       // the decision is not applied yet
  std::optional<core::Lease> switching;
  std::vector<const core::DeploymentRecord*> active;
  std::vector<core::Window> windows;
};

Summary summarize(const DashboardEnv& e, Time now) {
  Summary s;
  s.decision = core::decide(e.state, *e.config, now);
  const auto& applied = e.state.applied;
  if (applied.since && applied.on == s.decision.on) {
    s.since = applied.since;
  } else {
    s.pending = true;
  }
  if (e.lease && e.lease->until > now) s.switching = e.lease;
  for (const auto& [id, r] : e.state.deployments) {
    if (core::counts(e.state, r, *e.config, now)) s.active.push_back(&r);
  }
  s.windows = core::upcoming_windows(e.state, now);
  // Who keeps it so: an operator's hold, else the window in progress, else the deployments'
  // creators (where known).
  if (e.state.hold && (!e.state.hold->until || *e.state.hold->until > now)) {
    s.who = e.state.hold->who;
  } else {
    for (const auto& w : s.windows) {
      if (w.start <= now) s.who = w.who;
    }
    if (s.who.empty()) {
      for (const auto* r : s.active) {
        if (r->creator) s.who += (s.who.empty() ? "" : ", ") + *r->creator;
      }
    }
  }
  return s;
}

// One timeline mark centred on (cx, cy), shape and colour both saying what happened, with
// `inner` (a <title>, or nothing) inside: the timeline and its legend draw marks with this.
std::string mark_svg(MarkKind kind, double cx, double cy, const std::string& inner) {
  const std::string x = fixed(cx), y = fixed(cy);
  switch (kind) {
    case MarkKind::kDeploymentStarted:
      return "<circle class=\"started\" cx=\"" + x + "\" cy=\"" + y + "\" r=\"4.5\" fill=\"" +
             std::string(Palette::kStarted) + "\">" + inner + "</circle>";
    case MarkKind::kDeploymentSucceeded:
      return "<circle class=\"succeeded\" cx=\"" + x + "\" cy=\"" + y +
             "\" r=\"4.5\" fill=\"#ffffff\" stroke=\"" + std::string(Palette::kOff) +
             "\" stroke-width=\"2\">" + inner + "</circle>";
    case MarkKind::kDeploymentFailed:
      return "<path class=\"failed\" d=\"M" + fixed(cx - 5.5) + " " + fixed(cy - 5) +
             "h11l-5.5 10z\" fill=\"" + std::string(Palette::kFailed) + "\">" + inner + "</path>";
    case MarkKind::kHoldOn:
    case MarkKind::kHoldOff: {
      const bool on = kind == MarkKind::kHoldOn;
      return "<path class=\"" + std::string(on ? "hold-on" : "hold-off") + "\" d=\"M" + x + " " +
             fixed(cy - 6) + "l6 6l-6 6l-6 -6z\" fill=\"" +
             (on ? std::string(Palette::kHold) : std::string("#ffffff")) + "\" stroke=\"" +
             std::string(Palette::kHold) + "\" stroke-width=\"1.5\">" + inner + "</path>";
    }
  }
  return "";
}

}  // namespace

std::vector<Interval> maintenance_intervals(const DashboardEnv& env, Time from, Time now) {
  struct Point {
    Time at;
    bool on;
    bool known;
  };
  std::vector<Point> points;
  for (const auto& a : env.audit) {
    if (a.kind != "switched") continue;
    if (a.message.rfind("maintenance on", 0) == 0) {
      points.push_back({a.time, true, true});
    } else if (a.message.rfind("maintenance off", 0) == 0) {
      points.push_back({a.time, false, true});
    }
  }
  std::stable_sort(points.begin(), points.end(),
                   [](const Point& a, const Point& b) { return a.at < b.at; });
  // The stored state is the truth for the open end (it is written with the last line).
  const auto& applied = env.state.applied;
  if (applied.since &&
      (points.empty() || (*applied.since >= points.back().at && points.back().on != applied.on))) {
    points.push_back({*applied.since, applied.on, true});
  }
  std::vector<Interval> out;
  if (now <= from) return out;
  Point current{from, false, env.audit_complete};
  std::size_t i = 0;
  for (; i < points.size() && points[i].at <= from; ++i) current = points[i];
  Interval open{from, now, current.on, current.known};
  for (; i < points.size() && points[i].at < now; ++i) {
    const Point& p = points[i];
    if (p.on == open.on && p.known == open.known) continue;
    open.end = p.at;
    if (open.end > open.start) out.push_back(open);
    open = Interval{p.at, now, p.on, p.known};
  }
  out.push_back(open);
  return out;
}

Timeline build_timeline(const DashboardEnv& env, Duration span, const std::string& scale,
                        Time now) {
  Timeline t;
  t.from = now - span;
  t.now = now;
  t.to = now + span / 8;
  t.scale = scale;
  t.intervals = maintenance_intervals(env, t.from, now);
  auto within = [&](Time at) { return at >= t.from && at <= now; };
  for (const auto& [id, r] : env.state.deployments) {
    const bool began_finished = r.ended_at && *r.ended_at == r.first_seen;
    if (within(r.first_seen) && !began_finished) {
      t.marks.push_back({r.first_seen, MarkKind::kDeploymentStarted, describe(r) + " started"});
    }
    if (r.ended_at && within(*r.ended_at) && core::is_terminal(r.status)) {
      const bool failed = failed_status(r.status);
      t.marks.push_back({*r.ended_at,
                         failed ? MarkKind::kDeploymentFailed : MarkKind::kDeploymentSucceeded,
                         describe(r) + " " + std::string(core::to_string(r.status))});
    }
  }
  for (const auto& a : env.audit) {
    if (!within(a.time)) continue;
    if (a.kind == "hold") t.marks.push_back({a.time, MarkKind::kHoldOn, a.message});
    if (a.kind == "lifted") t.marks.push_back({a.time, MarkKind::kHoldOff, a.message});
  }
  std::stable_sort(t.marks.begin(), t.marks.end(),
                   [](const Mark& a, const Mark& b) { return a.at < b.at; });
  for (const auto& w : env.state.windows) {
    if (w.second.end > t.from && w.second.start < t.to) t.windows.push_back(w.second);
  }
  std::sort(t.windows.begin(), t.windows.end(),
            [](const core::Window& a, const core::Window& b) { return a.start < b.start; });
  return t;
}

std::string timeline_svg(const Timeline& t) {
  const double total = static_cast<double>((t.to - t.from).count());
  auto x = [&](Time at) {
    const double v = static_cast<double>((std::clamp(at, t.from, t.to) - t.from).count());
    return total > 0 ? v / total * kWidth : 0.0;
  };
  // The text alternative: what the picture shows, in words.
  int ups = 0;
  Duration up{0};
  bool unknown = false;
  for (const auto& i : t.intervals) {
    if (!i.known) unknown = true;
    if (i.known && i.on) {
      ++ups;
      up += i.end - i.start;
    }
  }
  int deployments = 0;
  int failures = 0;
  int holds = 0;
  for (const auto& m : t.marks) {
    if (m.kind == MarkKind::kDeploymentStarted) ++deployments;
    if (m.kind == MarkKind::kDeploymentFailed) ++failures;
    if (m.kind == MarkKind::kHoldOn || m.kind == MarkKind::kHoldOff) ++holds;
  }
  std::string summary =
      "Maintenance over the last " + t.scale + ": " +
      (ups == 0 ? std::string("never up")
                : "up " + std::to_string(ups) + (ups == 1 ? " time" : " times") + ", " +
                      core::format_duration(std::chrono::duration_cast<std::chrono::minutes>(up)) +
                      " in all") +
      "; " + std::to_string(deployments) + " deployments started, " + std::to_string(failures) +
      " failed; " + std::to_string(holds) + " operator actions; " +
      std::to_string(t.windows.size()) + " scheduled windows" +
      (unknown ? "; no record before the oldest line read" : "");
  std::string s = "<svg class=\"timeline\" viewBox=\"0 0 " + fixed(kWidth) + " " + fixed(kHeight) +
                  "\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" "
                  "aria-label=\"" +
                  html_escape(summary) +
                  "\" xmlns=\"http://www.w3.org/2000/svg\">"
                  "<title>" +
                  html_escape(summary) + "</title>";
  // The lane of the page: grey background, orange where the page was up, hatched grey where
  // nothing is known.
  s += "<rect x=\"0\" y=\"4\" width=\"" + fixed(kWidth) +
       "\" height=\"26\" fill=\"#eef0f4\" stroke=\"#8a91a0\" stroke-width=\"0.5\"/>";
  for (const auto& i : t.intervals) {
    if (i.known && !i.on) continue;
    const double x0 = x(i.start);
    const double w = std::max(1.0, x(i.end) - x0);
    s += "<rect class=\"" + std::string(i.known ? "up" : "unknown") + "\" x=\"" + fixed(x0) +
         "\" y=\"4\" width=\"" + fixed(w) + "\" height=\"26\" fill=\"" +
         std::string(i.known ? Palette::kOn : "#c3c8d2") + "\"><title>" +
         html_escape(i.known ? "maintenance page up " + readable(i.start) + " to " + readable(i.end)
                             : "no record before " + readable(i.end)) +
         "</title></rect>";
  }
  // Scheduled windows, in their own lane (the future part shows those to come).
  for (const auto& w : t.windows) {
    const double x0 = x(w.start);
    const double width = std::max(1.5, x(w.end) - x0);
    s += "<rect class=\"window\" x=\"" + fixed(x0) + "\" y=\"34\" width=\"" + fixed(width) +
         "\" height=\"10\" fill=\"#e4dcf0\" stroke=\"" + std::string(Palette::kHold) +
         "\" stroke-width=\"1\"><title>" +
         html_escape("window " + w.id + " " + readable(w.start) + " to " + readable(w.end) +
                     " by " + w.who + (w.reason.empty() ? "" : ": " + w.reason)) +
         "</title></rect>";
  }
  // Now.
  const std::string xn = fixed(x(t.now));
  s += "<line x1=\"" + xn + "\" x2=\"" + xn + "\" y1=\"0\" y2=\"66\" stroke=\"" +
       std::string(Palette::kText) + "\" stroke-width=\"1.5\" stroke-dasharray=\"3 2\"/>";
  // Marks: shape and colour both say what happened.
  for (const auto& m : t.marks) {
    s += mark_svg(m.kind, x(m.at), 55,
                  "<title>" + html_escape(readable(m.at) + ": " + m.label) + "</title>");
  }
  // The axis, in UTC: every 6 h on the day scale, every midnight on the week scale.
  const bool days = t.to - t.from > std::chrono::hours(36);
  const Duration step = days ? Duration(std::chrono::hours(24)) : Duration(std::chrono::hours(6));
  s += "<line x1=\"0\" x2=\"" + fixed(kWidth) + "\" y1=\"66\" y2=\"66\" stroke=\"#8a91a0\"/>";
  const auto first = (t.from.time_since_epoch() + step - Duration(1)) / step;
  for (Time tick = Time(step * first); tick <= t.to; tick += step) {
    const double tx = x(tick);
    s += "<line x1=\"" + fixed(tx) + "\" x2=\"" + fixed(tx) + "\" y1=\"63\" y2=\"69\" stroke=\"" +
         std::string(Palette::kMuted) + "\"/>";
    if (tx < 32 || tx > kWidth - 32) continue;  // a label must fit whole
    s += "<text x=\"" + fixed(tx) +
         "\" y=\"82\" text-anchor=\"middle\" font-size=\"13\" "
         "font-family=\"system-ui, sans-serif\" fill=\"" +
         std::string(Palette::kText) + "\">" + html_escape(tick_label(tick, days)) + "</text>";
  }
  s += "</svg>";
  return s;
}

double contrast_ratio(std::string_view a, std::string_view b) {
  const double la = luminance(a);
  const double lb = luminance(b);
  return (std::max(la, lb) + 0.05) / (std::min(la, lb) + 0.05);
}

std::string environment_status_html(const DashboardEnv& env, Time now) {
  if (env.error) {
    return "<p class=\"state\"><span class=\"badge unreadable\">?</span> unreadable: the "
           "ledger cannot be read now</p><p class=\"error\">" +
           html_escape(*env.error) + "</p>";
  }
  const Summary s = summarize(env, now);
  const core::Decision& d = s.decision;
  std::string h =
      "<p class=\"state\"><span class=\"badge " + std::string(d.on ? "on" : "off") + "\">" +
      (d.on ? "ON" : "off") + "</span> " +
      (d.on ? "maintenance page up" : "serving the application") +
      (s.pending ? " <span class=\"pending\">(not applied to the backend yet)</span>" : "") +
      "</p><dl>";
  h += "<dt>Why</dt><dd>" +
       html_escape(d.reasons.empty() ? std::string("nothing keeps the page up") : d.reason_text()) +
       "</dd>";
  h += "<dt>Who</dt><dd>" + (s.who.empty() ? std::string("&mdash;") : html_escape(s.who)) + "</dd>";
  h += "<dt>Since</dt><dd>" + (s.since ? time_html(*s.since) : std::string("&mdash;")) + "</dd>";
  h += "<dt>Expected end</dt><dd>";
  if (d.expected_end) {
    h += time_html(*d.expected_end) + " <span class=\"countdown\" data-end=\"" +
         core::format_iso8601(*d.expected_end) + "\">" + left_text(*d.expected_end, now) +
         "</span>";
  } else {
    h += d.on ? "not known" : "&mdash;";
  }
  h += "</dd><dt>Active deployments</dt><dd>";
  if (s.active.empty()) {
    h += "none";
  } else {
    h += "<ul>";
    for (const auto* r : s.active) {
      h += "<li>" +
           html_escape(r->id + " " + std::string(core::to_string(r->status)) + " (" +
                       r->application + "/" + r->deployment_group + ", by " +
                       r->creator.value_or("unknown") + ")") +
           " since " + time_html(r->first_seen) + "</li>";
    }
    h += "</ul>";
  }
  h += "</dd><dt>Switching</dt><dd>" +
       (s.switching ? html_escape(s.switching->holder) + " holds the lease until " +
                          time_html(s.switching->until)
                    : std::string("nobody")) +
       "</dd><dt>Scheduled windows</dt><dd>";
  if (s.windows.empty()) {
    h += "none";
  } else {
    h += "<ul>";
    for (const auto& w : s.windows) {
      h += "<li>" + html_escape(w.id) + (w.start <= now ? " (in progress) " : " ") +
           time_html(w.start) + " to " + time_html(w.end) + " by " + html_escape(w.who) +
           (w.reason.empty() ? "" : ": " + html_escape(w.reason)) + "</li>";
    }
    h += "</ul>";
  }
  h += "</dd></dl><div class=\"timelines\">";
  for (const auto& [span, scale] :
       {std::pair{Duration(std::chrono::hours(24)), std::string("24 h")},
        std::pair{Duration(std::chrono::hours(24 * 7)), std::string("7 d")}}) {
    h += "<figure><figcaption>Last " + scale + " (UTC)</figcaption>" +
         timeline_svg(build_timeline(env, span, scale, now)) + "</figure>";
  }
  h += "</div>";
  return h;
}

std::string dashboard_html(const std::vector<DashboardEnv>& envs, Time now, bool controls) {
  std::string h =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width,initial-scale=1\"><title>intermission dashboard</title>"
      "<link rel=\"stylesheet\" href=\"/dashboard.css\"><script src=\"/dashboard.js\" defer>"
      "</script></head><body data-poll=\"" +
      std::to_string(kDashboardPollSeconds) +
      "\">"
      "<header><h1>intermission</h1><p>As of <time id=\"asof\" datetime=\"" +
      core::format_iso8601(now) + "\">" + readable(now) +
      "</time>. <span id=\"live\">Reload to "
      "update.</span></p></header><main>";
  h += "<p id=\"message\" role=\"status\" aria-live=\"polite\"></p>";
  if (controls) {
    h +=
        "<section id=\"operator\" aria-labelledby=\"operator-h\"><h2 id=\"operator-h\">Operator"
        "</h2><p class=\"needs-js\">The controls need JavaScript and the operator token; without "
        "them use the CLI or the operator API.</p><form id=\"login\" hidden><div class=\"field\">"
        "<label for=\"token\">Operator token</label><input id=\"token\" name=\"token\" "
        "type=\"password\" autocomplete=\"current-password\" required></div><div class=\"field\">"
        "<label for=\"who\">Your name (for the audit trail)</label><input id=\"who\" name=\"who\" "
        "autocomplete=\"username\" maxlength=\"100\"></div><button type=\"submit\">Sign in</button>"
        "</form><p id=\"signed-in\" hidden>Signed in as <span id=\"signed-as\"></span>. <button "
        "type=\"button\" id=\"logout\">Sign out</button></p></section>";
  }
  h += "<ul class=\"legend\" aria-label=\"Timeline legend\">"
       "<li><svg viewBox=\"0 0 16 12\" width=\"16\" height=\"12\" aria-hidden=\"true\"><rect "
       "width=\"16\" height=\"12\" fill=\"" +
       std::string(Palette::kOn) +
       "\"/></svg> page up</li>"
       "<li><svg viewBox=\"0 0 16 12\" width=\"16\" height=\"12\" aria-hidden=\"true\"><rect "
       "width=\"16\" height=\"12\" fill=\"#c3c8d2\"/></svg> no record</li>"
       "<li><svg viewBox=\"0 0 16 12\" width=\"16\" height=\"12\" aria-hidden=\"true\"><rect "
       "x=\"1\" "
       "y=\"2\" width=\"14\" height=\"8\" fill=\"#e4dcf0\" stroke=\"" +
       std::string(Palette::kHold) + "\"/></svg> scheduled window</li>";
  for (const auto& [kind, label] : {std::pair{MarkKind::kDeploymentStarted, "deployment started"},
                                    std::pair{MarkKind::kDeploymentSucceeded, "succeeded"},
                                    std::pair{MarkKind::kDeploymentFailed, "failed"},
                                    std::pair{MarkKind::kHoldOn, "operator on"},
                                    std::pair{MarkKind::kHoldOff, "operator off"}}) {
    h += "<li><svg viewBox=\"0 0 14 14\" width=\"14\" height=\"14\" aria-hidden=\"true\">" +
         mark_svg(kind, 7, 7, "") + "</svg> " + label + "</li>";
  }
  h += "</ul>";
  std::size_t i = 0;
  for (const auto& e : envs) {
    const std::string n = std::to_string(i++);
    const std::string name = html_escape(e.config->name);
    h += "<section class=\"env\" data-env=\"" + name + "\" aria-labelledby=\"env-h-" + n +
         "\"><h2 id=\"env-h-" + n + "\">" + name + "</h2><div class=\"status\">" +
         environment_status_html(e, now) + "</div>";
    if (controls) {
      h += "<fieldset class=\"controls\" disabled><legend>Change " + name +
           " (sign in first)</legend><form class=\"switch\" data-env=\"" + name +
           "\"><div class=\"field\"><label for=\"reason-" + n +
           "\">Reason</label><input id=\"reason-" + n +
           "\" name=\"reason\" maxlength=\"500\"></div><div class=\"field\"><label for=\"for-" + n +
           "\">For (30m, 2h; empty: until changed)</label><input id=\"for-" + n +
           "\" name=\"for\" maxlength=\"20\"></div><div class=\"buttons\"><button type=\"button\" "
           "data-action=\"on\" class=\"btn-on\">On</button><button type=\"button\" "
           "data-action=\"off\" class=\"btn-off\">Off</button></div></form>"
           "<form class=\"schedule\" data-env=\"" +
           name +
           "\"><div class=\"field\"><label "
           "for=\"at-" +
           n + "\">Window starts (+2h, or a UTC time)</label><input id=\"at-" + n +
           "\" name=\"at\" required maxlength=\"40\"></div><div class=\"field\"><label for=\"len-" +
           n + "\">Lasting (1h)</label><input id=\"len-" + n +
           "\" name=\"for\" required maxlength=\"20\"></div><div class=\"field\"><label "
           "for=\"wreason-" +
           n + "\">Reason shown on the page</label><input id=\"wreason-" + n +
           "\" name=\"reason\" maxlength=\"500\"></div><div class=\"buttons\"><button "
           "type=\"submit\">Schedule</button></div></form></fieldset>";
    }
    h += "</section>";
  }
  h += "</main></body></html>";
  return h;
}

json::value dashboard_json(const std::vector<DashboardEnv>& envs, Time now) {
  json::array list;
  for (const auto& e : envs) {
    if (e.error) {
      list.push_back(json::object{{"environment", e.config->name},
                                  {"error", *e.error},
                                  {"html", environment_status_html(e, now)}});
      continue;
    }
    const Summary s = summarize(e, now);
    json::array active;
    for (const auto* r : s.active) {
      active.push_back(
          json::object{{"id", r->id},
                       {"status", core::to_string(r->status)},
                       {"application", r->application},
                       {"deployment_group", r->deployment_group},
                       {"creator", r->creator ? json::value(*r->creator) : json::value(nullptr)},
                       {"since", core::format_iso8601(r->first_seen)}});
    }
    json::array windows;
    for (const auto& w : s.windows) {
      json::value v = core::to_json(w);
      v.as_object()["active"] = w.start <= now;
      windows.push_back(std::move(v));
    }
    auto opt_time = [](const std::optional<Time>& t) {
      return t ? json::value(core::format_iso8601(*t)) : json::value(nullptr);
    };
    json::value switching = nullptr;
    if (s.switching) {
      switching = json::object{{"holder", s.switching->holder},
                               {"until", core::format_iso8601(s.switching->until)}};
    }
    list.push_back(json::object{{"environment", e.config->name},
                                {"on", s.decision.on},
                                {"reason", s.decision.reason_text()},
                                {"who", s.who},
                                {"since", opt_time(s.since)},
                                {"expected_end", opt_time(s.decision.expected_end)},
                                {"pending", s.pending},
                                {"switching", std::move(switching)},
                                {"active_deployments", std::move(active)},
                                {"windows", std::move(windows)},
                                {"html", environment_status_html(e, now)}});
  }
  return json::object{{"time", core::format_iso8601(now)},
                      {"poll_seconds", kDashboardPollSeconds},
                      {"environments", std::move(list)}};
}

std::string dashboard_css() {
  const std::string text(Palette::kText);
  const std::string muted(Palette::kMuted);
  const std::string focus(Palette::kFocus);
  return "*{box-sizing:border-box}"
         "body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:16px;color:" +
         text +
         ";background:#fff;max-width:1100px;margin:0 auto}"
         "h1{font-size:1.6em;margin:0}h2{font-size:1.25em;margin:0 0 8px;overflow-wrap:anywhere}"
         "header p{margin:4px 0 12px;color:" +
         muted +
         "}"
         "section{border:1px solid #c3c8d2;border-radius:8px;padding:12px 16px;margin:0 0 16px}"
         ".badge{display:inline-block;min-width:3.2em;text-align:center;padding:2px 10px;"
         "border-radius:4px;font-weight:700;color:#fff}"
         ".badge.on{background:" +
         std::string(Palette::kOn) +
         "}"
         ".badge.off{background:" +
         std::string(Palette::kOff) +
         "}"
         ".badge.unreadable{background:" +
         std::string(Palette::kFailed) +
         "}"
         ".pending{color:" +
         muted +
         "}"
         "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}"
         "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere;min-width:0}"
         "ul{margin:0;padding-left:18px}"
         ".countdown{font-weight:600}"
         ".timelines{display:grid;grid-template-columns:1fr 1fr;gap:16px}"
         "figure{margin:0;min-width:0}figcaption{font-size:.9em;color:" +
         muted +
         "}"
         "svg.timeline{display:block;width:100%;height:auto}"
         ".legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;"
         "margin:0 0 12px;font-size:.9em}.legend svg{vertical-align:middle}"
         "fieldset{border:1px solid #c3c8d2;border-radius:6px;margin:12px 0 0;padding:8px 12px;"
         "display:grid;grid-template-columns:1fr 1fr;gap:12px;min-width:0}"
         "legend{font-weight:600;padding:0 4px}"
         "form{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;min-width:0}"
         ".field{display:flex;flex-direction:column;min-width:0;flex:1 1 10em}"
         "label{font-size:.9em}"
         "input{font:inherit;padding:6px 8px;border:1px solid " +
         muted +
         ";border-radius:4px;"
         "width:100%;min-width:0;color:" +
         text +
         ";background:#fff}"
         "button{font:inherit;font-weight:600;padding:6px 16px;border-radius:4px;border:2px "
         "solid " +
         text + ";background:#fff;color:" + text +
         ";cursor:pointer;min-height:44px}"
         ".buttons{display:flex;gap:8px}"
         ".btn-on{background:" +
         std::string(Palette::kOn) + ";border-color:" + std::string(Palette::kOn) +
         ";color:#fff}"
         ".btn-off{background:" +
         std::string(Palette::kOff) + ";border-color:" + std::string(Palette::kOff) +
         ";color:#fff}"
         "button:disabled{cursor:not-allowed;opacity:.55}input:disabled{background:#eef0f4}"
         ":focus-visible{outline:3px solid " +
         focus +
         ";outline-offset:2px}"
         "#message:empty{display:none}#message{padding:8px 12px;border-radius:4px;"
         "border:2px solid " +
         text + "}#message.bad{border-color:" + std::string(Palette::kFailed) +
         "}"
         "#operator form{max-width:640px}"
         "@media (max-width:700px){.timelines,fieldset{grid-template-columns:1fr}"
         "body{padding:10px}section{padding:10px}dl{grid-template-columns:1fr}dt{margin-top:4px}"
         // The timeline scales down with the width: its labels grow to stay readable.
         "svg.timeline text{font-size:17px}}";
}

std::string_view dashboard_script() {
  return R"JS('use strict';
// intermission dashboard: refreshes the server-rendered page from /dashboard.json, ticks the
// countdowns, and drives the controls through the operator API with the token as a Bearer
// header (kept in sessionStorage: this tab only). No framework.
(function () {
  var KEY = 'intermission-token', WHO = 'intermission-who';
  function $(id) { return document.getElementById(id); }
  function token() { return sessionStorage.getItem(KEY) || ''; }
  function who() { return sessionStorage.getItem(WHO) || 'dashboard'; }
  function headers(json) {
    var h = {};
    if (token()) h['Authorization'] = 'Bearer ' + token();
    if (json) h['Content-Type'] = 'application/json';
    return h;
  }
  function say(text, bad) {
    var m = $('message');
    m.textContent = text;
    m.className = bad ? 'bad' : 'good';
  }
  function left(ms) {
    if (ms <= 0) return 'any moment now';
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
        m = Math.floor(s % 3600 / 60);
    s = s % 60;
    return 'in ' + (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') +
        s + 's';
  }
  function tick() {
    document.querySelectorAll('.countdown[data-end]').forEach(function (el) {
      el.textContent = left(Date.parse(el.getAttribute('data-end')) - Date.now());
    });
  }
  function readable(iso) { return iso.slice(0, 10) + ' ' + iso.slice(11, 19) + ' UTC'; }
  function refresh() {
    return fetch('/dashboard.json', {headers: headers(false), cache: 'no-store'})
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (doc) {
        doc.environments.forEach(function (e) {
          document.querySelectorAll('section.env').forEach(function (s) {
            if (s.getAttribute('data-env') === e.environment) {
              s.querySelector('.status').innerHTML = e.html;  // built and escaped by the server
            }
          });
        });
        var a = $('asof');
        a.setAttribute('datetime', doc.time);
        a.textContent = readable(doc.time);
        document.body.setAttribute('data-updated', doc.time);
        tick();
        if ($('message').className === 'bad stale') say('');
      })
      .catch(function (err) {
        say('Could not update: ' + err.message, true);
        $('message').className = 'bad stale';
      });
  }
  function signedIn(yes) {
    document.querySelectorAll('fieldset.controls').forEach(function (f) { f.disabled = !yes; });
    if (!$('login')) return;
    $('login').hidden = yes;
    $('signed-in').hidden = !yes;
    $('signed-as').textContent = who();
  }
  function call(method, path, body) {
    return fetch(path, {method: method, headers: headers(true), body: JSON.stringify(body)})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (r.status === 401) signedIn(false);
          if (!r.ok) throw new Error(j.error || 'HTTP ' + r.status);
          return j;
        });
      });
  }
  function env(form) { return encodeURIComponent(form.getAttribute('data-env')); }
  function start() {
    var live = $('live');
    live.textContent = 'Updates every ' + document.body.getAttribute('data-poll') + ' s.';
    document.querySelectorAll('.needs-js').forEach(function (p) { p.hidden = true; });
    var login = $('login');
    if (login) {
      login.hidden = false;
      login.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var t = $('token').value;
        fetch('/api/environments', {headers: {'Authorization': 'Bearer ' + t}, cache: 'no-store'})
          .then(function (r) {
            if (!r.ok) throw new Error(r.status === 401 ? 'that token was refused' : 'HTTP ' + r.status);
            sessionStorage.setItem(KEY, t);
            sessionStorage.setItem(WHO, $('who').value.trim() || 'dashboard');
            $('token').value = '';
            signedIn(true);
            say('Signed in.');
          })
          .catch(function (err) { say('Not signed in: ' + err.message, true); });
      });
      $('logout').addEventListener('click', function () {
        sessionStorage.removeItem(KEY);
        signedIn(false);
        say('Signed out.');
        $('token').focus();
      });
    }
    // On and Off are plain buttons: Enter in a field must not switch anything by itself.
    document.querySelectorAll('form.switch').forEach(function (f) {
      f.addEventListener('submit', function (ev) {
        ev.preventDefault();
        say('Press On or Off.');
      });
      f.querySelectorAll('button[data-action]').forEach(function (button) {
        button.addEventListener('click', function () {
          var action = button.getAttribute('data-action');
          var name = f.getAttribute('data-env');
          var body = {who: who(), reason: f.elements.namedItem('reason').value};
          var length = f.elements.namedItem('for').value;
          if (length) body['for'] = length;
          say(name + ': switching ' + action + '…');
          call('POST', '/api/environments/' + env(f) + '/' + action, body)
            .then(function (j) { say(name + ': ' + action + ' ' + j.outcome + '.'); })
            .catch(function (err) { say(name + ': ' + err.message, true); })
            .then(refresh);
        });
      });
    });
    document.querySelectorAll('form.schedule').forEach(function (f) {
      f.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var field = function (n) { return f.elements.namedItem(n).value; };
        var body = {who: who(), at: field('at'), 'for': field('for')};
        if (field('reason')) body.reason = field('reason');
        call('POST', '/api/environments/' + env(f) + '/windows', body)
          .then(function (j) { say(f.getAttribute('data-env') + ': window ' + j.id + ' scheduled.'); })
          .catch(function (err) { say(f.getAttribute('data-env') + ': ' + err.message, true); })
          .then(refresh);
      });
    });
    signedIn(!!token());
    tick();
    setInterval(tick, 1000);
    setInterval(refresh, 1000 * Number(document.body.getAttribute('data-poll') || 5));
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
)JS";
}

}  // namespace intermission::app
