// The page server's request side, pure (no sockets; the tests and the fuzzer drive it):
// Beast's HTTP parser with callbacks that keep nothing. A header is handed to the parser only
// once all of it has arrived, and the response is chosen from views into those bytes when the
// parser reports the header complete, so a request copies no string and allocates nothing,
// and an idle connection holds no request state.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "page/response.h"

namespace intermission::page {

namespace beast = boost::beast;
namespace http = beast::http;

// A Host field value as RFC 9112 §3.2 / RFC 3986 §3.2.2 define it: uri-host [":" port], the
// host a reg-name, an IPv4 address or an IP-literal in brackets. Empty is valid (a target with
// no authority).
bool valid_host(std::string_view value);

// What the request rules of request_rule_error() need from one request's header, gathered by
// the parser that read it.
struct HeaderFacts {
  int version = 11;                // 10 * major + minor
  int host_lines = 0;              // how many Host field lines
  std::string_view host;           // the value of the (last) Host line
  bool transfer_encoding = false;  // any Transfer-Encoding line
  bool chunked = false;            // the final transfer coding is chunked (Beast's chunked())
};

// The framing and Host rules both of our HTTP servers keep (this page server and the daemon's
// listeners, app/http_server.cpp), on a header Beast 1.81 has parsed (Beast itself refuses
// Transfer-Encoding with Content-Length, a coding after chunked, and Content-Length lines
// that differ). RFC 9112 §3.2: an HTTP/1.1 request without Host, with two, or with one that is
// not host[:port]; §6.3: a final transfer coding that is not chunked (the body's length is
// unknowable); §6.1: Transfer-Encoding in HTTP/1.0 (faulty framing; nginx refuses it too).
// The error to answer with 400 and then close the connection, or none. Allocates nothing.
beast::error_code request_rule_error(const HeaderFacts& facts);

// RFC 9110 §9.1: a method is case-sensitive; as nginx, we take only upper-case letters, '-'
// and '_' (every registered method), so `get` is refused (400) rather than served as GET or
// as an unknown method.
bool valid_method(std::string_view method);

// RFC 9112 §3.2: the request-target is in origin form ("/path?query"), absolute form (an
// absolute URI: scheme ":" ...), authority form (host:port, CONNECT only, and CONNECT takes
// no other) or asterisk form ("*", OPTIONS only). Anything else ("healthz") gets 400.
bool valid_target(std::string_view method, std::string_view target);

// The version of an HTTP/1.x-shaped request line ("GET / HTTP/1.1", without its line end) as
// 10 * major + minor, or -1 when the line does not end with " HTTP/<digit>.<digit>" (an
// HTTP/0.9 request "GET /", or not HTTP at all).
int request_line_version(std::string_view line);

class LeanParser final : public http::basic_parser<true> {
 public:
  // `force_close`: answer with "Connection: close" whatever the client asked (the server is
  // stopping).
  LeanParser(const ResponseSet& set, bool force_close, std::uint64_t body_limit)
      : set_(set), force_close_(force_close), body_limit_(body_limit) {
    this->body_limit(boost::none);  // see on_chunk_header_impl
  }

  // Set when the header is complete: the bytes to send, and whether the connection stays open
  // after them.
  [[nodiscard]] const std::string* reply() const { return reply_; }
  [[nodiscard]] bool keeps_alive() const { return keeps_alive_; }
  // The client waits for "100 Continue" before sending its body: it gets the final answer at
  // once instead (and the connection closes, so the body is never needed).
  [[nodiscard]] bool answers_before_body() const { return answer_before_body_; }
  // Where a chunked body stands: a chunk's data is still being read, or a chunk with data has
  // been read whole, so what comes next starts with that chunk's closing CRLF.
  [[nodiscard]] bool in_chunk_data() const { return chunk_left_ > 0; }
  [[nodiscard]] bool after_chunk_data() const { return chunked_ > 0 && chunk_left_ == 0; }

  // The bytes the next put() parses: field values are views into them.
  void parsing(std::string_view bytes) { parsing_ = bytes; }

