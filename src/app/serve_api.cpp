#include "app/serve_api.h"

#include <boost/asio/ip/address.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

#include "adapters/crypto/hmac.h"
#include "app/dashboard.h"
#include "app/status.h"
#include "core/event_parser.h"
#include "core/sns.h"
#include "core/state_codec.h"
#include "core/text.h"
#include "core/webhook_events.h"
#include "page/response.h"
#include "page/server.h"

namespace intermission::app {
namespace {

namespace json = boost::json;

// Who sent a request, for sharing work between senders: its address, an IPv6 sender by its
// /64 (what one host or site is usually given), an IPv4-mapped one as IPv4.
std::string sender(const std::string& remote) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(remote, ec);
  if (ec || address.is_v4()) return remote;
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_string();
  }
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::make_address_v6(bytes).to_string() + "/64";
}

HttpResponse error(int status, const std::string& message) {
  return json_response(status, json::serialize(json::object{{"error", message}}));
}

std::string path_of(const std::string& target) { return target.substr(0, target.find('?')); }

// A coarse reason for the verification-failure metric (bounded label values).
std::string failure_kind(const std::string& message) {
  if (message.find("SigningCertURL") != std::string::npos) return "cert_url";
  if (message.find("Timestamp") != std::string::npos) return "timestamp";
  if (message.find("allow-list") != std::string::npos) return "topic";
  if (message.find("SignatureVersion") != std::string::npos) return "version";
  if (message.find("certificate") != std::string::npos) return "certificate";
  if (message.find("signature") != std::string::npos) return "signature";
  return "format";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The host of a Host header without its port and brackets, lower-cased, without a final dot.
std::string host_name(const std::string& header) {
  std::string h = header;
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    if (close == std::string::npos) return "";
    const std::string rest = h.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return "";
    h = h.substr(1, close - 1);
  } else if (const auto colon = h.find(':'); colon != std::string::npos) {
    if (h.find(':', colon + 1) != std::string::npos) return "";  // an unbracketed IPv6 address
    h = h.substr(0, colon);
  }
  if (!h.empty() && h.back() == '.') h.pop_back();
  return lower(h);
}

// RFC 4648 base64, for Basic credentials; nullopt on a malformed input.
std::optional<std::string> base64_decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  std::size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const auto v = kAlphabet.find(in[i]);
    if (v == std::string::npos) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  for (; i < in.size(); ++i) {
    if (in[i] != '=') return std::nullopt;
  }
  return out;
}

bool carries_token(const std::string& authorization, const std::string& token) {
  if (authorization.rfind("Bearer ", 0) == 0) {
    return adapters::constant_time_equal(authorization.substr(7), token);
  }
  if (authorization.rfind("Basic ", 0) == 0) {
    const auto decoded = base64_decode(authorization.substr(6));
    if (!decoded) return false;
    const auto colon = decoded->find(':');  // any user name; the token is the password
    return colon != std::string::npos &&
           adapters::constant_time_equal(decoded->substr(colon + 1), token);
  }
  return false;
}

// The authority (host[:port]) of an Origin header ("https://host:port"), lower-cased; empty
// when it has none ("null", an opaque origin).
std::string origin_authority(const std::string& origin) {
  const auto scheme = origin.find("://");
  if (scheme == std::string::npos) return "";
  std::string rest = origin.substr(scheme + 3);
  if (const auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  return lower(rest);
}

// Headers every dashboard answer carries: nothing inline runs, nothing frames it, nothing is
// kept by a cache on the way.
void dashboard_headers(HttpResponse& out) {
  out.headers.emplace_back("Content-Security-Policy", std::string(kDashboardCsp));
  out.headers.emplace_back("X-Content-Type-Options", "nosniff");
  out.headers.emplace_back("X-Frame-Options", "DENY");
  out.headers.emplace_back("Referrer-Policy", "no-referrer");
  out.headers.emplace_back("Cache-Control", "no-store");
}

}  // namespace

std::optional<std::string> cross_site_refusal(const HttpRequest& r) {
  if (r.method == "GET" || r.method == "HEAD" || r.method == "OPTIONS") return std::nullopt;
  const std::string site = lower(r.header("sec-fetch-site"));
  if (!site.empty() && site != "same-origin" && site != "none") {
    return "Sec-Fetch-Site: " + site;
  }
  const std::string origin = r.header("origin");
  if (!origin.empty() && origin_authority(origin) != lower(r.header("host"))) {
    return "Origin " + origin + " is not this listener";
  }
  return std::nullopt;
}

