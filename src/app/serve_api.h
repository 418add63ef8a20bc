// What the `serve` daemon answers, listener by listener, as request -> response functions:
// the SNS endpoint and the webhook (public side), the operator API, status page and metrics
// (admin side). Events are recorded in the ledger before the answer; the backend switch runs
// after it, on the worker (schedule_reconcile), so a slow load balancer never makes SNS retry.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>

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

// SNS message ids remembered at most (each for core::kSnsMaxAge and a little more); beyond,
// /sns answers 503 until some expire (SNS retries).
inline constexpr std::size_t kSnsRememberedMessages = 100000;

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
    std::string operator_token;  // empty: the operator API is disabled
    std::string webhook_secret;  // empty: the webhook is disabled
  };

  explicit ServeApi(Deps deps) : d_(std::move(deps)) {}

  HttpResponse public_side(const HttpRequest& r);
  HttpResponse admin_side(const HttpRequest& r);

 private:
  HttpResponse sns(const HttpRequest& r);
  HttpResponse webhook(const HttpRequest& r);
  HttpResponse operator_api(const HttpRequest& r);
  HttpResponse status_page();
  HttpResponse record(const core::ParsedItem& item, const std::string& source);

  Deps d_;
  std::map<std::string, std::int64_t> seen_webhooks_;  // signature -> expiry (epoch s)
  std::map<std::string, std::int64_t> seen_sns_;       // SNS MessageId -> expiry (epoch s)
};

}  // namespace intermission::app
