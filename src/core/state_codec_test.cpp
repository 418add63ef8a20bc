#include "core/state_codec.h"

#include <gtest/gtest.h>

#include <random>

#include "core/text.h"

namespace intermission::core {
namespace {

TEST(StateCodec, RoundTripKeepsEverything) {
  EnvState s;
  s.environment = "prod";
  DeploymentRecord r;
  r.id = "d-1";
  r.application = "shop";
  r.deployment_group = "prod-web";
  r.status = DeploymentStatus::kFailed;
  r.creator = "user";
  r.rollback_of = "d-0";
  r.first_seen = from_epoch_ms(1000);
  r.last_seen = from_epoch_ms(2000);
  r.ended_at = from_epoch_ms(2000);
  r.expired = false;
  r.dismissed = true;
  s.deployments.emplace(r.id, r);
  DeploymentRecord hook = r;
  hook.id = "build-7";
  hook.codedeploy = false;
  s.deployments.emplace(hook.id, hook);
  s.hold = Hold{true, "db \"upgrade\"\n", "alice", from_epoch_ms(3000), from_epoch_ms(9000)};
  s.applied = Applied{true, from_epoch_ms(3000), "why"};
  s.recent_message_ids = {"a", "b"};
  const std::string text = encode_state(s);
  auto back = decode_state(text, "prod", 7);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->version, 7);
  EXPECT_EQ(encode_state(*back), text);
  EXPECT_EQ(back->deployments.at("d-1").rollback_of, "d-0");
  EXPECT_TRUE(back->deployments.at("d-1").codedeploy);
  EXPECT_FALSE(back->deployments.at("build-7").codedeploy);
  EXPECT_EQ(back->hold->reason, "db \"upgrade\"\n");
}

TEST(StateCodec, ARecordStoredBeforeItsSourceWasKeptIsCodeDeploys) {
  EnvState s;
  s.environment = "prod";
  DeploymentRecord r;
  r.id = "d-1";
  r.first_seen = from_epoch_ms(1000);
  r.last_seen = from_epoch_ms(1000);
  s.deployments.emplace(r.id, r);
  std::string text = encode_state(s);
  const std::string field = R"("codedeploy":true,)";
  const auto at = text.find(field);
  ASSERT_NE(at, std::string::npos) << text;
  text.erase(at, field.size());
  auto back = decode_state(text, "prod", 1);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->deployments.at("d-1").codedeploy);
}

TEST(StateCodec, RejectsWhatItDidNotWrite) {
  EXPECT_FALSE(decode_state("nope", "e", 1).ok());
  EXPECT_FALSE(decode_state("{}", "e", 1).ok());
  EXPECT_FALSE(decode_state(R"({"format":2,"deployments":[]})", "e", 1).ok());
  EXPECT_FALSE(decode_state(R"({"format":1,"deployments":[{"id":5}]})", "e", 1).ok());
  EXPECT_TRUE(decode_state(R"({"format":1,"deployments":[]})", "e", 1).ok());
}

// Any bytes at all, most often ones that are not UTF-8 (a Latin-1 "caf\xe9", a lone 0xff,
// a cut sequence), with quotes, backslashes and control characters among them.
std::string random_bytes(std::mt19937_64& random) {
  static const std::vector<std::string> kPieces = {"caf\xe9",
                                                   "\xff",
                                                   "\xc3",
                                                   "\xe2\x82",
                                                   "\xed\xa0\x80",
                                                   "\xc0\xaf",
                                                   "\xf4\x90\x80\x80",
                                                   "caf\xc3\xa9",
                                                   "\"",
                                                   "\\",
                                                   "\n",
                                                   std::string(1, '\0'),
                                                   "\x7f",
                                                   "\x01",
                                                   "a",
                                                   "\xe2\x82\xac"};
  std::uniform_int_distribution<int> pieces(0, 6);
  std::uniform_int_distribution<std::size_t> which(0, kPieces.size());
  std::uniform_int_distribution<int> byte(0, 255);
  std::string out;
  for (int n = pieces(random); n > 0; --n) {
    const std::size_t i = which(random);
    out += i < kPieces.size() ? kPieces[i] : std::string(1, static_cast<char>(byte(random)));
  }
  return out;
}