HttpResponse health_response() { return json_response(200, R"({"status":"ok"})"); }

bool admin_host_allowed(const std::string& host, const std::vector<std::string>& names) {
  const std::string h = host_name(host);
  if (h.empty()) return false;
  if (h == "localhost") return true;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(h, ec);
  if (!ec) {
    if (address.is_loopback()) return true;
    if (address.is_v6() && address.to_v6().is_v4_mapped() &&
        boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6())
            .is_loopback()) {
      return true;
    }
  }
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
    if (!ec) {
      boost::system::error_code ec2;
      const auto other = boost::asio::ip::make_address(host_name(n), ec2);
      return !ec2 && other == address;
    }
    return host_name(n) == h;
  });
}

ServeApi::ServeApi(Deps deps) : d_(std::move(deps)) {
  admin_names_ = d_.config.serve.admin_hosts;
  // The addresses the admin listener is bound to are its own names too (not a wildcard).
  if (auto endpoints = page::parse_listen(d_.config.serve.admin_listen)) {
    for (const auto& e : *endpoints) {
      if (!e.address().is_unspecified()) admin_names_.push_back(e.address().to_string());
    }
  }
}

std::optional<HttpResponse> ServeApi::refuse_without_token(const HttpRequest& r,
                                                           bool basic_prompt) const {
  if (d_.operator_token.empty()) {
    return error(403,
                 "disabled: no usable operator token is configured (the daemon's log says why)");
  }
  if (carries_token(r.header("authorization"), d_.operator_token)) return std::nullopt;
  HttpResponse out = error(401, "a valid bearer token is required");
  out.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"intermission\"");
  // Lets a browser ask for it (any user name, the token as the password).
  if (basic_prompt) out.headers.emplace_back("WWW-Authenticate", "Basic realm=\"intermission\"");
  return out;
}

HttpResponse ServeApi::public_side(const HttpRequest& r) {
  const std::string path = path_of(r.target);
  HttpResponse out;
  if (path == "/healthz" && (r.method == "GET" || r.method == "HEAD")) {
    out = health_response();
  } else if (path == "/sns" && r.method == "POST") {
    out = sns(r);
  } else if (path == "/webhook" && r.method == "POST") {
    out = webhook(r);
  } else if (path == "/windows.json" && r.method == "GET") {
    out = public_windows();
  } else if (path == "/webhook/flux" && r.method == "POST") {
    out = flux_webhook(r);
  } else if (path == "/webhook/argocd" && r.method == "POST") {
    out = argocd_webhook(r);
  } else if (path == "/webhook/github" && r.method == "POST") {
    out = github_webhook(r);
  } else {
    out = error(404, "not found");
  }
  d_.metrics.count("intermission_http_requests_total",
                   {{"listener", "public"}, {"code", std::to_string(out.status)}});
  return out;
}

HttpResponse ServeApi::admin_side(const HttpRequest& r) {
  const std::string path = path_of(r.target);
  HttpResponse out;
  const bool guarded = d_.config.serve.status_requires_token;
  if (path == "/healthz") {  // says nothing; HTTP/1.0 health checkers send no Host
    out = health_response();
  } else if (!admin_host_allowed(r.header("host"), admin_names_)) {
    d_.log.warn("admin request refused: Host not accepted (DNS rebinding?)",
                {{"host", r.header("host")}, {"remote", r.remote}});
    out = error(
        421, "this listener answers to localhost, loopback addresses and serve.admin_hosts only");
  } else if (path == "/metrics" && r.method == "GET") {
    auto refused = guarded ? refuse_without_token(r, false) : std::nullopt;
    out = refused ? *refused
                  : HttpResponse{
                        200, "text/plain; version=0.0.4; charset=utf-8", d_.metrics.render(), {}};
  } else if (auto why = cross_site_refusal(r)) {
    d_.log.warn("admin request refused: cross-site (CSRF?)",
                {{"why", *why}, {"path", path}, {"remote", r.remote}});
    out = error(403, "cross-site requests are refused (" + *why + ")");
  } else if ((path == "/" || path == "/dashboard.json") && r.method == "GET") {
    auto refused = guarded ? refuse_without_token(r, path == "/") : std::nullopt;
    out = refused ? *refused : dashboard(path == "/");
  } else if (path == "/dashboard.js" && r.method == "GET") {
    out = HttpResponse{200, "text/javascript; charset=utf-8", std::string(dashboard_script()), {}};
    dashboard_headers(out);
  } else if (path == "/dashboard.css" && r.method == "GET") {
    out = HttpResponse{200, "text/css; charset=utf-8", dashboard_css(), {}};
    dashboard_headers(out);
  } else if (path.rfind("/api/", 0) == 0) {
    out = operator_api(r);
  } else {
    out = error(404, "not found");
  }
  d_.metrics.count("intermission_http_requests_total",
                   {{"listener", "admin"}, {"code", std::to_string(out.status)}});
  return out;
}

