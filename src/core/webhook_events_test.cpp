#include "core/webhook_events.h"

#include <gtest/gtest.h>

#include "testing/fakes.h"

namespace intermission::core {
namespace {

using testing::read_fixture;

const std::map<std::string, std::string> kFluxObjects = {{"Kustomization/apps/webapp", "prod"}};

DeploymentEvent event_of(const Result<ParsedItem>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok() || !std::holds_alternative<DeploymentEvent>(*r)) {
    ADD_FAILURE() << "not a deployment event"
                  << (r.ok() && std::holds_alternative<Ignored>(*r)
                          ? ": " + std::get<Ignored>(*r).reason
                          : "");
    return {};
  }
  return std::get<DeploymentEvent>(*r);
}

std::string ignored_reason(const Result<ParsedItem>& r) {
  if (!r.ok() || !std::holds_alternative<Ignored>(*r)) return "<not ignored>";
  return std::get<Ignored>(*r).reason;
}

// ---- our own body (the signed /webhook, and what an Argo CD template renders) ----

TEST(IntermissionWebhook, ReadsTheFourFieldsAndNamesTheSender) {
  auto e = parse_intermission_webhook(
      R"({"environment":"prod","deployment_id":"web-2026-12-02T06:10:04Z","status":"started","who":"argocd"})",
      "argocd");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->environment, "prod");
  EXPECT_EQ(e->deployment_id, "web-2026-12-02T06:10:04Z");
  EXPECT_EQ(e->status, DeploymentStatus::kInProgress);
  EXPECT_EQ(e->creator, "argocd");
  EXPECT_EQ(e->application, "argocd");
  EXPECT_EQ(e->source, EventSource::kWebhook);
  for (const auto& [status, want] :
       std::map<std::string, DeploymentStatus>{{"succeeded", DeploymentStatus::kSucceeded},
                                               {"failed", DeploymentStatus::kFailed},
                                               {"stopped", DeploymentStatus::kStopped}}) {
    auto x = parse_intermission_webhook(
        R"({"environment":"prod","deployment_id":"d","status":")" + status + "\"}", "webhook");
    ASSERT_TRUE(x.ok()) << status;
    EXPECT_EQ(x->status, want);
    EXPECT_EQ(x->creator, "webhook") << "no who: the sender";
  }
}

TEST(IntermissionWebhook, AnythingElseFailsWithTheShapeExpected) {
  for (const char* body : {"not json", "[]", R"({"environment":"prod","deployment_id":"d"})",
                           R"({"environment":"prod","deployment_id":"d","status":"Running"})",
                           R"({"environment":"","deployment_id":"d","status":"started"})",
                           R"({"environment":"prod","deployment_id":7,"status":"started"})"}) {
    auto e = parse_intermission_webhook(body, "webhook");
    ASSERT_FALSE(e.ok()) << body;
    EXPECT_NE(e.error().message.find("started|succeeded|failed|stopped"), std::string::npos)
        << e.error().message;
  }
}

// ---- Flux notification-controller (generic-hmac provider) ----

TEST(FluxEvent, ADocumentedErrorEventFailsTheDeploymentOfItsRevision) {
  auto e = event_of(
      parse_flux_event(read_fixture("flux/event-validation-failed.docs.json"), kFluxObjects));
  EXPECT_EQ(e.environment, "prod");
  EXPECT_EQ(e.status, DeploymentStatus::kFailed);
  EXPECT_EQ(e.deployment_id,
            "Kustomization/apps/webapp@main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1");
  EXPECT_EQ(e.application, "flux");
  EXPECT_EQ(e.deployment_group, "Kustomization/apps/webapp");
  EXPECT_EQ(e.creator, "kustomize-controller");
  EXPECT_EQ(e.error_code, "ValidationFailed");
  ASSERT_TRUE(e.time.has_value());
  EXPECT_EQ(format_iso8601(*e.time), "2022-10-28T07:26:19.000Z");
}

