#include "adapters/sns/verifier.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

#include "adapters/crypto/base64.h"

namespace intermission::adapters::sns {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

core::Error invalid(const std::string& why) { return core::Error::invalid_input(why); }

// The one place OpenSSL's error queue becomes text.
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

core::Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error::unavailable("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The one PEM certificate `pem` holds, with nothing around it but white space (the SDKs
// refuse the rest).
core::Result<X509Ptr> one_pem_certificate(const std::string& pem) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  const auto first = pem.find_first_not_of(" \t\r\n");
  const auto last = pem.find_last_not_of(" \t\r\n");
  if (first == std::string::npos || pem.compare(first, kBegin.size(), kBegin) != 0 ||
      last + 1 < kEnd.size() || pem.compare(last + 1 - kEnd.size(), kEnd.size(), kEnd) != 0 ||
      pem.find(kBegin, first + 1) != std::string::npos) {
    return invalid("the signing certificate is not one PEM certificate");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) return invalid("the signing certificate is not a PEM certificate");
  return cert;
}

}  // namespace

core::Result<std::string> DirectoryCertSource::pem(const std::string& url,
                                                   const std::string& /*requester*/) {
  return read_text(dir_ + "/" + core::signing_cert_file_name(url));
}

core::Result<std::string> fetch_certificate(aws::HttpClient& http, const std::string& url,
                                            const std::string& endpoint) {
  std::string target = url;
  if (!endpoint.empty()) target = endpoint + url.substr(url.find('/', 8));
  if (endpoint.empty() && target.rfind("https://", 0) != 0) {
    return core::Error::invalid_input("signing certificates are fetched over HTTPS only");
  }
  auto r = http.request("GET", target, {}, "");
  if (!r) return r.error().with_context("fetch signing certificate " + url);
  if (r->status != 200) {
    return core::Error::unavailable("fetch signing certificate " + url + ": HTTP " +
                                    std::to_string(r->status));
  }
  // Not kept (and a failure remembered) unless it is one PEM certificate: an error page or a
  // truncated answer with 200 must not take the place of a good certificate in the memory.
  if (auto cert = one_pem_certificate(r->body); !cert) {
    return core::Error::unavailable("fetch signing certificate " + url + ": the answer is not " +
                                    "one PEM certificate");
  }
  return std::move(r->body);
}

HttpsCertSource::HttpsCertSource(std::optional<std::string> dir, std::string ca_file,
                                 std::string endpoint)
    : dir_(std::move(dir)), endpoint_(std::move(endpoint)) {
  http_.set_ca_file(std::move(ca_file));
}

core::Result<std::string> HttpsCertSource::pem(const std::string& url,
                                               const std::string& /*requester*/) {
  const auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(url); it != cache_.end()) {
    if (now - it->second.second < kCertCacheAge) return it->second.first;
    cache_.erase(it);
  }
  if (dir_) {
    if (auto local = read_text(*dir_ + "/" + core::signing_cert_file_name(url))) return local;
  }
  auto body = fetch_certificate(http_, url, endpoint_);
  if (!body) return body.error();
  if (cache_.size() >= kCertCacheEntries) cache_.erase(cache_.begin());
  cache_[url] = {*body, now};
  return body;
}

AsyncCertSource::AsyncCertSource(Options options, Fetch fetch)
    : options_(std::move(options)), fetch_(std::move(fetch)) {
  if (!options_.memory) options_.memory = std::make_shared<CertMemory>();
  thread_ = std::thread([this] { run(); });
}