HttpResponse ServeApi::record(const core::ParsedItem& item, const std::string& source) {
  auto o = d_.controller.record(item);
  if (!o && o.error().code == core::ErrorCode::kRefused) {
    d_.metrics.count("intermission_events_total", {{"source", source}, {"outcome", "refused"}});
    d_.log.warn("refused", {{"source", source}, {"error", o.error().message}});
    return error(400, o.error().message);  // nothing was written; the sender's to correct
  }
  if (!o) {
    d_.metrics.count("intermission_events_total", {{"source", source}, {"outcome", "error"}});
    d_.log.error("event not recorded", {{"source", source}, {"error", o.error().message}});
    return error(500, "not recorded: " + o.error().message);  // SNS retries a 5xx
  }
  if (o->recorded) {  // the dashboard and /windows.json show it at once (an "off" ends a window)
    dashboard_audit_.erase(o->environment);
    public_ledgers_.erase(o->environment);
  }
  const std::string outcome = o->ignored ? "ignored" : o->recorded ? "recorded" : "unchanged";
  d_.metrics.count("intermission_events_total", {{"source", source}, {"outcome", outcome}});
  if (!o->environment.empty()) d_.schedule_reconcile(o->environment);
  return json_response(200, json::serialize(json::object{{"outcome", outcome},
                                                         {"environment", o->environment},
                                                         {"note", o->note}}));
}

