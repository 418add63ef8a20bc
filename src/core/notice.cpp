#include "core/notice.h"

#include <algorithm>
#include <boost/json.hpp>

namespace intermission::core {
namespace {

namespace json = boost::json;

// Slack's limit for a section block's text (Block Kit reference: section `text`, 3000
// characters); the rest is cut with an ellipsis.
constexpr std::size_t kSlackSectionLimit = 3000;

std::string cut(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit - 3;
  // Never cut inside a UTF-8 sequence or an entity we just wrote ("&amp;").
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  const auto amp = text.rfind('&', end);
  if (amp != std::string::npos && text.find(';', amp) >= end) end = amp;
  text.resize(end);
  return text + "...";
}

std::string headline(const Notice& n) {
  switch (n.kind) {
    case NoticeKind::kSwitchedOn: return "maintenance ON";
    case NoticeKind::kSwitchedOff: return "maintenance OFF";
    case NoticeKind::kSwitchFailed:
      return std::string("switching maintenance ") + (n.wanted_on ? "on" : "off") + " FAILED";
    case NoticeKind::kSwitchStuck:
      return std::string("switching maintenance ") + (n.wanted_on ? "on" : "off") + " is STUCK";
    case NoticeKind::kDeploymentExpired: return "deployment expired";
  }
  return "notice";
}

std::string_view emoji(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kSwitchedOn: return ":construction:";
    case NoticeKind::kSwitchedOff: return ":white_check_mark:";
    case NoticeKind::kSwitchFailed: return ":x:";
    case NoticeKind::kSwitchStuck: return ":rotating_light:";
    case NoticeKind::kDeploymentExpired: return ":hourglass:";
  }
  return "";
}

// The facts beside the headline, as "label: value" pairs (plain text, unescaped).
std::vector<std::pair<std::string, std::string>> details(const Notice& n) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!n.reason.empty()) {
    const bool error = n.kind == NoticeKind::kSwitchFailed || n.kind == NoticeKind::kSwitchStuck;
    out.emplace_back(error ? "error" : "why", n.reason);
  }
  if (!n.who.empty()) out.emplace_back("by", n.who);
  if (!n.deployment_ids.empty()) {
    std::string ids;
    for (const auto& id : n.deployment_ids) ids += (ids.empty() ? "" : ", ") + id;
    out.emplace_back(n.deployment_ids.size() == 1 ? "deployment" : "deployments", ids);
  }
  if (n.expected_end) out.emplace_back("expected end", format_iso8601(*n.expected_end));
  if (n.failing_since) out.emplace_back("failing since", format_iso8601(*n.failing_since));
  return out;
}

json::value optional_time(const std::optional<Time>& t) {
  return t ? json::value(format_iso8601(*t)) : json::value(nullptr);
}

}  // namespace

std::string_view to_string(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kSwitchedOn: return "switched-on";
    case NoticeKind::kSwitchedOff: return "switched-off";
    case NoticeKind::kSwitchFailed: return "switch-failed";
    case NoticeKind::kSwitchStuck: return "switch-stuck";
    case NoticeKind::kDeploymentExpired: return "deployment-expired";
  }
  return "unknown";
}

std::optional<NoticeKind> parse_notice_kind(std::string_view name) {
  for (const NoticeKind k : kNoticeKinds) {
    if (to_string(k) == name) return k;
  }
  return std::nullopt;
}

std::string Notice::id() const {
  return environment + "/" + std::string(to_string(kind)) + "/" + std::to_string(to_epoch_ms(time));
}

Notice switch_notice(const EnvState& after, const EnvironmentConfig& env, const Decision& decision,
                     Time now) {
  Notice n;
  n.kind = decision.on ? NoticeKind::kSwitchedOn : NoticeKind::kSwitchedOff;
  n.environment = env.name;
  n.time = now;
  n.reason = decision.reason_text();
  if (!decision.on && n.reason.empty()) n.reason = "nothing keeps the page up any more";
  if (decision.on) n.expected_end = decision.expected_end;
  // Who decided: an operator's hold in force wins over everything (decide() says so), else the
  // authors of the windows in progress.
  if (after.hold && (!after.hold->until || *after.hold->until > now)) {
    n.who = after.hold->who;
  } else if (decision.on) {
    for (const auto& [id, w] : after.windows) {
      if (w.start <= now && now < w.end && !w.who.empty() &&
          n.who.find(w.who) == std::string::npos) {
        n.who += (n.who.empty() ? "" : ", ") + w.who;
      }
    }
  }
  if (decision.on) {
    for (const auto& [id, r] : after.deployments) {
      if (counts(after, r, env, now)) n.deployment_ids.push_back(id);
    }
  }
  return n;
}

std::vector<Notice> audit_notices(const std::vector<AuditEntry>& audit) {
  std::vector<Notice> out;
  for (const auto& a : audit) {
    if (a.kind != "expired") continue;
    Notice n;
    n.kind = NoticeKind::kDeploymentExpired;
    n.environment = a.environment;
    n.time = a.time;
    n.reason = a.message;
    if (!a.deployment_id.empty()) n.deployment_ids.push_back(a.deployment_id);
    out.push_back(std::move(n));
  }
  return out;
}

