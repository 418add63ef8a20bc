// SNS message signature verification (aws-facts.md §3), in the order that keeps an attacker
// away from our network: parse, check the type and SignatureVersion, the topic allow-list and
// the pinned SigningCertURL; only then fetch (or look up) the certificate, check its chain and
// validity at the given time, and verify the RSA signature (SHA1 for version 1, SHA256 for 2).
#pragma once

#include <map>
#include <optional>
#include <string>
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
  virtual core::Result<std::string> pem(const std::string& url) = 0;
};

// Certificates from a folder, by their file name (offline use and tests).
class DirectoryCertSource final : public CertSource {
 public:
  explicit DirectoryCertSource(std::string dir) : dir_(std::move(dir)) {}
  core::Result<std::string> pem(const std::string& url) override;

 private:
  std::string dir_;
};

// Certificates over HTTPS from the pinned URL, cached in memory; a folder is consulted first
// when given. Not thread-safe.
class HttpsCertSource final : public CertSource {
 public:
  explicit HttpsCertSource(std::optional<std::string> dir = std::nullopt) : dir_(std::move(dir)) {}
  core::Result<std::string> pem(const std::string& url) override;

 private:
  std::optional<std::string> dir_;
  std::map<std::string, std::string> cache_;
  aws::HttpClient http_;
};

struct VerifyOptions {
  std::vector<std::string> allowed_topics;  // empty = any topic
  std::string ca_file;                      // trust anchors; empty = the system's
  core::Time at{};                          // when to judge certificate validity
};

// Ok when the message is genuine; otherwise kInvalidInput (or kUnavailable when the
// certificate could not be fetched) with the reason.
core::Status verify_sns(const core::SnsMessage& message, CertSource& certs,
                        const VerifyOptions& options);

}  // namespace intermission::adapters::sns