HttpResponse ServeApi::sns(const HttpRequest& r) {
  if (d_.config.serve.sns_topics.empty()) return error(404, "no SNS topics are configured");
  auto refused = [&](const std::string& why) {
    d_.metrics.count("intermission_sns_verification_failures_total", {{"reason", failure_kind(why)}});
    d_.log.warn("SNS message refused", {{"reason", why}, {"remote", r.remote}});
    return error(403, why);
  };
  // One message per body: what is acted on below is the message verified here, nothing else.
  auto m = core::parse_sns_message(r.body);
  if (!m) return refused("not an SNS message: " + m.error().message);
  adapters::sns::VerifyOptions o;
  o.allowed_topics = d_.config.serve.sns_topics;
  o.requester = sender(r.remote);
  o.at = d_.clock.now();
  o.now = o.at;
  if (auto st = adapters::sns::verify_sns(*m, d_.certs, o); !st) {
    if (st.error().code == core::ErrorCode::kUnavailable) {
      if (d_.certs.fetching(m->signing_cert_url)) {
        HttpResponse later = error(503, "the signing certificate is not available; try again later");
        later.ask_again = std::chrono::milliseconds(100);  // the fetch runs on its own thread
        return later;
      }
      d_.metrics.count("intermission_sns_verification_failures_total", {{"reason", "certificate_unavailable"}});
      d_.log.warn("SNS signing certificate unavailable",
                  {{"url", m->signing_cert_url}, {"error", st.error().message}, {"remote", r.remote}});
      // The reason stays in our log: the client learns nothing about our network.
      return error(503, "the signing certificate is not available; try again later");
    }
    return refused(st.error().message);
  }
  // Replays: a message is accepted within core::kSnsMaxAge of its Timestamp, and its id is
  // remembered for longer than that, so no signed message is acted on twice.
  const std::int64_t now_s = core::to_epoch_ms(d_.clock.now()) / 1000;
  for (auto it = seen_sns_.begin(); it != seen_sns_.end();) {
    it = it->second < now_s ? seen_sns_.erase(it) : std::next(it);
  }
  if (seen_sns_.contains(m->message_id)) {
    d_.log.info("SNS message already received", {{"message_id", m->message_id}});
    return json_response(200, R"({"outcome":"duplicate"})");
  }
  if (seen_sns_.size() >= kSnsRememberedMessages) {
    d_.log.warn("too many SNS messages in the last hour; refusing until some expire");
    return error(503, "busy; try again later");
  }
  const auto remember = [&] {
    const auto ts = core::parse_iso8601(m->timestamp).value_or(d_.clock.now());
    seen_sns_[m->message_id] =
        core::to_epoch_ms(ts + core::kSnsMaxAge + 2 * core::kSnsMaxSkew) / 1000 + 1;
  };
  if (m->type == "SubscriptionConfirmation") {
    // Signed, and from an allowed topic: confirm by visiting SubscribeURL, which must point at
    // the topic's own regional SNS endpoint.
    if (auto st = core::check_subscribe_url(m->subscribe_url, m->topic_arn); !st) {
      return refused(st.error().message);
    }
    if (auto st = d_.confirm_subscription(m->subscribe_url); !st) {
      d_.log.error("subscription not confirmed", {{"topic", m->topic_arn}, {"error", st.error().message}});
      return error(502, "confirmation failed");
    }
    remember();
    d_.log.info("subscription confirmed", {{"topic", m->topic_arn}});
    return json_response(200, R"({"outcome":"subscribed"})");
  }
  if (m->type == "UnsubscribeConfirmation") {
    remember();
    d_.log.warn("SNS says the subscription was removed", {{"topic", m->topic_arn}});
    return json_response(200, R"({"outcome":"unsubscribed"})");
  }
  // Events from the verified message alone (CodeDeploy only), never from the body again.
  HttpResponse last = json_response(200, R"({"outcome":"ignored"})");
  for (const auto& item : core::events_from_sns(*m, core::EventSource::kSnsHttp)) {
    last = record(item, "sns-http");
    if (last.status >= 500) return last;
  }
  remember();
  return last;
}

HttpResponse ServeApi::webhook(const HttpRequest& r) {
  if (d_.webhook_secret.empty()) return error(404, "the webhook is not configured");
  const std::string ts = r.header("x-intermission-timestamp");
  const std::string sig = r.header("x-intermission-signature");
  std::int64_t t = 0;
  try {
    t = std::stoll(ts);
  } catch (const std::exception&) {
    return error(401, "X-Intermission-Timestamp must be Unix seconds");
  }
  const std::int64_t now = core::to_epoch_ms(d_.clock.now()) / 1000;
  if (t < now - kWebhookWindow.count() || t > now + kWebhookWindow.count()) {
    return error(401, "timestamp outside the allowed window (replay?)");
  }
  const std::string expected = "sha256=" + adapters::hmac_sha256_hex(d_.webhook_secret, ts + "." + r.body);
  if (!adapters::constant_time_equal(sig, expected)) {
    return error(401, "bad signature: X-Intermission-Signature must be sha256=HMAC-SHA256(secret, TIMESTAMP.BODY)");
  }
  for (auto it = seen_webhooks_.begin(); it != seen_webhooks_.end();) {
    it = it->second < now ? seen_webhooks_.erase(it) : std::next(it);
  }
  if (!seen_webhooks_.emplace(sig, t + kWebhookWindow.count()).second) {
    return error(409, "this request was already received (replay)");
  }
  auto e = core::parse_intermission_webhook(r.body, "webhook");
  if (!e) return error(400, e.error().message);
  e->message_id = "webhook:" + sig.substr(7, 32);
  e->time = core::from_epoch_ms(t * 1000);
  return record(*e, "webhook");
}

HttpResponse ServeApi::refuse_webhook(const std::string& source, int status, const std::string& why,
                                      const HttpRequest& r) {
  d_.metrics.count("intermission_webhook_refused_total", {{"source", source}, {"code", std::to_string(status)}});
  d_.log.warn("webhook refused", {{"source", source}, {"reason", why}, {"remote", r.remote}});
  return error(status, why);
}

