// SNS message signature verification (aws-facts.md §3, docs/sns.md), with the trust model of
// the AWS SDKs' validators: the SigningCertURL is pinned to the topic's regional SNS host
// before anything is fetched; the certificate comes from that URL over HTTPS verified with the
// system's roots (or from a folder the operator filled); then the certificate itself is
// checked (PEM shape, validity, issued to SNS's signing name, usable for signatures) and the
// RSA signature verified (SHA1 for SignatureVersion 1, SHA256 for 2). No chain is built from
// the certificate file: SNS's files hold the leaf only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/aws/http_client.h"
#include "core/result.h"
#include "core/sns.h"
#include "core/time.h"

namespace intermission::adapters::sns {

// Where signing certificates come from. Only called with URLs that passed the pinned check.
class CertSource {
 public:
  virtual ~CertSource() = default;
  // The PEM text for `url`; kUnavailable when it cannot be had (now). `requester`: who sent
  // the message that names it (a peer address), for sources that share their work fairly.
  virtual core::Result<std::string> pem(const std::string& url, const std::string& requester) = 0;
  // True while a fetch of `url` is under way (the caller may ask again shortly).
  [[nodiscard]] virtual bool fetching(const std::string& /*url*/) const { return false; }
};

// Certificates from a folder the operator filled, by their file name (offline use, tests, a
// host without outbound HTTPS). They are trusted as the operator's choice.
class DirectoryCertSource final : public CertSource {
 public:
  explicit DirectoryCertSource(std::string dir) : dir_(std::move(dir)) {}
  core::Result<std::string> pem(const std::string& url, const std::string& requester) override;

 private:
  std::string dir_;
};

// Bounds of the certificate caches: entries and age (a fetched certificate is asked for again
// after a day; SNS rotates by publishing a new URL).
inline constexpr std::size_t kCertCacheEntries = 32;
inline constexpr std::chrono::hours kCertCacheAge{24};

// Fetches one certificate: GET `url` over HTTPS, TLS verified with the system's roots (or
// `ca_file`), no redirects. `endpoint` (AWS_ENDPOINT_URL_SNS, for emulators and tests)
// replaces the scheme and host. Blocking: callers off the I/O thread only.
core::Result<std::string> fetch_certificate(aws::HttpClient& http, const std::string& url,
                                            const std::string& endpoint);

// Certificates over HTTPS from the pinned URL, in a cache bounded by kCertCacheEntries and
// kCertCacheAge; a folder is consulted first when given. Blocking (for the command line).
// Not thread-safe.
class HttpsCertSource final : public CertSource {
 public:
  explicit HttpsCertSource(std::optional<std::string> dir = std::nullopt, std::string ca_file = "",
                           std::string endpoint = "");
  core::Result<std::string> pem(const std::string& url, const std::string& requester) override;

 private:
  std::optional<std::string> dir_;
  std::string endpoint_;
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> cache_;
  aws::HttpClient http_;
};

// What the daemon has fetched: kept across configuration reloads (the daemon makes a new
// AsyncCertSource for each), so a reload does not forget the certificates SNS signs with.
struct CertMemory {
  struct Good {
    std::string pem;
    std::chrono::steady_clock::time_point fetched;
    std::chrono::steady_clock::time_point used;  // the one used longest ago gives way first
  };
  std::mutex mu;
  std::map<std::string, Good> good;  // at most kCertCacheEntries
};

// The daemon's source: never blocks its caller. A URL not seen before is fetched on a thread
// of its own (one at a time), at most `new_urls_per_minute` new URLs a minute in all and
// `new_urls_per_requester` from one requester (beyond that: kUnavailable at once), so that
// messages naming made-up URLs from one peer cannot spend the budget a genuine delivery needs
// after a restart or a rotation. A failed fetch is remembered for `failure_ttl` and answered
// from memory meanwhile. A URL once fetched is known: after `max_age` (a day) it is fetched again
// in the background, outside the budget, and its last certificate is used meanwhile (and kept
// if the refresh fails: check_signing_certificate still judges its validity). A folder is
// consulted first when given. Thread-safe; the destructor stops the thread (a fetch in
// progress is bounded by the client's timeouts).
class AsyncCertSource final : public CertSource {
 public:
  using Fetch = std::function<core::Result<std::string>(const std::string& url)>;
  struct Options {
    std::optional<std::string> dir;
    int new_urls_per_minute = 30;
    int new_urls_per_requester = 6;  // a minute
    std::chrono::seconds failure_ttl{300};
    std::chrono::milliseconds max_age = kCertCacheAge;  // then refreshed in the background
    std::shared_ptr<CertMemory> memory;                 // made when not given
  };
  AsyncCertSource(Options options, Fetch fetch);
  ~AsyncCertSource() override;
  AsyncCertSource(const AsyncCertSource&) = delete;
  AsyncCertSource& operator=(const AsyncCertSource&) = delete;

  core::Result<std::string> pem(const std::string& url, const std::string& requester) override;
  [[nodiscard]] bool fetching(const std::string& url) const override;

 private:
  void run();
  bool queued(const std::string& url) const;  // under mu_

  Options options_;
  Fetch fetch_;
  mutable std::mutex mu_;  // taken before options_.memory->mu
  std::condition_variable cv_;
  // Failed fetches, until they may be tried again.
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> failed_;
  std::deque<std::string> queue_;
  std::string in_flight_;
  // New-URL fetches of the last minute, and who asked for each.
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> started_;
  bool stop_ = false;
  std::thread thread_;
};

struct VerifyOptions {
  std::vector<std::string> allowed_topics;  // empty = any topic
  std::string requester;                    // who delivered it (CertSource::pem)
  core::Time at{};                          // when to judge the certificate's validity
  // When set, the message's Timestamp must be within core::check_sns_timestamp's window of it.
  std::optional<core::Time> now;
};

// Ok when the message is genuine; otherwise kInvalidInput (or kUnavailable when the
// certificate could not be had) with the reason.
core::Status verify_sns(const core::SnsMessage& message, CertSource& certs,
                        const VerifyOptions& options);

// The checks of the certificate itself: one PEM certificate, nothing around it; valid at
// `at`; issued to one of core::sns_signing_cert_names(region) (SAN dNSName, or CN without
// SAN); a key usage, when present, that allows digital signatures; an RSA key.
core::Status check_signing_certificate(const std::string& pem, const std::string& region,
                                       core::Time at);

}  // namespace intermission::adapters::sns