 private:
  void on_request_impl(http::verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code& ec) override {
    if (!valid_method({method.data(), method.size()})) {
      ec = http::error::bad_method;
      return;
    }
    if (!valid_target({method.data(), method.size()}, {target.data(), target.size()})) {
      ec = http::error::bad_target;
      return;
    }
    method_ = {method.data(), method.size()};
    target_ = {target.data(), target.size()};
    version_ = version;
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(http::field name, beast::string_view, beast::string_view value,
                     beast::error_code& ec) override {
    // RFC 9112 §5.2: obs-fold is refused with 400. Beast unfolds such a value into a buffer of
    // its own that is gone after this call; every other value lies in the bytes parsed.
    const std::less<> before;  // a total order, also for pointers into different objects
    if (before(value.data(), parsing_.data()) ||
        before(parsing_.data() + parsing_.size(), value.data() + value.size())) {
      ec = http::error::bad_value;
      return;
    }
    if (name == http::field::accept) accept_ = {value.data(), value.size()};
    if (name == http::field::accept_language) accept_language_ = {value.data(), value.size()};
    if (name == http::field::expect && beast::iequals(value, "100-continue")) expect_ = true;
    if (name == http::field::host) {
      ++hosts_;
      host_ = {value.data(), value.size()};
    }
    if (name == http::field::transfer_encoding) transfer_encoding_ = true;
  }
  void on_header_impl(beast::error_code& ec) override {
    ec = request_rule_error(HeaderFacts{version_, hosts_, host_, transfer_encoding_, chunked()});
    if (ec) return;
    if (const auto length = content_length(); length && *length > body_limit_) {
      ec = http::error::body_limit;  // answered 413 before any of the body is read
      return;
    }
    answer_before_body_ = expect_ && !is_done();
    keeps_alive_ = keep_alive() && !force_close_ && !answer_before_body_;
    reply_ = &set_.respond(RequestView{method_, target_, accept_, keeps_alive_, accept_language_, version_ < 11});
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    return body.size();  // read and discarded
  }
  // The body limit is kept here (Content-Length in on_header_impl, chunk sizes here) rather
  // than by Beast's body_limit(): Beast 1.81 takes a chunk's size off its budget before it has
  // parsed the chunk's extensions, so a chunk header that arrives in pieces is counted once
  // per piece and a small body gets 413 (found by our fuzzer).
  void on_chunk_header_impl(std::uint64_t size, beast::string_view,
                            beast::error_code& ec) override {
    chunked_ += size;
    chunk_left_ = size;
    if (size > body_limit_ || chunked_ > body_limit_) ec = http::error::body_limit;
  }
  std::size_t on_chunk_body_impl(std::uint64_t remain, beast::string_view body,
                                 beast::error_code&) override {
    chunk_left_ = remain - body.size();  // `remain` counts this piece too
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  const ResponseSet& set_;
  std::string_view parsing_;
  bool force_close_;
  std::uint64_t body_limit_;
  std::uint64_t chunked_ = 0;     // the sizes of the chunks so far
  std::uint64_t chunk_left_ = 0;  // bytes of the current chunk's data not read yet
  // Valid only inside the put() call that parses the header (Exchange gives it whole).
  std::string_view method_, target_, accept_, accept_language_, host_;
  int version_ = 0;
  int hosts_ = 0;
  bool transfer_encoding_ = false;
  bool expect_ = false;
  bool answer_before_body_ = false;
  bool keeps_alive_ = false;
  const std::string* reply_ = nullptr;
};

// One connection's requests, fed the bytes as they arrive.
class Exchange {
 public:
  Exchange(std::size_t header_limit, std::size_t body_limit)
      : header_limit_(header_limit), body_limit_(body_limit) {}

  struct Fed {
    std::size_t used = 0;  // bytes consumed; the rest (a partial header) must be fed again
    bool close = false;    // send what was queued, then close the connection
  };

  // Answers every complete request in `bytes`, appending the chosen responses to `out` in
  // order, and reads request bodies (discarding them). Stops where more bytes are needed, and
  // after a request that ends the connection (a bad one gets its 400/413/431 answer). The
  // pointers in `out` point into `set`, which must also stay the same while mid_request().
  Fed feed(const ResponseSet& set, std::string_view bytes, bool force_close,
           std::vector<const std::string*>& out);

  // A request's header was parsed and its body is still being read.
  [[nodiscard]] bool mid_request() const { return body_ != nullptr; }

 private:
  std::size_t header_limit_;
  std::size_t body_limit_;
  // Each request is parsed on the stack; only one whose body goes on into later bytes (rare
  // on a maintenance page) keeps its parser here, so an idle connection holds 8 bytes.
  std::unique_ptr<LeanParser> body_;
};

// Answers every complete request in `bytes` (pipelined, as a connection would receive them)
// and returns the responses chosen, in order; stops at the first incomplete or bad request
// (appending the bad-request answer for a bad one). For tests and the fuzzer.
std::vector<const std::string*> respond_all(const ResponseSet& set, std::string_view bytes,
                                            std::size_t header_limit, std::size_t body_limit);

}  // namespace intermission::page
