// The deployment events of the webhooks `serve` accepts besides SNS: our own signed body (also
// what an Argo CD notification template renders), a Flux notification-controller Event, and
// GitHub's `deployment_status` event. Pure: the caller has checked the signature; this only
// reads the body. What is not a deployment event is Ignored with the reason, so that the sender
// is answered 2xx and does not retry it.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/event.h"
#include "core/result.h"

namespace intermission::core {

// Our body: {"environment","deployment_id","status": started|succeeded|failed|stopped, "who"?}.
// `application` is set to `sender` ("webhook", "argocd"). Fails (kInvalidInput, with the
// shape expected) when the body is not that.
Result<DeploymentEvent> parse_intermission_webhook(std::string_view body,
                                                   const std::string& sender);

// A Flux Event (github.com/fluxcd/pkg apis/event/v1beta1) as the `generic-hmac` provider posts
// it. `objects` maps "Kind/namespace/name" of the involved object to one of our environments;
// an object not named there is Ignored. The deployment is the object at a source revision
// (metadata "revision", or "<group>/revision", plus helm-controller's
// "<group>/token", the digest of the values): reason Progressing -> started (kustomize-
// controller sends it once a change is applied, while health checks run), ReconciliationSucceeded
// or any "...Succeeded" -> succeeded, severity error or a "...Failed" reason -> failed; anything
// else, or an event without a revision, is Ignored. The event's `timestamp` is in `time`, for
// the caller's replay window. Fails only when the body is not a JSON object with
// involvedObject, reason and timestamp.
Result<ParsedItem> parse_flux_event(std::string_view body,
                                    const std::map<std::string, std::string>& objects);

// A GitHub webhook delivery: `event` is its X-GitHub-Event header. Only `deployment_status`
// events are deployment events: the deployment is "<repository full name>#<deployment id>",
// the environment deployment_status.environment (else deployment.environment), renamed by
// `environments` when it has an entry for it (else used as is); states pending, queued and
// in_progress -> started, success -> succeeded, failure and error -> failed; waiting (for an
// approval) and inactive are Ignored, as is every other event (ping included). The status's
// created_at is in `time`. Fails only when a deployment_status body lacks those fields.
Result<ParsedItem> parse_github_event(std::string_view event, std::string_view body,
                                      const std::map<std::string, std::string>& environments);

}  // namespace intermission::core