HttpResponse ServeApi::record_once(const std::string& source, const std::string& key,
                                   std::int64_t expiry, const core::ParsedItem& item) {
  const std::int64_t now = core::to_epoch_ms(d_.clock.now()) / 1000;
  for (auto it = seen_native_.begin(); it != seen_native_.end();) {
    it = it->second < now ? seen_native_.erase(it) : std::next(it);
  }
  const std::string k = source + ":" + key;
  if (seen_native_.contains(k)) {
    d_.log.info("webhook delivery already received", {{"source", source}, {"key", key}});
    d_.metrics.count("intermission_events_total", {{"source", source}, {"outcome", "duplicate"}});
    return json_response(200, R"({"outcome":"duplicate"})");
  }
  if (seen_native_.size() >= kSnsRememberedMessages) {
    d_.log.warn("too many webhook deliveries remembered; refusing until some expire");
    return error(503, "busy; try again later");
  }
  HttpResponse out = record(item, source);
  if (out.status < 500) seen_native_[k] = expiry;  // a failure to record may be retried
  return out;
}

HttpResponse ServeApi::flux_webhook(const HttpRequest& r) {
  if (d_.flux_secret.empty()) return error(404, "the Flux webhook is not configured");
  // X-Signature: <hash function>=<hex HMAC of the body> (the generic-hmac provider).
  const std::string header = r.header("x-signature");
  const auto eq = header.find('=');
  if (header.empty() || eq == std::string::npos) {
    return refuse_webhook("flux", 401, "X-Signature (sha256=<hex HMAC of the body>) is required", r);
  }
  const std::string algorithm = header.substr(0, eq);
  const auto expected = adapters::hmac_hex(algorithm, d_.flux_secret, r.body);
  if (!expected) {
    return refuse_webhook("flux", 401, "X-Signature: unsupported hash function '" + algorithm +
                                           "' (sha224, sha256, sha384, sha512)", r);
  }
  if (!adapters::constant_time_equal(lower(header.substr(eq + 1)), *expected)) {
    return refuse_webhook("flux", 401, "X-Signature does not match the body (wrong secret?)", r);
  }
  auto item = core::parse_flux_event(r.body, d_.config.serve.flux_objects);
  if (!item) return error(400, item.error().message);
  const std::int64_t now = core::to_epoch_ms(d_.clock.now()) / 1000;
  std::int64_t at = now;
  if (auto* e = std::get_if<core::DeploymentEvent>(&*item)) {
    at = core::to_epoch_ms(*e->time) / 1000;
    if (at < now - kFluxWindow.count() || at > now + kFluxWindow.count()) {
      return refuse_webhook("flux", 401, "the event's timestamp is more than " +
                                             std::to_string(kFluxWindow.count() / 60) +
                                             " minutes from now (a replay, or a clock is wrong)", r);
    }
    e->message_id = "flux:" + adapters::hmac_sha256_hex(d_.flux_secret, r.body).substr(0, 32);
  }
  // The same bytes again (whatever the hash function named) are the same event.
  return record_once("flux", adapters::hmac_sha256_hex(d_.flux_secret, r.body),
                     at + 2 * kFluxWindow.count(), *item);
}

HttpResponse ServeApi::argocd_webhook(const HttpRequest& r) {
  if (d_.argocd_token.empty()) return error(404, "the Argo CD webhook is not configured");
  if (!carries_token(r.header("authorization"), d_.argocd_token)) {
    return refuse_webhook("argocd", 401,
                          "Authorization: Bearer <token> (or Basic with the token as the password) is required", r);
  }
  auto e = core::parse_intermission_webhook(r.body, "argocd");
  if (!e) return error(400, e.error().message);
  e->time = d_.clock.now();
  // No signature and no timestamp: the same notification (Argo CD retries a failed delivery)
  // is recognised by what it says.
  const std::string key = e->environment + "\n" + e->deployment_id + "\n" + std::string(core::to_string(e->status));
  e->message_id = "argocd:" + adapters::hmac_sha256_hex(d_.argocd_token, key).substr(0, 32);
  return record_once("argocd", key,
                     core::to_epoch_ms(d_.clock.now()) / 1000 + kArgoCdDedupe.count(), *e);
}

