// The AWS Lambda Runtime API client (a custom runtime's side of the protocol): wait for the
// next invocation, then post its response or its error (aws-facts.md §10).
#pragma once

#include <cstdint>
#include <string>

#include "adapters/aws/http_client.h"
#include "core/result.h"

namespace intermission::adapters::lambda {

struct Invocation {
  std::string request_id;    // Lambda-Runtime-Aws-Request-Id
  std::int64_t deadline_ms = 0;  // Lambda-Runtime-Deadline-Ms (Unix epoch milliseconds)
  std::string trace_id;      // Lambda-Runtime-Trace-Id (goes into _X_AMZN_TRACE_ID)
  std::string function_arn;  // Lambda-Runtime-Invoked-Function-Arn
  std::string event;         // the body: the event JSON
};

class RuntimeApi {
 public:
  // `host_port`: AWS_LAMBDA_RUNTIME_API ("127.0.0.1:9001").
  explicit RuntimeApi(std::string host_port);

  // Blocks until Lambda hands over the next invocation. No timeout: the environment may be
  // frozen between invocations, and a timed-out long poll would fail after a thaw.
  core::Result<Invocation> next();
  core::Status respond(const std::string& request_id, const std::string& body);
  // {"errorMessage","errorType"}: Lambda counts the invocation as failed (and SNS/async
  // invocations are retried).
  core::Status fail(const std::string& request_id, const std::string& error_type,
                    const std::string& message);
  core::Status init_error(const std::string& error_type, const std::string& message);

 private:
  core::Status post(const std::string& path, const std::string& body,
                    const std::string& error_type = "");

  std::string base_;
  aws::HttpClient poll_{aws::HttpTimeouts{std::chrono::milliseconds(3000),
                                          std::chrono::milliseconds(0)}};
  aws::HttpClient post_{aws::HttpTimeouts{std::chrono::milliseconds(3000),
                                          std::chrono::milliseconds(10000)}};
};

// The JSON body of an error post. Pure.
std::string error_body(const std::string& error_type, const std::string& message);

}  // namespace intermission::adapters::lambda