TEST(FluxEvent, ProgressingStartsAndReconciliationSucceededEndsTheSameDeployment) {
  auto started = event_of(
      parse_flux_event(read_fixture("flux/event-progressing-changeset.json"), kFluxObjects));
  auto ended = event_of(
      parse_flux_event(read_fixture("flux/event-reconciliation-succeeded.json"), kFluxObjects));
  auto failed =
      event_of(parse_flux_event(read_fixture("flux/event-health-check-failed.json"), kFluxObjects));
  EXPECT_EQ(started.status, DeploymentStatus::kInProgress);
  EXPECT_EQ(ended.status, DeploymentStatus::kSucceeded);
  EXPECT_EQ(failed.status, DeploymentStatus::kFailed);
  EXPECT_EQ(started.deployment_id,
            "Kustomization/apps/webapp@main@sha1:a0e7f2d4c5b6e7f8091a2b3c4d5e6f708192a3b4");
  EXPECT_EQ(ended.deployment_id, started.deployment_id);
  EXPECT_EQ(failed.deployment_id, started.deployment_id);
  EXPECT_EQ(format_iso8601(*started.time), "2026-12-02T06:10:04.000Z");
}

TEST(FluxEvent, OtherObjectsReasonsAndEventsWithoutARevisionAreIgnoredWithTheReason) {
  const std::string progressing = read_fixture("flux/event-progressing-changeset.json");
  EXPECT_NE(ignored_reason(parse_flux_event(progressing, {{"Kustomization/apps/other", "prod"}}))
                .find("Kustomization/apps/webapp"),
            std::string::npos);
  std::string other = progressing;
  other.replace(other.find("\"Progressing\""), 13, "\"DependencyNotReady\"");
  EXPECT_NE(ignored_reason(parse_flux_event(other, kFluxObjects)).find("DependencyNotReady"),
            std::string::npos);
  std::string trace = progressing;
  trace.replace(trace.find("\"info\""), 6, "\"trace\"");
  EXPECT_NE(ignored_reason(parse_flux_event(trace, kFluxObjects)), "<not ignored>");
  std::string no_revision = read_fixture("flux/event-health-check-failed.json");
  no_revision.replace(no_revision.find("kustomize.toolkit.fluxcd.io/revision"), 36,
                      "kustomize.toolkit.fluxcd.io/digest");
  EXPECT_NE(ignored_reason(parse_flux_event(no_revision, kFluxObjects)).find("revision"),
            std::string::npos);
}

TEST(FluxEvent, APlainRevisionKeyAndHelmReleaseReasonsAreRead) {
  const std::map<std::string, std::string> objects = {{"HelmRelease/web/podinfo", "staging"}};
  const std::string body =
      R"({"involvedObject":{"kind":"HelmRelease","namespace":"web","name":"podinfo"},"severity":"info",)"
      R"("timestamp":"2026-12-02T06:00:00Z","message":"Helm upgrade succeeded","reason":"UpgradeSucceeded",)"
      R"("metadata":{"revision":"6.5.0"},"reportingController":"helm-controller"})";
  auto e = event_of(parse_flux_event(body, objects));
  EXPECT_EQ(e.environment, "staging");
  EXPECT_EQ(e.status, DeploymentStatus::kSucceeded);
  EXPECT_EQ(e.deployment_id, "HelmRelease/web/podinfo@6.5.0");
  std::string failed = body;
  failed.replace(failed.find("UpgradeSucceeded"), 16, "UpgradeFailed");
  EXPECT_EQ(event_of(parse_flux_event(failed, objects)).status, DeploymentStatus::kFailed);
  // helm-controller's metadata: the chart version and the digest of the values (a values
  // change is another release of the same chart version).
  std::string helm = body;
  helm.replace(
      helm.find(R"("revision":"6.5.0")"), 18,
      R"("helm.toolkit.fluxcd.io/revision":"6.5.0","helm.toolkit.fluxcd.io/token":"sha256:1f2e")");
  EXPECT_EQ(event_of(parse_flux_event(helm, objects)).deployment_id,
            "HelmRelease/web/podinfo@6.5.0+sha256:1f2e");
}