HttpResponse ServeApi::github_webhook(const HttpRequest& r) {
  if (d_.github_secret.empty()) return error(404, "the GitHub webhook is not configured");
  const std::string expected = "sha256=" + adapters::hmac_sha256_hex(d_.github_secret, r.body);
  const std::string sig = r.header("x-hub-signature-256");
  if (sig.empty()) {
    return refuse_webhook("github", 401, "X-Hub-Signature-256 is required (set the webhook's secret)", r);
  }
  if (!adapters::constant_time_equal(lower(sig), expected)) {
    return refuse_webhook("github", 401, "X-Hub-Signature-256 does not match the body (wrong secret?)", r);
  }
  const std::string delivery = r.header("x-github-delivery");
  if (delivery.empty()) return error(400, "X-GitHub-Delivery is required");
  auto item = core::parse_github_event(r.header("x-github-event"), r.body, d_.config.serve.github_environments);
  if (!item) return error(400, item.error().message);
  const std::int64_t now = core::to_epoch_ms(d_.clock.now()) / 1000;
  std::int64_t created = now;
  if (auto* e = std::get_if<core::DeploymentEvent>(&*item)) {
    if (!e->time) return error(400, "deployment_status.created_at must be an RFC 3339 time");
    created = core::to_epoch_ms(*e->time) / 1000;
    if (created < now - kGitHubMaxAge.count()) {
      return refuse_webhook("github", 401, "the deployment status's created_at is more than " +
                                               std::to_string(kGitHubMaxAge.count() / 3600) +
                                               " hours old (a replay?)", r);
    }
    e->message_id = "github:" + delivery;
  }
  // Each delivery is acted on once, and remembered as long as it would be accepted.
  return record_once("github", delivery, std::max(created, now) + kGitHubMaxAge.count() + 300, *item);
}

namespace {

// An operator API body: a JSON object of strings (empty: no fields), UTF-8 throughout.
core::Result<json::object> json_body(const std::string& text) {
  if (text.empty()) return json::object{};
  if (auto st = core::check_utf8(text, "the body"); !st) return st.error();
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return core::Error::invalid_input("the body must be a JSON object");
  for (const auto& kv : v.get_object()) {
    if (!kv.value().is_string()) {
      return core::Error::invalid_input("'" + std::string(kv.key()) + "' must be a string");
    }
  }
  return std::move(v.get_object());
}

}  // namespace

HttpResponse ServeApi::operator_api(const HttpRequest& r) {
  if (auto refused = refuse_without_token(r, false)) return *refused;
  // /api/environments[/ENV[/on|/off]]
  const std::string path = path_of(r.target);
  std::vector<std::string> parts;
  for (std::size_t p = 1; p < path.size();) {
    std::size_t e = path.find('/', p);
    if (e == std::string::npos) e = path.size();
    parts.push_back(path.substr(p, e - p));
    p = e + 1;
  }
  if (parts.size() < 2 || parts[1] != "environments") return error(404, "not found");
  std::vector<std::string> names;
  if (parts.size() >= 3) {
    if (d_.config.environment(parts[2]) == nullptr) return error(404, "no environment '" + parts[2] + "'");
    names.push_back(parts[2]);
  } else {
    for (const auto& [n, e] : d_.config.environments) names.push_back(n);
  }
  if (parts.size() == 4 && r.method == "POST" && (parts[3] == "on" || parts[3] == "off")) {
    core::OperatorCommand c;
    c.environment = parts[2];
    c.action = parts[3] == "on" ? core::OperatorAction::kOn : core::OperatorAction::kOff;
    auto body = json_body(r.body);
    if (!body) return error(400, body.error().message);
    const auto& o = *body;
    auto field = [&o](const char* k) -> std::optional<std::string> {
      const auto* x = o.if_contains(k);
      return x != nullptr ? std::optional(std::string(x->get_string())) : std::nullopt;
    };
    c.reason = field("reason").value_or("");
    c.who = field("who").value_or("");
    if (c.who.empty()) c.who = "operator-api";
    if (auto f = field("for")) {
      auto d = core::read_duration(*f);
      if (!d) return error(400, "'for': " + d.error().message);
      c.duration = *d;
    }
    if (auto u = field("until")) {
      auto t = core::read_operator_time(*u);
      if (!t) return error(400, "'until': " + t.error().message);
      c.until = *t;
    }
    // The rest (a past until, for and until together, text that is not UTF-8) is the core's one
    // check of an operator command, which record() answers with 400.
    return record(c, "operator");
  }
  if (parts.size() >= 4 && parts[3] == "windows") return windows_api(r, parts);
  if (parts.size() > 3 || r.method != "GET") return error(405, "use GET, or POST .../on and .../off");
  std::vector<EnvironmentStatus> envs;
  for (const auto& n : names) {
    EnvironmentStatus s;
    s.config = d_.config.environment(n);
    auto state = d_.store.load(n);
    if (!state) {
      // The one asked for by name cannot be answered; in the list it is shown as unreadable
      // and the others still are, as `intermission status` does.
      if (parts.size() >= 3) return error(503, state.error().message);
      s.error = state.error().message;
      envs.push_back(std::move(s));
      continue;
    }
    s.state = std::move(*state);
    if (auto recent = d_.store.audit(n, 10)) s.recent = std::move(*recent);
    if (auto lease = d_.store.lease(n)) s.lease = *lease;
    if (auto b = d_.backends.make(*s.config)) s.backend = (*b)->describe();
    envs.push_back(std::move(s));
  }
  return json_response(200, json::serialize(status_json(envs, d_.clock.now())));
}

