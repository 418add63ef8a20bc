#include "adapters/lambda/runtime_api.h"

#include <boost/json.hpp>

namespace intermission::adapters::lambda {

std::string error_body(const std::string& error_type, const std::string& message) {
  return boost::json::serialize(
      boost::json::object{{"errorMessage", message}, {"errorType", error_type}});
}

RuntimeApi::RuntimeApi(std::string host_port) : base_("http://" + host_port + "/2018-06-01") {}

core::Result<Invocation> RuntimeApi::next() {
  auto r = poll_.request("GET", base_ + "/runtime/invocation/next", {}, "");
  if (!r) return r.error().with_context("lambda runtime API next");
  if (r->status != 200) {
    return core::Error::unavailable("lambda runtime API next: HTTP " + std::to_string(r->status));
  }
  auto header = [&r](const char* name) {
    const auto it = r->headers.find(name);
    return it == r->headers.end() ? std::string() : it->second;
  };
  Invocation inv;
  inv.request_id = header("lambda-runtime-aws-request-id");
  inv.trace_id = header("lambda-runtime-trace-id");
  inv.function_arn = header("lambda-runtime-invoked-function-arn");
  try {
    inv.deadline_ms = std::stoll(header("lambda-runtime-deadline-ms"));
  } catch (const std::exception&) {
    inv.deadline_ms = 0;
  }
  inv.event = std::move(r->body);
  if (inv.request_id.empty()) {
    return core::Error::unavailable("lambda runtime API next: no request id");
  }
  return inv;
}

core::Status RuntimeApi::post(const std::string& path, const std::string& body,
                              const std::string& error_type) {
  std::vector<std::string> headers{"Content-Type: application/json"};
  if (!error_type.empty()) headers.push_back("Lambda-Runtime-Function-Error-Type: " + error_type);
  auto r = post_.request("POST", base_ + path, headers, body);
  if (!r) return r.error().with_context("lambda runtime API " + path);
  if (r->status != 202 && r->status != 200) {
    return core::Error::unavailable("lambda runtime API " + path + ": HTTP " +
                                    std::to_string(r->status) + " " + r->body.substr(0, 200));
  }
  return {};
}

core::Status RuntimeApi::respond(const std::string& request_id, const std::string& body) {
  return post("/runtime/invocation/" + request_id + "/response", body);
}

core::Status RuntimeApi::fail(const std::string& request_id, const std::string& error_type,
                              const std::string& message) {
  return post("/runtime/invocation/" + request_id + "/error", error_body(error_type, message),
              error_type);
}

core::Status RuntimeApi::init_error(const std::string& error_type, const std::string& message) {
  return post("/runtime/init/error", error_body(error_type, message), error_type);
}

}  // namespace intermission::adapters::lambda
