#include "page/request_parser.h"

#include <gtest/gtest.h>

namespace intermission::page {
namespace {

const ResponseSet& set() {
  static const ResponseSet kSet(PageOptions{}, core::from_epoch_ms(0));
  return kSet;
}

TEST(RequestParser, PipelinedRequestsGetTheirAnswersInOrder) {
  const auto replies = respond_all(
      set(),
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /api HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Length: 3\r\n\r\nabc"
      "GET / HTTP/1.0\r\n\r\nGET /never HTTP/1.1\r\n\r\n",
      8192, 65536);
  ASSERT_EQ(replies.size(), 4u) << "HTTP/1.0 without keep-alive ends the connection";
  EXPECT_EQ(replies[0]->rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_EQ(replies[1]->rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(replies[2]->find("application/json"), std::string::npos);
  EXPECT_NE(replies[3]->find("Connection: close"), std::string::npos);
}

TEST(RequestParser, ChunkedBodiesAreDiscardedAndLimitsAnswered) {
  auto r = respond_all(set(),
                       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                       8192, 65536);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1]->rfind("HTTP/1.1 200", 0), 0u);
  r = respond_all(set(), "GET / HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n", 8192, 65536);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], &set().header_too_large());
  r = respond_all(set(), "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 8192, 65536);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], &set().body_too_large());
  r = respond_all(set(), "\x16\x03\x01 TLS hello\r\n\r\n", 8192, 65536);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], &set().bad_request());
  EXPECT_TRUE(respond_all(set(), "GET / HTTP/1.1\r\nHost:", 8192, 65536).empty()) << "incomplete";
}

// A connection gets its bytes in arbitrary pieces: fed a byte at a time (keeping what was not
// consumed, as the server does), the answers are the same as when fed at once.
TEST(Exchange, BytesInAnyPiecesGetTheSameAnswers) {
  const std::string wire =
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "GET /x HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n";
  const auto at_once = respond_all(set(), wire, 8192, 65536);
  ASSERT_EQ(at_once.size(), 4u);
  Exchange exchange(8192, 65536);
  std::vector<const std::string*> out;
  std::string kept;
  bool closed = false;
  for (const char c : wire) {
    ASSERT_FALSE(closed) << "closed before the last request";
    kept += c;
    const auto fed = exchange.feed(set(), kept, false, out);
    kept.erase(0, fed.used);
    closed = fed.close;
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(kept.empty());
  EXPECT_EQ(out, at_once);
  EXPECT_EQ(out[0]->rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(out[3]->find("application/json"), std::string::npos);
}

TEST(Exchange, AHeaderThatNeverEndsIsCutAtTheLimit) {
  Exchange exchange(1024, 65536);
  std::vector<const std::string*> out;
  std::string kept = "GET / HTTP/1.1\r\n";
  auto fed = exchange.feed(set(), kept, false, out);
  EXPECT_EQ(fed.used, 0u);
  EXPECT_FALSE(fed.close);
  EXPECT_TRUE(out.empty()) << "waits for the rest";
  kept += "X-Long: " + std::string(1100, 'a');
  fed = exchange.feed(set(), kept, false, out);
  EXPECT_TRUE(fed.close);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], &set().header_too_large());
}

// Found by the fuzzer: with the body in the same bytes, the eager parser used to reach a bad
// chunk and answer 400, while the header alone (as in pieces) got the page.
TEST(Exchange, ExpectContinueIsAnsweredFromTheHeaderWhateverFollows) {
  const std::string header =
      "PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n";
  const auto alone = respond_all(set(), header, 8192, 65536);
  const auto with_bad_body = respond_all(set(), header + "zz\r\n\0\0\r\n", 8192, 65536);
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_EQ(alone[0]->rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_EQ(with_bad_body, alone);
}

// Found by the fuzzer: Beast counted a chunk's size against the body limit each time an
// unfinished chunk extension made it ask for more bytes, so a small chunk fed in pieces got 413.
TEST(Exchange, ChunkHeaderInPiecesIsCountedOnce) {
  const std::string wire = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "400;e=\"a\r\n" + std::string(200, 'b');
  Exchange exchange(8192, 65536);
  std::vector<const std::string*> out;
  std::string kept;
  for (const char c : wire) {
    kept += c;
    const auto fed = exchange.feed(set(), kept, false, out);
    kept.erase(0, fed.used);
    ASSERT_FALSE(fed.close) << "answered " << (out.empty() ? "" : out[0]->substr(0, 30));
  }
  EXPECT_TRUE(out.empty()) << "the chunk header is not finished: nothing to answer yet";
  EXPECT_TRUE(respond_all(set(), wire, 8192, 65536).empty());
}

// A chunk-size line that never ends would otherwise be kept, growing, until the idle timeout.
TEST(Exchange, AnEndlessChunkHeaderIsRefused) {
  Exchange exchange(1024, 65536);
  std::vector<const std::string*> out;
  std::string kept = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=";
  Exchange::Fed fed;
  for (int i = 0; i < 100 && !fed.close; ++i) {
    kept += std::string(100, 'a');
    fed = exchange.feed(set(), kept, false, out);
    kept.erase(0, fed.used);
  }
  EXPECT_TRUE(fed.close);
  EXPECT_LE(kept.size(), 1200u) << "never kept more than about the header limit";
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], &set().bad_request());
}

TEST(Exchange, StoppingServerAnswersWithClose) {
  Exchange exchange(8192, 65536);
  std::vector<const std::string*> out;
  const auto fed = exchange.feed(set(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true, out);
  EXPECT_TRUE(fed.close);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0]->find("Connection: close"), std::string::npos);
}

}  // namespace
}  // namespace intermission::page
