// What the `serve` daemon answers, listener by listener, as request -> response functions:
// the SNS endpoint and the webhook (public side), the operator API, the dashboard and metrics
// (admin side). Events are recorded in the ledger before the answer; the backend switch runs
// after it, on the worker (schedule_reconcile), so a slow load balancer never makes SNS retry.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adapters/sns/verifier.h"
#include "app/http_server.h"
#include "app/metrics.h"
#include "core/backend.h"
#include "core/config.h"
#include "core/controller.h"
#include "core/log.h"
#include "core/store.h"

namespace intermission::app {

// How far a webhook's timestamp may be from now, and how long its signature is remembered.
inline constexpr std::chrono::seconds kWebhookWindow{300};

// How far a Flux event's timestamp may be from now (it is signed with the body; Flux retries a
// failed delivery for about a minute), and how long a GitHub delivery is accepted after its
// deployment status was created (GitHub's manual redelivery sends the same delivery again).
inline constexpr std::chrono::seconds kFluxWindow{900};
inline constexpr std::chrono::seconds kGitHubMaxAge{24 * 3600};
// How long an Argo CD notification (no timestamp, no signature) is remembered for deduplication.
inline constexpr std::chrono::seconds kArgoCdDedupe{3600};

// SNS message ids remembered at most (each for core::kSnsMaxAge and a little more); beyond,
// /sns answers 503 until some expire (SNS retries).
inline constexpr std::size_t kSnsRememberedMessages = 100000;

// How long a client may cache GET /windows.json (public; a banner need not be fresher).
inline constexpr std::chrono::seconds kWindowsMaxAge{30};
// How long GET /windows.json answers from an environment's ledger as it was read, without
// reading the store again: the listener is public, and every environment's ledger is one store
// read (a DynamoDB GetItem each), so a flood of requests costs at most one read per
// environment per period. Windows are still judged at each request's time; one changed
// through this daemon is shown at once, one changed by another process within this period. A
// ledger that could not be read is read again at the next request, and that answer is not
// cacheable.
inline constexpr std::chrono::seconds kWindowsServerCache{5};

// Whether the admin listener answers a request with this `Host` header (host[:port]):
// loopback addresses, `localhost`, and `names` (compared without case and port) are accepted;
// anything else, an empty Host included, is refused. This is the defence against DNS
// rebinding: a page on attacker.example that resolves to 127.0.0.1 sends Host: attacker.example.
bool admin_host_allowed(const std::string& host, const std::vector<std::string>& names);

// Why a state-changing request (not GET, HEAD or OPTIONS) on the admin listener comes from
// another site and is refused, or nullopt. Browsers say so in Sec-Fetch-Site and Origin; a
// client that sends neither (curl, the CLI) is not a browser and is judged by its token alone.
// This stops a page elsewhere from using credentials the browser attaches by itself (Basic).
std::optional<std::string> cross_site_refusal(const HttpRequest& r);

// How long the dashboard keeps an environment's audit lines before reading them again (an
// operator action through this API forgets them at once).
inline constexpr std::chrono::seconds kDashboardAuditRefresh{15};

// The answer to /healthz on either listener (it says nothing; safe on any thread).
HttpResponse health_response();

class ServeApi {
 public:
  struct Deps {
    const core::Config& config;
    core::Controller& controller;  // records only; runs on the HTTP thread
    core::Store& store;
    core::BackendFactory& backends;
    adapters::sns::CertSource& certs;  // must not block (AsyncCertSource)
    const core::Clock& clock;
    core::Logger& log;
    Metrics& metrics;
    std::function<void(const std::string&)> schedule_reconcile;
    std::function<core::Status(const std::string&)> confirm_subscription;  // GET SubscribeURL
    std::string operator_token;  // empty: the operator API is disabled (and, with
                                 // serve.status_requires_token, the status page and metrics)
    std::string webhook_secret;  // empty: the webhook is disabled
    // The native webhooks, each with its own secret (empty: that path answers 404).
    std::string flux_secret;    // /webhook/flux: X-Signature, HMAC of the body
    std::string argocd_token;   // /webhook/argocd: a static bearer token (Argo CD cannot sign)
    std::string github_secret;  // /webhook/github: X-Hub-Signature-256, HMAC of the body
  };

  explicit ServeApi(Deps deps);

  HttpResponse public_side(const HttpRequest& r);
  HttpResponse admin_side(const HttpRequest& r);

 private:
  HttpResponse sns(const HttpRequest& r);
  HttpResponse webhook(const HttpRequest& r);
  HttpResponse flux_webhook(const HttpRequest& r);
  HttpResponse argocd_webhook(const HttpRequest& r);
  HttpResponse github_webhook(const HttpRequest& r);
  // The answer for a native webhook's verified request: a duplicate of `key` (remembered until
  // `expiry`, epoch s) is acknowledged and not acted on again; else the item is recorded.
  HttpResponse record_once(const std::string& source, const std::string& key, std::int64_t expiry,
                           const core::ParsedItem& item);
  HttpResponse refuse_webhook(const std::string& source, int status, const std::string& why,
                              const HttpRequest& r);
  HttpResponse operator_api(const HttpRequest& r);
  HttpResponse windows_api(const HttpRequest& r, const std::vector<std::string>& parts);
  HttpResponse public_windows();
  HttpResponse dashboard(bool page);
  HttpResponse record(const core::ParsedItem& item, const std::string& source);
  // nullopt when `r` carries the operator token (Bearer, or Basic with it as the password);
  // else the refusal to send.
  std::optional<HttpResponse> refuse_without_token(const HttpRequest& r, bool basic_prompt) const;

  Deps d_;
  std::vector<std::string> admin_names_;               // Host names the admin listener answers to
  std::map<std::string, std::int64_t> seen_webhooks_;  // signature -> expiry (epoch s)
  std::map<std::string, std::int64_t> seen_sns_;       // SNS MessageId -> expiry (epoch s)
  std::map<std::string, std::int64_t> seen_native_;    // source:key -> expiry (epoch s)
  struct CachedAudit {
    core::Time read;
    std::vector<core::AuditEntry> entries;
  };
  std::map<std::string, CachedAudit> dashboard_audit_;  // environment -> its lines, when read
  struct CachedLedger {
    core::Time read;
    core::EnvState state;
  };
  std::map<std::string, CachedLedger> public_ledgers_;  // /windows.json's, by environment
};

}  // namespace intermission::app
