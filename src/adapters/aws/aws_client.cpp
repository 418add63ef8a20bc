#include "adapters/aws/aws_client.h"

#include <boost/json.hpp>
#include <thread>

namespace intermission::adapters::aws {

Sleeper real_sleeper() {
  return [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

namespace {

// The least time an attempt is started with before a deadline: a reply from a nearby region.
constexpr std::chrono::milliseconds kMinAttemptTime{100};

// The kernel's randomness when there is a device for it; the clock when there is none (an
// empty chroot, as in the Lambda packaging test). Jitter needs spread, not secrecy.
std::uint64_t seed() {
  try {
    return std::random_device{}();
  } catch (const std::exception&) {
    return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }
}

}  // namespace

AwsClient::AwsClient(const Service& service, std::string region, std::string endpoint,
                     CredentialsProvider& credentials, core::Logger& log, RetryPolicy retry,
                     Sleeper sleeper, DeadlineSource deadlines)
    : service_(service),
      region_(std::move(region)),
      endpoint_(std::move(endpoint)),
      credentials_(credentials),
      log_(log),
      retry_(retry),
      sleep_(std::move(sleeper)),
      deadlines_(std::move(deadlines)),
      rng_(seed()) {
  // Every request is POST / with no query string: curl 7.88 signs query strings wrongly
  // (aws-facts.md §9), and a path other than "/" is never needed.
  if (!endpoint_.empty() && endpoint_.back() != '/') endpoint_ += '/';
}

core::Result<HttpResponse> AwsClient::send(const std::string& context, const std::string& body,
                                           const std::vector<std::string>& headers,
                                           bool json_protocol, CallKind kind) {
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  std::optional<Clock::time_point> deadline;
  if (deadlines_) {
    const CallDeadlines d = deadlines_();
    deadline = kind == CallKind::kCleanup && d.cleanup ? d.cleanup : d.work;
  }
  // Stopped by the deadline: a timeout that says so (and what failed before), retryable later.
  auto out_of_time = [&](int attempts, const std::optional<core::Error>& before) {
    std::string message = context + ": stopped before the invocation's deadline";
    if (attempts > 0) message += " after " + std::to_string(attempts) + " attempt(s)";
    if (before) message += " (last error: " + before->message + ")";
    log_.warn("AWS call stopped before the invocation's deadline",
              {{"call", context}, {"attempts", std::to_string(attempts)}});
    return core::Error::timeout(message);
  };
  std::optional<core::Error> last;
  int attempt = 1;
  for (; attempt <= retry_.max_attempts; ++attempt) {
    // No attempt with less time left than a reply takes on a good day.
    if (deadline && Clock::now() + kMinAttemptTime > *deadline) {
      return out_of_time(attempt - 1, last);
    }
    AwsError error;
    auto creds = credentials_.get();
    if (!creds) {
      // The source did not answer (the container agent, IMDS, STS): tried again within this
      // call's attempts and budget, as the SDKs retry their credential fetches. Credentials
      // that are missing or refused are not waited for.
      const core::ErrorCode code = creds.error().code;
      last = creds.error().with_context(context);
      if (code != core::ErrorCode::kUnavailable && code != core::ErrorCode::kTimeout &&
          code != core::ErrorCode::kThrottled) {
        break;
      }
      error = AwsError{0, "Credentials", creds.error().message, ""};
    } else {
      const SigV4 sign{region_, service_.endpoint_prefix, creds->access_key, creds->secret_key,
                       creds->session_token};
      auto r = http_.request("POST", endpoint_, headers, body, sign, deadline);
      if (!r) {
        error = AwsError{0, r.error().code == core::ErrorCode::kTimeout ? "Timeout" : "Connection",
                         r.error().message, ""};
      } else if (r->status >= 200 && r->status < 300) {
        return r;
      } else if (json_protocol) {
        auto header = [&r](const char* name) {
          const auto it = r->headers.find(name);
          return it == r->headers.end() ? std::string() : it->second;
        };
        error = parse_json_error(static_cast<int>(r->status), r->body, header("x-amzn-query-error"),
                                 header("x-amzn-requestid"));
      } else {
        error = parse_query_error(static_cast<int>(r->status), r->body);
      }
      last = to_error(error, context);
    }
    if (!retryable(error) || attempt == retry_.max_attempts) break;
    // Full jitter: a random wait in [0, min(cap, base * 2^attempt)].
    const auto ceiling =
        std::min<std::int64_t>(retry_.cap.count(), retry_.base.count() << std::min(attempt, 20));
    std::uniform_int_distribution<std::int64_t> dist(0, std::max<std::int64_t>(ceiling, 1));
    const std::chrono::milliseconds wait(dist(rng_));
    if (Clock::now() - started + wait > retry_.budget) break;
    if (deadline && Clock::now() + wait + kMinAttemptTime > *deadline) {
      return out_of_time(attempt, last);
    }
    log_.warn("AWS call failed, retrying", {{"call", context},
                                            {"error", error.code},
                                            {"attempt", std::to_string(attempt)},
                                            {"wait_ms", std::to_string(wait.count())}});
    sleep_(wait);
  }
  if (attempt > 1) return last->with_context("after " + std::to_string(attempt) + " attempts");
  return *last;
}

core::Result<std::shared_ptr<pugi::xml_document>> AwsClient::query(
    const std::string& action, const std::vector<std::pair<std::string, std::string>>& params,
    CallKind kind) {
  const std::string context = service_.endpoint_prefix + " " + action;
  auto r = send(context, form_body(action, service_.api_version, params),
                {"Content-Type: application/x-www-form-urlencoded; charset=utf-8"}, false, kind);
  if (!r) return r.error();
  auto doc = std::make_shared<pugi::xml_document>();
  const auto parsed = doc->load_buffer(r->body.data(), r->body.size());
  if (!parsed) {
    return core::Error::unavailable(context + ": the reply is not XML (" +
                                    std::string(parsed.description()) + ")");
  }
  return doc;
}

core::Result<boost::json::value> AwsClient::json(const std::string& operation,
                                                 const boost::json::value& body, CallKind kind) {
  const std::string context = service_.endpoint_prefix + " " + operation;
  auto r = send(context, boost::json::serialize(body),
                {"Content-Type: " + service_.json_content_type,
                 "X-Amz-Target: " + service_.json_target + "." + operation},
                true, kind);
  if (!r) return r.error();
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (ec) return core::Error::unavailable(context + ": the reply is not JSON");
  return v;
}

}  // namespace intermission::adapters::aws
