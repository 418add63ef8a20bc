#include "adapters/sns/verifier.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

namespace intermission::adapters::sns {
namespace {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
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

std::optional<std::string> base64_decode(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  if (text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

core::Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Error::unavailable("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

core::Result<std::string> DirectoryCertSource::pem(const std::string& url) {
  return read_text(dir_ + "/" + core::signing_cert_file_name(url));
}

core::Result<std::string> HttpsCertSource::pem(const std::string& url) {
  if (auto it = cache_.find(url); it != cache_.end()) return it->second;
  if (dir_) {
    if (auto local = read_text(*dir_ + "/" + core::signing_cert_file_name(url))) {
      cache_[url] = *local;
      return local;
    }
  }
  auto r = http_.request("GET", url, {}, "");
  if (!r) return r.error().with_context("fetch signing certificate");
  if (r->status != 200) {
    return core::Error::unavailable("fetch signing certificate " + url + ": HTTP " +
                                    std::to_string(r->status));
  }
  cache_[url] = r->body;
  return r->body;
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
  if (!o.allowed_topics.empty() &&
      std::find(o.allowed_topics.begin(), o.allowed_topics.end(), m.topic_arn) ==
          o.allowed_topics.end()) {
    return invalid("topic " + m.topic_arn + " is not in the allow-list");
  }
  if (auto st = core::check_signing_cert_url(m.signing_cert_url, m.topic_arn); !st) return st;
  const auto signature = base64_decode(m.signature);
  if (!signature) return invalid("Signature is not base64");

  auto pem = certs.pem(m.signing_cert_url);
  if (!pem) return pem.error();
  BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return invalid("the signing certificate is not a PEM certificate");

  // The chain to a trusted CA, and validity at the given time.
  StorePtr store(X509_STORE_new());
  const int loaded = o.ca_file.empty() ? X509_STORE_set_default_paths(store.get())
                                       : X509_STORE_load_file(store.get(), o.ca_file.c_str());
  if (loaded != 1) return core::Error::config("trust anchors: " + openssl_error());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()),
                             static_cast<time_t>(core::to_epoch_ms(o.at) / 1000));
  if (X509_verify_cert(ctx.get()) != 1) {
    return invalid(std::string("the signing certificate is not trusted: ") +
                   X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
  }

  MdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr || EVP_DigestVerifyInit(md.get(), nullptr, digest, nullptr, key) != 1) {
    return invalid("the signing certificate has no usable public key: " + openssl_error());
  }
  const int ok = EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature->data()),
                                  signature->size(),
                                  reinterpret_cast<const unsigned char*>(to_sign->data()),
                                  to_sign->size());
  ERR_clear_error();
  if (ok != 1) return invalid("the signature does not match the message");
  return {};
}

}  // namespace intermission::adapters::sns