AsyncCertSource::~AsyncCertSource() {
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool AsyncCertSource::queued(const std::string& url) const {
  return in_flight_ == url || std::find(queue_.begin(), queue_.end(), url) != queue_.end();
}

core::Result<std::string> AsyncCertSource::pem(const std::string& url,
                                               const std::string& requester) {
  if (options_.dir) {
    if (auto local = read_text(*options_.dir + "/" + core::signing_cert_file_name(url)))
      return local;
  }
  const auto now = std::chrono::steady_clock::now();
  const std::lock_guard lock(mu_);
  {
    CertMemory& memory = *options_.memory;
    const std::lock_guard known(memory.mu);
    if (auto it = memory.good.find(url); it != memory.good.end()) {
      it->second.used = now;
      // Known: refreshed when old, outside the budget; the last certificate serves meanwhile.
      if (now - it->second.fetched >= options_.max_age && !queued(url)) {
        const auto f = failed_.find(url);
        if (f == failed_.end() || now >= f->second.second) {
          if (f != failed_.end()) failed_.erase(f);
          queue_.push_back(url);
          cv_.notify_one();
        }
      }
      return it->second.pem;
    }
  }
  if (auto it = failed_.find(url); it != failed_.end()) {
    if (now < it->second.second) return core::Error::unavailable(it->second.first);
    failed_.erase(it);
  }
  if (queued(url)) return core::Error::unavailable("the signing certificate is being fetched");
  while (!started_.empty() && now - started_.front().first > std::chrono::minutes(1)) {
    started_.pop_front();
  }
  const auto theirs = std::count_if(started_.begin(), started_.end(),
                                    [&](const auto& s) { return s.second == requester; });
  if (theirs >= options_.new_urls_per_requester) {
    return core::Error::unavailable("too many new signing certificate URLs from " +
                                    (requester.empty() ? std::string("one sender") : requester) +
                                    "; not fetched");
  }
  if (started_.size() >= static_cast<std::size_t>(options_.new_urls_per_minute)) {
    return core::Error::unavailable("too many new signing certificate URLs; not fetched");
  }
  started_.emplace_back(now, requester);
  queue_.push_back(url);
  cv_.notify_one();
  return core::Error::unavailable("the signing certificate is being fetched");
}

bool AsyncCertSource::fetching(const std::string& url) const {
  const std::lock_guard lock(mu_);
  return queued(url);
}

void AsyncCertSource::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    in_flight_ = queue_.front();
    queue_.pop_front();
    const std::string url = in_flight_;
    lock.unlock();
    auto r = fetch_(url);
    lock.lock();
    const auto now = std::chrono::steady_clock::now();
    if (r) {
      CertMemory& memory = *options_.memory;
      const std::lock_guard known(memory.mu);
      const auto was = memory.good.find(url);
      if (memory.good.size() >= kCertCacheEntries && was == memory.good.end()) {
        // Forget the certificate used longest ago.
        memory.good.erase(std::min_element(
            memory.good.begin(), memory.good.end(),
            [](const auto& a, const auto& b) { return a.second.used < b.second.used; }));
      }
      // A refresh keeps when it was last used; a new one counts as used now (it was asked for).
      const auto used = was != memory.good.end() ? was->second.used : now;
      memory.good[url] = {std::move(*r), now, used};
    } else {
      // A known URL whose refresh failed keeps its certificate; it is tried again later.
      if (failed_.size() >= kCertCacheEntries) {
        failed_.erase(std::min_element(
            failed_.begin(), failed_.end(),
            [](const auto& a, const auto& b) { return a.second.second < b.second.second; }));
      }
      failed_[url] = {r.error().message, now + options_.failure_ttl};
    }
    in_flight_.clear();
  }
}

namespace {

// What check_signing_certificate() checks once the certificate is read.
core::Status check_certificate(X509* cert, const std::string& region, core::Time at) {
  const time_t t = static_cast<time_t>(core::to_epoch_ms(at) / 1000);
  time_t when = t;
  if (X509_cmp_time(X509_get0_notBefore(cert), &when) > 0) {
    return invalid("the signing certificate is not valid yet at " + core::format_iso8601(at));
  }
  when = t;
  if (X509_cmp_time(X509_get0_notAfter(cert), &when) < 0) {
    return invalid("the signing certificate has expired at " + core::format_iso8601(at));
  }
  bool named = false;
  std::string names;
  for (const auto& name : core::sns_signing_cert_names(region)) {
    names += (names.empty() ? "" : " or ") + name;
    const int match =
        X509_check_host(cert, name.data(), name.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr);
    if (match == 1) named = true;
  }
  if (!named) return invalid("the signing certificate is not issued to " + names);
  if ((X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0 &&
      (X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE) == 0) {
    return invalid("the signing certificate's key usage does not allow signatures");
  }
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    return invalid("the signing certificate has no RSA key");
  }
  return {};
}

}  // namespace

core::Status check_signing_certificate(const std::string& pem, const std::string& region,
                                       core::Time at) {
  auto cert = one_pem_certificate(pem);
  if (!cert) return cert.error();
  return check_certificate(cert->get(), region, at);
}

core::Status verify_sns(const core::SnsMessage& m, CertSource& certs, const VerifyOptions& o) {
  auto to_sign = core::sns_string_to_sign(m);
  if (!to_sign) return to_sign.error();
  const EVP_MD* digest = nullptr;
  if (m.signature_version == "1") {
    digest = EVP_sha1();
  } else if (m.signature_version == "2") {
    digest = EVP_sha256();
  } else {
    return invalid("SignatureVersion '" + m.signature_version + "' is not 1 or 2");
  }
  if (!o.allowed_topics.empty() && std::find(o.allowed_topics.begin(), o.allowed_topics.end(),
                                             m.topic_arn) == o.allowed_topics.end()) {
    return invalid("topic " + m.topic_arn + " is not in the allow-list");
  }
  if (auto st = core::check_signing_cert_url(m.signing_cert_url, m.topic_arn); !st) return st;
  if (o.now) {
    if (auto st = core::check_sns_timestamp(m, *o.now); !st) return st;
  }
  const auto signature = base64_decode(m.signature);
  if (!signature || signature->empty()) return invalid("Signature is not base64");

  auto pem = certs.pem(m.signing_cert_url, o.requester);
  if (!pem) return pem.error();
  const std::string region = core::sns_topic_region(m.topic_arn).value_or("");
  auto parsed = one_pem_certificate(*pem);
  if (!parsed) return parsed.error();
  const X509Ptr cert = std::move(*parsed);
  if (auto st = check_certificate(cert.get(), region, o.at); !st) return st;

  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || EVP_DigestVerifyInit(md.get(), nullptr, digest, nullptr, key) != 1) {
    return invalid("the signing certificate has no usable public key: " + openssl_error());
  }
  const int ok = EVP_DigestVerify(
      md.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
      reinterpret_cast<const unsigned char*>(to_sign->data()), to_sign->size());
  ERR_clear_error();
  if (ok != 1) return invalid("the signature does not match the message");
  return {};
}

}  // namespace intermission::adapters::sns
