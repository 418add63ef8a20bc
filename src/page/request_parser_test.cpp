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

}  // namespace
}  // namespace intermission::page