// /api/environments/ENV/windows: GET lists, POST schedules; .../windows/ID: POST changes,
// DELETE cancels. The body: {"at": "+2h" or a UTC time, "for": "1h" or "until": a UTC time,
// "reason", "who"}.
HttpResponse ServeApi::windows_api(const HttpRequest& r, const std::vector<std::string>& parts) {
  const std::string& env = parts[2];
  if (parts.size() > 5) return error(404, "not found");
  if (parts.size() == 4 && r.method == "GET") {
    auto state = d_.store.load(env);
    if (!state) return error(503, state.error().message);
    const core::Time now = d_.clock.now();
    json::array list;
    for (const auto& w : core::upcoming_windows(*state, now)) {
      json::value v = core::to_json(w);
      v.as_object()["active"] = w.start <= now;
      list.push_back(std::move(v));
    }
    return json_response(200, json::serialize(json::object{{"environment", env},
                                                           {"windows", std::move(list)}}));
  }
  core::WindowCommand c;
  c.environment = env;
  if (parts.size() == 4 && r.method == "POST") {
    c.action = core::WindowAction::kSchedule;
  } else if (parts.size() == 5 && r.method == "POST") {
    c.action = core::WindowAction::kChange;
    c.id = parts[4];
  } else if (parts.size() == 5 && r.method == "DELETE") {
    c.action = core::WindowAction::kCancel;
    c.id = parts[4];
  } else {
    return error(405, "use GET or POST .../windows, POST or DELETE .../windows/ID");
  }
  auto parsed = json_body(r.body);
  if (!parsed) return error(400, parsed.error().message);
  const auto& o = *parsed;
  auto field = [&o](const char* k) -> std::optional<std::string> {
    const auto* x = o.if_contains(k);
    return x != nullptr ? std::optional(std::string(x->get_string())) : std::nullopt;
  };
  c.who = field("who").value_or("operator-api");
  c.reason = field("reason");
  if (auto at = field("at")) {
    if (auto st = core::read_window_start(*at, c); !st) return error(400, "'at': " + st.error().message);
  }
  if (auto f = field("for")) {
    auto d = core::read_duration(*f);
    if (!d) return error(400, "'for': " + d.error().message);
    c.duration = *d;
  }
  if (auto u = field("until")) {
    if (c.duration) return error(400, "give 'for' or 'until', not both");
    if (auto st = core::read_window_end(*u, c); !st) return error(400, "'until': " + st.error().message);
  }
  auto out = d_.controller.handle_window(c, false, false);
  if (!out) {
    const auto code = out.error().code;
    if (code == core::ErrorCode::kRefused) return error(400, out.error().message);
    if (code == core::ErrorCode::kNotFound) return error(404, out.error().message);
    d_.log.error("window not recorded", {{"environment", env}, {"error", out.error().message}});
    return error(500, "not recorded: " + out.error().message);
  }
  d_.schedule_reconcile(env);
  dashboard_audit_.erase(env);
  public_ledgers_.erase(env);
  json::object body{{"environment", env}, {"id", out->note}, {"on", out->decision.on}};
  if (c.action != core::WindowAction::kCancel) {
    if (auto state = d_.store.load(env); state && state->windows.contains(out->note)) {
      body["window"] = core::to_json(state->windows.at(out->note));
    }
  }
  return json_response(c.action == core::WindowAction::kSchedule ? 201 : 200, json::serialize(body));
}