TEST(FluxEvent, ABodyThatIsNoEventFails) {
  for (
      const char* body :
      {"nope", "{}", R"({"involvedObject":{},"reason":"Progressing"})",
       R"({"involvedObject":{"kind":"Kustomization","namespace":"apps","name":"webapp"},"reason":"Progressing","severity":"info","timestamp":"yesterday"})"}) {
    EXPECT_FALSE(parse_flux_event(body, kFluxObjects).ok()) << body;
  }
}

// ---- GitHub deployment_status ----

TEST(GitHubEvent, TheDocumentedSuccessEndsTheRepositorysDeployment) {
  auto e = event_of(parse_github_event(
      "deployment_status", read_fixture("github/deployment_status-success.octokit.json"), {}));
  EXPECT_EQ(e.environment, "production");
  EXPECT_EQ(e.status, DeploymentStatus::kSucceeded);
  EXPECT_EQ(e.deployment_id, "Codertocat/Hello-World#145988746");
  EXPECT_EQ(e.application, "github");
  EXPECT_EQ(e.deployment_group, "Codertocat/Hello-World");
  EXPECT_EQ(e.creator, "Codertocat");
  ASSERT_TRUE(e.time.has_value());
  EXPECT_EQ(format_iso8601(*e.time), "2019-05-15T15:20:55.000Z");
}

TEST(GitHubEvent, TheDocumentedInProgressStartsAndEnvironmentsAreRenamed) {
  const std::string body =
      read_fixture("github/deployment_status-in_progress-gh-pages.octokit.json");
  auto e = event_of(parse_github_event("deployment_status", body, {{"github-pages", "prod"}}));
  EXPECT_EQ(e.status, DeploymentStatus::kInProgress);
  EXPECT_EQ(e.environment, "prod");
  EXPECT_EQ(
      event_of(parse_github_event("deployment_status", body, {{"production", "prod"}})).environment,
      "github-pages")
      << "an environment without an entry keeps its name";
}

TEST(GitHubEvent, StatesMapToOurs) {
  const std::string body = read_fixture("github/deployment_status-success.octokit.json");
  const auto at = body.find("\"state\": \"success\"");
  ASSERT_NE(at, std::string::npos);
  for (const auto& [state, want] :
       std::map<std::string, DeploymentStatus>{{"pending", DeploymentStatus::kInProgress},
                                               {"queued", DeploymentStatus::kInProgress},
                                               {"in_progress", DeploymentStatus::kInProgress},
                                               {"failure", DeploymentStatus::kFailed},
                                               {"error", DeploymentStatus::kFailed}}) {
    std::string b = body;
    b.replace(at, 18, "\"state\": \"" + state + "\"");
    EXPECT_EQ(event_of(parse_github_event("deployment_status", b, {})).status, want) << state;
  }
  for (const char* state : {"inactive", "waiting", "something-new"}) {
    std::string b = body;
    b.replace(at, 18, std::string("\"state\": \"") + state + "\"");
    EXPECT_NE(ignored_reason(parse_github_event("deployment_status", b, {})).find(state),
              std::string::npos)
        << state;
  }
}

TEST(GitHubEvent, OtherEventsAreIgnoredAndABrokenDeploymentStatusFails) {
  EXPECT_NE(
      ignored_reason(parse_github_event("ping", R"({"zen":"Design for failure.","hook_id":1})", {}))
          .find("ping"),
      std::string::npos);
  EXPECT_NE(ignored_reason(parse_github_event(
                "deployment", read_fixture("github/deployment_status-success.octokit.json"), {})),
            "<not ignored>");
  EXPECT_FALSE(parse_github_event("deployment_status", R"({"action":"created"})", {}).ok());
  EXPECT_FALSE(parse_github_event("deployment_status", "not json", {}).ok());
  const auto form =
      parse_github_event("deployment_status", "payload=%7B%22action%22%3A%22created%22%7D", {});
  ASSERT_FALSE(form.ok());
  EXPECT_NE(form.error().message.find("application/json"), std::string::npos)
      << form.error().message;
}

}  // namespace
}  // namespace intermission::core
