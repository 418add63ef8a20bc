#include "app/notifications.h"

#include <fstream>
#include <sstream>

#include "adapters/config/yaml_config.h"
#include "core/notice.h"

namespace intermission::app {
namespace {

std::string trim_text(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  return text;
}

// The URL of `t`, or why there is none.
std::pair<std::string, std::string> read_url(const core::NotificationTarget& t,
                                             const GetEnv& getenv) {
  std::string url;
  std::string origin;
  if (!t.url.empty()) {
    url = t.url;
    origin = "url";
  } else if (!t.url_file.empty()) {
    origin = "url_file " + t.url_file;
    std::ifstream in(t.url_file, std::ios::binary);
    if (!in) return {"", origin + " cannot be read"};
    std::ostringstream s;
    s << in.rdbuf();
    url = trim_text(s.str());
  } else if (!t.url_env.empty()) {
    origin = "$" + t.url_env;
    const auto v = getenv(t.url_env);
    if (!v || v->empty()) return {"", origin + " is not set"};
    url = trim_text(*v);
  }
  // The URL itself is a secret (a Slack webhook's): never repeated in a message.
  if (!adapters::is_notify_url(url)) return {"", origin + " is not an http:// or https:// URL"};
  return {url, ""};
}

}  // namespace

LoadedTargets load_notify_targets(const core::NotificationsConfig& config, const GetEnv& getenv) {
  LoadedTargets out;
  for (std::size_t i = 0; i < config.targets.size(); ++i) {
    const core::NotificationTarget& t = config.targets[i];
    const std::string which = "notifications.targets[" + std::to_string(i) + "] (" + t.name + "): ";
    adapters::NotifyTarget target;
    target.name = t.name;
    target.type = t.type == "webhook" ? adapters::NotifyTarget::Type::kWebhook
                                      : adapters::NotifyTarget::Type::kSlack;
    auto [url, problem] = read_url(t, getenv);
    if (!problem.empty()) {
      out.problems.push_back(which + problem);
      continue;
    }
    target.url = std::move(url);
    if (target.type == adapters::NotifyTarget::Type::kWebhook) {
      const LoadedSecret s =
          load_secret({"signing secret of " + t.name, t.secret_file, "", t.secret_env}, getenv);
      if (s.value.empty()) {
        out.problems.push_back(
            which + (s.problem.empty() ? "$" + t.secret_env + " is not set" : s.problem));
        continue;
      }
      target.secret = s.value;
    }
    for (const auto& e : t.events) {
      if (auto k = core::parse_notice_kind(e)) target.kinds.insert(*k);
    }
    target.environments.insert(t.environments.begin(), t.environments.end());
    out.targets.push_back(std::move(target));
  }
  return out;
}

adapters::NotifierOptions notifier_options(const core::NotificationsConfig& config) {
  adapters::NotifierOptions o;
  o.timeout = config.timeout;
  o.attempts = config.attempts;
  o.backoff = config.backoff;
  o.backoff_cap = config.backoff_cap;
  o.queue = static_cast<std::size_t>(config.queue);
  return o;
}

core::AuditEntry delivery_audit(const adapters::DeliveryReport& r, core::Time now) {
  using Result = adapters::DeliveryReport::Result;
  const std::string kind = r.result == Result::kDelivered ? "notified"
                           : r.result == Result::kFailed  ? "notify-failed"
                                                          : "notify-dropped";
  std::string message = std::string(core::to_string(r.notice.kind)) + " to " + r.target + ": " +
                        std::string(adapters::to_string(r.result));
  if (r.attempts > 0) {
    message +=
        " after " + std::to_string(r.attempts) + (r.attempts == 1 ? " attempt" : " attempts");
  }
  if (!r.detail.empty()) message += " (" + r.detail + ")";
  core::AuditEntry a{now, r.notice.environment, kind, message, "", ""};
  if (r.notice.deployment_ids.size() == 1) a.deployment_id = r.notice.deployment_ids.front();
  return a;
}

void record_delivery(const adapters::DeliveryReport& r, core::Store& store, core::Logger& log,
                     core::Time now) {
  const bool ok = r.result == adapters::DeliveryReport::Result::kDelivered;
  log.log(ok ? core::LogLevel::kInfo : core::LogLevel::kError,
          ok ? "notice delivered" : "notice not delivered",
          {{"environment", r.notice.environment},
           {"notice", std::string(core::to_string(r.notice.kind))},
           {"target", r.target},
           {"result", std::string(adapters::to_string(r.result))},
           {"attempts", std::to_string(r.attempts)},
           {"detail", r.detail}});
  if (auto st = core::append_audit(store, r.notice.environment, {delivery_audit(r, now)}); !st) {
    log.warn("could not write a notice's delivery to the audit trail",
             {{"environment", r.notice.environment}, {"error", st.error().message}});
  }
}

}  // namespace intermission::app