// GET /windows.json on the public listener: the upcoming and active windows of every
// environment, for an application's "maintenance on Sunday 02:00 UTC" banner. Only what the
// page itself may say (times and reason); cacheable for a little while.
HttpResponse ServeApi::public_windows() {
  const core::Time now = d_.clock.now();
  json::array envs;
  bool complete = true;
  for (const auto& [name, env] : d_.config.environments) {
    auto cached = public_ledgers_.find(name);
    if (cached == public_ledgers_.end() || now < cached->second.read ||
        now - cached->second.read >= kWindowsServerCache) {
      auto state = d_.store.load(name);
      if (!state) {
        complete = false;
        // Not the store's message: this listener is public. The others are still listed.
        envs.push_back(json::object{{"environment", name},
                                    {"error", "the ledger cannot be read now"},
                                    {"windows", json::array{}}});
        continue;
      }
      cached = public_ledgers_.insert_or_assign(name, CachedLedger{now, std::move(*state)}).first;
    }
    // Judged at this request's time, whenever the ledger was read: a window that has begun
    // since is active, one that has ended is gone.
    json::array list;
    for (const auto& w : core::upcoming_windows(cached->second.state, now)) {
      list.push_back(json::object{{"id", w.id},
                                  {"start", core::format_iso8601(w.start)},
                                  {"end", core::format_iso8601(w.end)},
                                  {"reason", w.reason},
                                  {"active", w.start <= now}});
    }
    envs.push_back(json::object{{"environment", name}, {"windows", std::move(list)}});
  }
  HttpResponse out =
      json_response(200, json::serialize(json::object{{"time", core::format_iso8601(now)},
                                                      {"environments", std::move(envs)}}));
  out.headers.emplace_back("Access-Control-Allow-Origin", "*");
  // An environment left out must not be taken for one without windows for a while by a cache
  // between here and the banner: asked again, it is read again.
  out.headers.emplace_back("Cache-Control",
                           complete ? "public, max-age=" + std::to_string(kWindowsMaxAge.count())
                                    : std::string("no-store"));
  return out;
}

// The dashboard: the page (`page`) or the JSON its script polls. Every environment's state and
// lease are read on each request; its audit lines (kDashboardAuditLimit at most) are kept for
// kDashboardAuditRefresh, since a poll every few seconds must not read the whole trail again.
HttpResponse ServeApi::dashboard(bool page) {
  const core::Time now = d_.clock.now();
  std::vector<DashboardEnv> envs;
  for (const auto& [name, env] : d_.config.environments) {
    DashboardEnv e;
    e.config = &env;
    auto state = d_.store.load(name);
    if (!state) {
      e.error = state.error().message;
      envs.push_back(std::move(e));
      continue;
    }
    e.state = std::move(*state);
    d_.metrics.set("intermission_maintenance", {{"environment", name}},
                   core::decide(e.state, env, now).on ? 1 : 0);
    auto cached = dashboard_audit_.find(name);
    if (cached == dashboard_audit_.end() || now - cached->second.read >= kDashboardAuditRefresh ||
        now < cached->second.read) {
      auto audit = d_.store.audit(name, kDashboardAuditLimit);
      if (audit) {
        cached = dashboard_audit_.insert_or_assign(name, CachedAudit{now, std::move(*audit)}).first;
      }
    }
    // An audit trail that cannot be read leaves the timeline without record (grey), not the
    // whole dashboard without an answer.
    if (cached != dashboard_audit_.end()) {
      e.audit = cached->second.entries;
      e.audit_complete = e.audit.size() < kDashboardAuditLimit;
    } else {
      e.audit_complete = false;
    }
    if (auto lease = d_.store.lease(name)) e.lease = *lease;
    envs.push_back(std::move(e));
  }
  HttpResponse out =
      page ? HttpResponse{200, "text/html; charset=utf-8",
                          dashboard_html(envs, now, !d_.operator_token.empty()), {}}
           : json_response(200, json::serialize(dashboard_json(envs, now)));
  dashboard_headers(out);
  return out;
}

}  // namespace intermission::app