// The store writes what encode_state produces and reads it back with decode_state: whatever
// bytes a text field holds (an older version let text that is not UTF-8 in, and such a state
// could not be read back, which made the environment unreadable), the reader accepts what the
// writer wrote. Text that is UTF-8 comes back as it was; any other byte as U+FFFD, so what is
// written is always UTF-8 (as JSON must be: RFC 8259 §8.1) and the ledger never hands a backend,
// a notifier or a page text that is not.
TEST(StateCodec, EveryStateTheWriterProducesTheReaderAcceptsWhateverBytesItsTextHolds) {
  std::mt19937_64 random(20261203);
  std::uniform_int_distribution<std::int64_t> ms(0, 4'000'000'000'000);
  std::bernoulli_distribution maybe(0.5);
  const auto same = [](const std::string& original, const std::string& back) {
    return back == to_valid_utf8(original);
  };
  for (int i = 0; i < 2000; ++i) {
    EnvState s;
    s.environment = "prod";
    for (int d = static_cast<int>(random() % 3); d > 0; --d) {
      DeploymentRecord r;
      r.id = random_bytes(random);
      r.application = random_bytes(random);
      r.deployment_group = random_bytes(random);
      r.status = static_cast<DeploymentStatus>(random() % 8);
      if (maybe(random)) r.creator = random_bytes(random);
      if (maybe(random)) r.rollback_of = random_bytes(random);
      r.first_seen = from_epoch_ms(ms(random));
      r.last_seen = from_epoch_ms(ms(random));
      s.deployments.emplace(to_valid_utf8(r.id), r);
    }
    if (maybe(random)) {
      s.hold = Hold{maybe(random), random_bytes(random), random_bytes(random),
                    from_epoch_ms(ms(random)), std::nullopt};
    }
    s.applied = Applied{maybe(random), std::nullopt, random_bytes(random)};
    for (int m = static_cast<int>(random() % 3); m > 0; --m) {
      s.recent_message_ids.push_back(random_bytes(random));
    }
    for (int w = static_cast<int>(random() % 3); w > 0; --w) {
      Window win{random_bytes(random), from_epoch_ms(ms(random)), from_epoch_ms(ms(random)),
                 random_bytes(random), random_bytes(random),      from_epoch_ms(ms(random)),
                 maybe(random)};
      s.windows.emplace(to_valid_utf8(win.id), win);
    }
    const std::string text = encode_state(s);
    ASSERT_EQ(first_invalid_utf8(text), std::nullopt) << "case " << i;
    auto back = decode_state(text, "prod", 1);
    ASSERT_TRUE(back.ok()) << "case " << i << ": " << back.error().message << "\n" << text;
    ASSERT_EQ(encode_state(*back), text) << "case " << i;
    if (s.hold) {
      EXPECT_TRUE(same(s.hold->reason, back->hold->reason));
      EXPECT_TRUE(same(s.hold->who, back->hold->who));
    }
    EXPECT_TRUE(same(s.applied.reason, back->applied.reason));
    ASSERT_EQ(back->recent_message_ids.size(), s.recent_message_ids.size());
    for (std::size_t k = 0; k < s.recent_message_ids.size(); ++k) {
      EXPECT_TRUE(same(s.recent_message_ids[k], back->recent_message_ids[k]));
    }
    for (const auto& [id, w] : s.windows) {
      ASSERT_TRUE(back->windows.contains(id));
      EXPECT_TRUE(same(w.reason, back->windows.at(id).reason));
      EXPECT_TRUE(same(w.who, back->windows.at(id).who));
    }
    for (const auto& [id, r] : s.deployments) {
      ASSERT_TRUE(back->deployments.contains(id));
      EXPECT_TRUE(same(r.application, back->deployments.at(id).application));
      EXPECT_EQ(back->deployments.at(id).creator.has_value(), r.creator.has_value());
      if (r.creator) {
        EXPECT_TRUE(same(*r.creator, *back->deployments.at(id).creator));
      }
    }
  }
}

// What `intermission on prod --reason $'caf\xe9 closed'` stored before text was checked where
// it comes in: it loads again, the byte that is not UTF-8 as U+FFFD, and is written as UTF-8.
TEST(StateCodec, AStateStoredWithLatin1TextLoadsAgain) {
  const std::string stored =
      "{\"format\":1,\"deployments\":[],\"hold\":{\"on\":true,\"reason\":\"caf\xe9 closed\","
      "\"who\":\"j\xf6rg\",\"since\":\"2026-01-01T00:00:00.000Z\",\"until\":null},"
      "\"applied\":{\"on\":true,\"since\":null,\"reason\":\"caf\xe9 closed\"},"
      "\"recent_message_ids\":[],\"windows\":[],\"last_window_id\":0}";
  auto s = decode_state(stored, "prod", 3);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->hold->reason, "caf\xef\xbf\xbd closed");
  EXPECT_EQ(s->hold->who, "j\xef\xbf\xbdrg");
  EXPECT_EQ(first_invalid_utf8(encode_state(*s)), std::nullopt);
}

// Earlier versions wrote a five-digit year for a far-future hold and could not read it back,
// which wedged the environment; such a state loads, with the hold ending at the last time.
TEST(StateCodec, AStateWedgedByAFiveDigitYearLoadsAgain) {
  auto s = decode_state(
      R"({"format":1,"deployments":[],"hold":{"on":true,"reason":"r","who":"w",)"
      R"("since":"2026-01-01T00:00:00.000Z","until":"33658-09-27T01:46:40.000Z"}})",
      "e", 1);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->hold->until, kLatestTime);
  EXPECT_FALSE(decode_state(
                   R"({"format":1,"deployments":[],"hold":{"on":true,"reason":"r","who":"w",)"
                   R"("since":"2026-01-01T00:00:00.000Z","until":"3365x-09-27T01:46:40.000Z"}})",
                   "e", 1)
                   .ok());
}

}  // namespace
}  // namespace intermission::core
