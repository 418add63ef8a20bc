#include "adapters/sns/verifier.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "core/sns.h"

namespace intermission::adapters::sns {
namespace {

const std::string kVectors = std::string(INTERMISSION_SOURCE_DIR) + "/testing/fixtures/sns";

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

core::SnsMessage vector(const std::string& name) {
  auto m = core::parse_sns_message(read(kVectors + "/" + name));
  EXPECT_TRUE(m.ok());
  return m.ok() ? *m : core::SnsMessage{};
}

core::Time at(const char* iso) { return *core::parse_iso8601(iso); }

TEST(Verifier, GenuineMessagesVerifyWithTheLeafAloneAtTheirTime) {
  DirectoryCertSource certs(kVectors + "/certs");
  for (const char* name :
       {"java-v2-notification-with-subject.json", "java-v2-notification-signature-v2.json",
        "java-v2-subscription-confirmation.json", "java-v2-unsubscribe-confirmation.json",
        "java-v1-notification-attributes.json"}) {
    const auto m = vector(name);
    VerifyOptions o;
    o.at = *core::parse_iso8601(m.timestamp) + std::chrono::minutes(1);
    o.now = o.at;
    const auto st = verify_sns(m, certs, o);
    EXPECT_TRUE(st.ok()) << name << ": " << (st.ok() ? "" : st.error().message);
  }
}

TEST(Verifier, TheGenuineCertificateIsCheckedForNameValidityAndRegion) {
  const std::string pem =
      read(kVectors + "/certs/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem");
  EXPECT_TRUE(check_signing_certificate(pem, "us-west-2", at("2026-03-06T20:00:00Z")).ok());
  const auto expired = check_signing_certificate(pem, "us-west-2", at("2026-12-01T00:00:00Z"));
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
  EXPECT_FALSE(check_signing_certificate(pem, "us-west-2", at("2025-01-01T00:00:00Z")).ok());
  // Issued to sns.amazonaws.com: not what China or GovCloud sign with.
  EXPECT_FALSE(check_signing_certificate(pem, "cn-north-1", at("2026-03-06T20:00:00Z")).ok());
  EXPECT_FALSE(check_signing_certificate(pem, "us-gov-west-1", at("2026-03-06T20:00:00Z")).ok());
  EXPECT_FALSE(check_signing_certificate(pem + pem, "us-west-2", at("2026-03-06T20:00:00Z")).ok());
  EXPECT_FALSE(check_signing_certificate("x" + pem, "us-west-2", at("2026-03-06T20:00:00Z")).ok());
  EXPECT_TRUE(
      check_signing_certificate("\n\n" + pem + "\n\n", "us-west-2", at("2026-03-06T20:00:00Z"))
          .ok());
}

TEST(Verifier, AsyncSourceNeverBlocksRateLimitsAndRemembersFailures) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> fetches{0};
  AsyncCertSource::Options options;
  options.new_urls_per_minute = 2;
  options.failure_ttl = std::chrono::seconds(60);
  AsyncCertSource source(options, [&](const std::string& url) -> core::Result<std::string> {
    ++fetches;
    released.wait();  // a URL that hangs
    if (url.find("good") != std::string::npos) return std::string("PEM");
    return core::Error::unavailable("connection timed out to 10.0.0.1");
  });
  const auto started = std::chrono::steady_clock::now();
  auto first = source.pem("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-bad.pem",
                          "198.51.100.7");
  EXPECT_FALSE(first.ok());
  EXPECT_TRUE(
      source.fetching("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-bad.pem"));
  EXPECT_FALSE(source
                   .pem("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-good.pem",
                        "198.51.100.7")
                   .ok());
  const auto limited = source.pem(
      "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-c.pem", "198.51.100.7");
  ASSERT_FALSE(limited.ok());
  EXPECT_NE(limited.error().message.find("too many"), std::string::npos);
  EXPECT_FALSE(
      source.fetching("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-c.pem"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(500))
      << "never blocks";
  release.set_value();
  for (int i = 0;
       i < 200 &&
       source.fetching("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-good.pem");
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto good = source.pem("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-good.pem",
                         "198.51.100.7");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "PEM");
  auto bad = source.pem("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-bad.pem",
                        "198.51.100.7");
  EXPECT_FALSE(bad.ok()) << "the failure is remembered";
  EXPECT_EQ(fetches.load(), 2);
}

// Waits (bounded) until the source has no fetch of `url` under way.
void settle(const AsyncCertSource& source, const std::string& url) {
  for (int i = 0; i < 300 && source.fetching(url); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string url_named(const std::string& name) {
  return "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-" + name + ".pem";
}

// Messages from one peer naming made-up certificate URLs cannot spend the budget a genuine
// delivery from SNS needs: each sender has its own share of new URLs.
TEST(Verifier, AsyncSourceSharesItsBudgetBetweenSenders) {
  AsyncCertSource::Options options;
  options.new_urls_per_minute = 10;
  options.new_urls_per_requester = 3;
  std::atomic<int> fetches{0};
  AsyncCertSource source(options, [&](const std::string& url) -> core::Result<std::string> {
    ++fetches;
    if (url.find("genuine") != std::string::npos) return std::string("PEM");
    return core::Error::unavailable("HTTP 404");
  });
  for (int i = 0; i < 6; ++i) {
    (void)source.pem(url_named("junk" + std::to_string(i)), "203.0.113.9");
  }
  settle(source, url_named("junk2"));
  EXPECT_EQ(fetches.load(), 3) << "the attacker's share only";
  EXPECT_FALSE(source.pem(url_named("genuine"), "54.240.197.1").ok()) << "fetched, not yet there";
  settle(source, url_named("genuine"));
  auto genuine = source.pem(url_named("genuine"), "54.240.197.2");
  ASSERT_TRUE(genuine.ok()) << genuine.error().message;
  EXPECT_EQ(*genuine, "PEM");
}

// A certificate once fetched is known: when it is old it is fetched again in the background,
// outside the budget, and the last one serves meanwhile and after a failed refresh. The memory
// outlives the source (the daemon makes a new one on each configuration reload).
TEST(Verifier, AsyncSourceKeepsKnownCertificatesThroughRefreshesAndReloads) {
  auto memory = std::make_shared<CertMemory>();
  std::atomic<int> fetches{0};
  std::atomic<bool> up{true};
  auto fetch = [&](const std::string&) -> core::Result<std::string> {
    ++fetches;
    if (!up) return core::Error::unavailable("connection timed out");
    return "PEM" + std::to_string(fetches.load());
  };
  AsyncCertSource::Options options;
  options.new_urls_per_minute = 1;
  options.max_age = std::chrono::milliseconds(0);  // always old: every use refreshes
  options.failure_ttl = std::chrono::seconds(0);
  options.memory = memory;
  {
    AsyncCertSource source(options, fetch);
    EXPECT_FALSE(source.pem(url_named("a"), "x").ok());
    settle(source, url_named("a"));
    auto first = source.pem(url_named("a"), "x");  // and a refresh starts, budget spent or not
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(*first, "PEM1");
    settle(source, url_named("a"));
    EXPECT_EQ(fetches.load(), 2);
    up = false;
    auto second = source.pem(url_named("a"), "x");
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*second, "PEM2") << "refreshed in the background";
    settle(source, url_named("a"));
    EXPECT_EQ(fetches.load(), 3);
    auto kept = source.pem(url_named("a"), "x");
    ASSERT_TRUE(kept.ok()) << "a failed refresh keeps the last certificate";
    EXPECT_EQ(*kept, "PEM2");
    settle(source, url_named("a"));
  }
  const int before = fetches.load();
  options.max_age = std::chrono::hours(24);
  AsyncCertSource reloaded(options, fetch);
  auto again = reloaded.pem(url_named("a"), "x");
  ASSERT_TRUE(again.ok()) << "known after a reload";
  EXPECT_EQ(*again, "PEM2");
  EXPECT_EQ(fetches.load(), before);
}

// The memory is bounded: past kCertCacheEntries, the certificate used longest ago gives way,
// not the one fetched longest ago (a certificate SNS signs with every minute stays).
TEST(Verifier, AsyncSourceForgetsTheCertificateUsedLongestAgo) {
  AsyncCertSource::Options options;
  options.new_urls_per_minute = 100;
  options.new_urls_per_requester = 100;
  std::atomic<int> fetches{0};
  AsyncCertSource source(options, [&](const std::string& url) -> core::Result<std::string> {
    ++fetches;
    return "PEM " + url;
  });
  auto learn = [&](const std::string& name) {
    (void)source.pem(url_named(name), "x");
    settle(source, url_named(name));
    ASSERT_TRUE(source.pem(url_named(name), "x").ok()) << name;
  };
  for (std::size_t i = 0; i < kCertCacheEntries; ++i) learn("c" + std::to_string(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_TRUE(source.pem(url_named("c0"), "x").ok()) << "c0: the first fetched, used just now";
  learn("new");
  EXPECT_EQ(fetches.load(), static_cast<int>(kCertCacheEntries) + 1);
  EXPECT_TRUE(source.pem(url_named("c0"), "x").ok()) << "used recently: kept";
  EXPECT_FALSE(source.pem(url_named("c1"), "x").ok()) << "used longest ago: forgotten";
}

}  // namespace
}  // namespace intermission::adapters::sns
