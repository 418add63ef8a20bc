// A client for one AWS service: signs with the current credentials, speaks the Query or JSON
// protocol, turns AWS errors into ours, and retries throttling, 5xx and connection errors
// with capped exponential backoff and full jitter, bounded in attempts and in time.
#pragma once

#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <pugixml.hpp>
#include <random>
#include <string>
#include <vector>

#include "adapters/aws/credentials.h"
#include "adapters/aws/http_client.h"
#include "adapters/aws/protocol.h"
#include "core/log.h"

namespace intermission::adapters::aws {

struct RetryPolicy {
  int max_attempts = 6;
  std::chrono::milliseconds base{200};
  std::chrono::milliseconds cap{5000};
  std::chrono::milliseconds budget{60000};  // total time across attempts
};

// How a client waits between attempts; tests make it instant.
using Sleeper = std::function<void(std::chrono::milliseconds)>;
Sleeper real_sleeper();

// When the calls of the current piece of work (a Lambda invocation) must be done by, read
// before every call; nullopt = no limit (aws-behaviour.md §14). `cleanup` is later than
// `work`: the calls that give something back (the switching lease) still fit after the work
// ran out of time.
struct CallDeadlines {
  std::optional<std::chrono::steady_clock::time_point> work;
  std::optional<std::chrono::steady_clock::time_point> cleanup;
};
using DeadlineSource = std::function<CallDeadlines()>;

// Which of the CallDeadlines a call keeps to.
enum class CallKind { kWork, kCleanup };

class AwsClient {
 public:
  // Everything referenced must outlive the client. Not thread-safe.
  // With `deadlines`, no attempt starts and no backoff sleeps past the call's deadline, and
  // each attempt's curl timeouts end at it; a call stopped so is a kTimeout error that says so.
  AwsClient(const Service& service, std::string region, std::string endpoint,
            CredentialsProvider& credentials, core::Logger& log, RetryPolicy retry = {},
            Sleeper sleeper = real_sleeper(), DeadlineSource deadlines = {});

  // A Query-protocol call (POST / with a form body). Returns the parsed XML reply.
  core::Result<std::shared_ptr<pugi::xml_document>> query(
      const std::string& action, const std::vector<std::pair<std::string, std::string>>& params,
      CallKind kind = CallKind::kWork);

  // A JSON-protocol call (POST / with X-Amz-Target). Returns the parsed JSON reply.
  core::Result<boost::json::value> json(const std::string& operation,
                                        const boost::json::value& body,
                                        CallKind kind = CallKind::kWork);

  [[nodiscard]] const std::string& endpoint() const { return endpoint_; }
  [[nodiscard]] const std::string& region() const { return region_; }

 private:
  // Sends with retries; `parse_error` reads an error reply.
  core::Result<HttpResponse> send(const std::string& context, const std::string& body,
                                  const std::vector<std::string>& headers, bool json_protocol,
                                  CallKind kind);

  const Service& service_;
  std::string region_;
  std::string endpoint_;
  CredentialsProvider& credentials_;
  core::Logger& log_;
  RetryPolicy retry_;
  Sleeper sleep_;
  DeadlineSource deadlines_;
  HttpClient http_;
  std::mt19937_64 rng_;
};

}  // namespace intermission::adapters::aws
