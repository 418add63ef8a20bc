#include "adapters/aws/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "adapters/curl_io.h"

namespace intermission::adapters::aws {
namespace {

std::once_flag g_curl_init;

struct Slist {
  curl_slist* list = nullptr;
  ~Slist() { curl_slist_free_all(list); }
  void add(const std::string& h) { list = curl_slist_append(list, h.c_str()); }
};

}  // namespace

std::optional<std::string> HttpClient::ca_bundle() {
  if (const char* env = std::getenv("AWS_CA_BUNDLE"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  // Amazon Linux 2023 (Lambda provided.al2023) keeps its bundle here; Debian's libcurl was
  // built with /etc/ssl/certs/ca-certificates.crt, which AL2023 lacks.
  static const char* kAmazonLinux = "/etc/pki/tls/certs/ca-bundle.crt";
  if (::access(kAmazonLinux, R_OK) == 0) return std::string(kAmazonLinux);
  return std::nullopt;
}

HttpClient::HttpClient(HttpTimeouts timeouts) : curl_(nullptr), timeouts_(timeouts) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

core::Result<HttpResponse> HttpClient::request(
    const std::string& method, const std::string& url, const std::vector<std::string>& headers,
    const std::string& body, const std::optional<SigV4>& sign,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) return core::Error::internal("curl_easy_init failed");
  auto connect = timeouts_.connect;
  auto total = timeouts_.total;
  if (deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        *deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return core::Error::timeout("no time left before the deadline (" + method + " " + url + ")");
    }
    // curl reads 0 as "no timeout": the caps are at least 1 ms.
    connect = std::min(connect, left);
    total = total.count() == 0 ? left : std::min(total, left);
  }
  curl_easy_reset(c);  // keeps the connection cache, clears the options
  HttpResponse response;
  Slist list;
  for (const auto& h : headers) list.add(h);
  std::string userpwd;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, curl_collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!ca_file_.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  } else if (auto ca = ca_bundle()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, ca->c_str());
  }
  if (method == "POST") {
    // In-memory POST fields: curl hashes exactly these bytes for SigV4 (aws-facts.md §9).
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    // No "Expect:" header to turn off 100-continue: curl 7.88 lists an emptied header in
    // SignedHeaders without sending it, and AWS rejects that (IncompleteSignature; found by
    // the fake's botocore check). Our bodies are far below curl's 1 MiB Expect threshold.
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!body.empty()) {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
  }
  std::string provider;
  if (sign) {
    provider = "aws:amz:" + sign->region + ":" + sign->service;
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, provider.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, sign->access_key.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, sign->secret_key.c_str());
    if (!sign->session_token.empty()) list.add("x-amz-security-token: " + sign->session_token);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.list);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    const std::string what = std::string(curl_easy_strerror(rc)) + " (" + method + " " + url + ")";
    if (rc == CURLE_OPERATION_TIMEDOUT) return core::Error::timeout(what);
    return core::Error::unavailable(what);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace intermission::adapters::aws