std::optional<Notice> FailureTracker::failed(const std::string& environment, bool wanted_on,
                                             const std::string& error, Time now) {
  Notice n;
  n.environment = environment;
  n.time = now;
  n.reason = error;
  n.wanted_on = wanted_on;
  auto [it, first] = runs_.try_emplace(environment, Run{now, false});
  Run& run = it->second;
  n.failing_since = run.since;
  if (first) {
    n.kind = NoticeKind::kSwitchFailed;
    return n;
  }
  if (run.stuck_sent || now - run.since < stuck_after_) return std::nullopt;
  run.stuck_sent = true;
  n.kind = NoticeKind::kSwitchStuck;
  return n;
}

std::string slack_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string notice_text(const Notice& n) {
  std::string out = n.environment + ": " + headline(n);
  if (!n.reason.empty()) out += " - " + n.reason;
  return out;
}

std::string slack_payload(const Notice& n) {
  std::string body = std::string(emoji(n.kind)) + " *" + slack_escape(n.environment) +
                     "*: " + slack_escape(headline(n));
  for (const auto& [label, value] : details(n)) {
    body += "\n*" + label + "*: " + slack_escape(value);
  }
  json::object section{{"type", "section"},
                       {"text", json::object{{"type", "mrkdwn"},
                                             {"text", cut(std::move(body), kSlackSectionLimit)}}}};
  json::object context{
      {"type", "context"},
      {"elements",
       json::array{json::object{{"type", "mrkdwn"},
                                {"text", "intermission | " + std::string(to_string(n.kind)) +
                                             " | " + format_iso8601(n.time)}}}}};
  json::object payload{{"text", cut(slack_escape(notice_text(n)), kSlackSectionLimit)},
                       {"blocks", json::array{std::move(section), std::move(context)}}};
  return json::serialize(payload);
}

std::string webhook_body(const Notice& n) {
  json::array ids;
  for (const auto& id : n.deployment_ids) ids.emplace_back(id);
  json::object o{{"id", n.id()},
                 {"kind", to_string(n.kind)},
                 {"environment", n.environment},
                 {"time", format_iso8601(n.time)},
                 {"text", notice_text(n)},
                 {"reason", n.reason},
                 {"who", n.who},
                 {"deployment_ids", std::move(ids)},
                 {"expected_end", optional_time(n.expected_end)}};
  if (n.kind == NoticeKind::kSwitchFailed || n.kind == NoticeKind::kSwitchStuck) {
    o["wanted"] = n.wanted_on ? "on" : "off";
    o["failing_since"] = optional_time(n.failing_since);
  }
  return json::serialize(o);
}

std::string webhook_signed_text(std::string_view timestamp, std::string_view body) {
  std::string out(timestamp);
  out += '.';
  out += body;
  return out;
}

DeliveryVerdict classify_delivery(std::optional<long> status) {
  if (!status) return DeliveryVerdict::kRetry;
  if (*status >= 200 && *status < 300) return DeliveryVerdict::kDelivered;
  if (*status == 408 || *status == 429 || *status >= 500) return DeliveryVerdict::kRetry;
  return DeliveryVerdict::kGiveUp;
}

std::optional<Duration> parse_retry_after(std::string_view value, Time now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (const auto date = parse_http_date(value, now)) return std::max(*date - now, Duration(0));
  if (value.empty() || value.size() > 9) return std::nullopt;  // at most 999999999 s
  std::int64_t seconds = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::seconds(seconds);
}

Duration retry_delay(int attempt, Duration base, Duration cap, std::uint64_t random,
                     std::optional<Duration> retry_after) {
  if (retry_after) return std::min(*retry_after, cap);
  const int shift = std::clamp(attempt - 1, 0, 20);
  const Duration ceiling = std::min(base * (std::int64_t{1} << shift), cap);
  if (ceiling.count() <= 0) return Duration(0);
  const auto span = static_cast<std::uint64_t>(ceiling.count()) + 1;
  return Duration(static_cast<std::int64_t>(random % span));
}

Status append_audit(Store& store, const std::string& environment,
                    const std::vector<AuditEntry>& audit, int attempts) {
  std::optional<Error> last;
  for (int i = 0; i < attempts; ++i) {
    auto state = store.load(environment);
    if (!state) return state.error().with_context("store: load " + environment);
    state->environment = environment;
    auto written = store.compare_and_set(*state, state->version, audit);
    if (written) return {};
    if (written.error().code != ErrorCode::kConflict) {
      return written.error().with_context("store: append audit to " + environment);
    }
    last = written.error();
  }
  if (!last) return Error::internal("append_audit: no attempt allowed");
  return last->with_context("store: append audit to " + environment + ", " +
                            std::to_string(attempts) + " conflicts in a row");
}

}  // namespace intermission::core
