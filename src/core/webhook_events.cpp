#include "core/webhook_events.h"

#include <boost/json.hpp>

namespace intermission::core {
namespace {

namespace json = boost::json;

const json::object* object_of(const json::value* v) {
  return v != nullptr ? v->if_object() : nullptr;
}

// A string member of `o` (empty when absent or not a string).
std::string text(const json::object* o, std::string_view key) {
  const auto* v = o != nullptr ? o->if_contains(key) : nullptr;
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<DeploymentEvent> parse_intermission_webhook(std::string_view body,
                                                   const std::string& sender) {
  static const char* kShape =
      R"(the body must be {"environment","deployment_id","status": started|succeeded|failed|stopped, "who"?})";
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  const json::object* o = !ec ? v.if_object() : nullptr;
  if (o == nullptr) return Error::invalid_input(kShape);
  static const std::map<std::string, DeploymentStatus, std::less<>> kStatus = {
      {"started", DeploymentStatus::kInProgress},
      {"succeeded", DeploymentStatus::kSucceeded},
      {"failed", DeploymentStatus::kFailed},
      {"stopped", DeploymentStatus::kStopped}};
  const std::string env = text(o, "environment"), id = text(o, "deployment_id"),
                    status = text(o, "status"), who = text(o, "who");
  const auto s = kStatus.find(status);
  if (env.empty() || id.empty() || s == kStatus.end()) return Error::invalid_input(kShape);
  DeploymentEvent e;
  e.source = EventSource::kWebhook;
  e.environment = env;
  e.application = sender;
  e.deployment_group = env;
  e.deployment_id = id;
  e.status = s->second;
  e.creator = who.empty() ? sender : who;
  return e;
}

Result<ParsedItem> parse_flux_event(std::string_view body,
                                    const std::map<std::string, std::string>& objects) {
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  const json::object* o = !ec ? v.if_object() : nullptr;
  const json::object* involved =
      o != nullptr ? object_of(o->if_contains("involvedObject")) : nullptr;
  const std::string kind = text(involved, "kind"), ns = text(involved, "namespace"),
                    name = text(involved, "name"), reason = text(o, "reason"),
                    severity = text(o, "severity");
  if (kind.empty() || name.empty() || reason.empty()) {
    return Error::invalid_input(
        "not a Flux event: involvedObject {kind, namespace, name} and reason are required");
  }
  const auto at = parse_iso8601(text(o, "timestamp"));
  if (!at) return Error::invalid_input("not a Flux event: timestamp must be an RFC 3339 time");
  const std::string object = kind + "/" + ns + "/" + name;
  const auto env = objects.find(object);
  if (env == objects.end()) {
    return ParsedItem{
        Ignored{"Flux event about " + object + ", which serve.flux.objects does not name"}};
  }
  DeploymentStatus status{};
  if (reason == "Progressing" && severity == "info") {
    status = DeploymentStatus::kInProgress;
  } else if (severity == "error" || ends_with(reason, "Failed")) {
    status = DeploymentStatus::kFailed;
  } else if (severity == "info" && ends_with(reason, "Succeeded")) {
    status = DeploymentStatus::kSucceeded;
  } else {
    return ParsedItem{Ignored{"Flux event " + reason + " (" + severity + ") about " + object +
                              " neither starts nor ends a deployment"}};
  }
  // The revision: "revision", or "<api group>/revision" as the controllers prefix it; and
  // helm-controller's "token" (the digest of the values), since a values change is a release
  // of the same chart version.
  std::string revision, token;
  if (const json::object* meta = object_of(o->if_contains("metadata"))) {
    for (const auto& [key, value] : *meta) {
      if (!value.is_string()) continue;
      if (key == "revision" || ends_with(key, "/revision"))
        revision = std::string(value.get_string());
      if (key == "token" || ends_with(key, "/token")) token = std::string(value.get_string());
    }
  }
  if (revision.empty()) {
    return ParsedItem{Ignored{"Flux event " + reason + " about " + object +
                              " names no revision, so no deployment"}};
  }
  DeploymentEvent e;
  e.source = EventSource::kWebhook;
  e.environment = env->second;
  e.application = "flux";
  e.deployment_group = object;
  e.deployment_id = object + "@" + revision + (token.empty() ? "" : "+" + token);
  e.status = status;
  e.creator = text(o, "reportingController").empty() ? "flux" : text(o, "reportingController");
  e.time = *at;
  if (status == DeploymentStatus::kFailed) {
    e.error_code = reason;
    e.error_message = text(o, "message");
  }
  return ParsedItem{e};
}

Result<ParsedItem> parse_github_event(std::string_view event, std::string_view body,
                                      const std::map<std::string, std::string>& environments) {
  if (event != "deployment_status") {
    return ParsedItem{
        Ignored{"GitHub event '" + std::string(event) + "' is not a deployment_status event"}};
  }
  boost::system::error_code ec;
  const json::value v = json::parse(body, ec);
  const json::object* o = !ec ? v.if_object() : nullptr;
  const json::object* status =
      o != nullptr ? object_of(o->if_contains("deployment_status")) : nullptr;
  const json::object* deployment = o != nullptr ? object_of(o->if_contains("deployment")) : nullptr;
  const json::object* repository = o != nullptr ? object_of(o->if_contains("repository")) : nullptr;
  const json::value* id = deployment != nullptr ? deployment->if_contains("id") : nullptr;
  const std::string state = text(status, "state"), repo = text(repository, "full_name");
  std::string environment = text(status, "environment");
  if (environment.empty()) environment = text(deployment, "environment");
  if (body.substr(0, 8) == "payload=") {
    return Error::invalid_input(
        "a form-encoded delivery: set the GitHub webhook's content type to application/json");
  }
  if (state.empty() || repo.empty() || environment.empty() || id == nullptr ||
      !(id->is_int64() || id->is_uint64())) {
    return Error::invalid_input(
        "not a deployment_status event: deployment_status.state, deployment.id, "
        "deployment.environment and repository.full_name are required");
  }
  static const std::map<std::string, DeploymentStatus, std::less<>> kState = {
      {"pending", DeploymentStatus::kInProgress},     {"queued", DeploymentStatus::kInProgress},
      {"in_progress", DeploymentStatus::kInProgress}, {"success", DeploymentStatus::kSucceeded},
      {"failure", DeploymentStatus::kFailed},         {"error", DeploymentStatus::kFailed}};
  const std::string deployment_id = repo + "#" + json::serialize(*id);
  const auto s = kState.find(state);
  if (s == kState.end()) {
    return ParsedItem{Ignored{"GitHub deployment " + deployment_id + " state '" + state +
                              "' neither starts nor ends a deployment"}};
  }
  DeploymentEvent e;
  e.source = EventSource::kWebhook;
  const auto renamed = environments.find(environment);
  e.environment = renamed != environments.end() ? renamed->second : environment;
  e.application = "github";
  e.deployment_group = repo;
  e.deployment_id = deployment_id;
  e.status = s->second;
  const json::object* creator = object_of(status->if_contains("creator"));
  e.creator = text(creator, "login").empty() ? "github" : text(creator, "login");
  if (auto at = parse_iso8601(text(status, "created_at"))) e.time = *at;
  if (s->second == DeploymentStatus::kFailed) {
    e.error_code = state;
    e.error_message = text(status, "description");
  }
  return ParsedItem{e};
}

}  // namespace intermission::core
