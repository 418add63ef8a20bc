// HTTP for the AWS clients, on libcurl: one easy handle reused for every request (keeps the
// connection alive), connect and total timeouts, SigV4 signing by CURLOPT_AWS_SIGV4, and a
// CA bundle that works on Amazon Linux 2023 as well as Debian. Not thread-safe: one client
// per thread.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace intermission::adapters::aws {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct SigV4 {
  std::string region;
  std::string service;  // signing name: "elasticloadbalancing", "autoscaling", ...
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // added as x-amz-security-token (curl does not)
};

struct HttpTimeouts {
  std::chrono::milliseconds connect{3000};
  std::chrono::milliseconds total{15000};  // 0 = none (the Lambda runtime's long poll)
};

class HttpClient {
 public:
  explicit HttpClient(HttpTimeouts timeouts = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request. Transport failures (no connection, timeout) are errors with the curl
  // reason; any HTTP status is a response. With a `deadline`, the connect and total timeouts
  // end at it at the latest, and a request with no time left is a timeout error, not sent.
  core::Result<HttpResponse> request(
      const std::string& method, const std::string& url, const std::vector<std::string>& headers,
      const std::string& body, const std::optional<SigV4>& sign = std::nullopt,
      std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  // The CA bundle used: AWS_CA_BUNDLE if given, else Amazon Linux's, else curl's default.
  static std::optional<std::string> ca_bundle();

  // Trust only the CAs in `file` for TLS (instead of ca_bundle()); empty: the default.
  void set_ca_file(std::string file) { ca_file_ = std::move(file); }

 private:
  void* curl_;  // CURL*, kept opaque so no header of ours includes curl
  HttpTimeouts timeouts_;
  std::string ca_file_;
};

}  // namespace intermission::adapters::aws
