// The page server's request parser: keeps only what the response choice needs (method,
// target, Accept, Expect) in strings owned by the connection and reused request after
// request, and discards bodies: in steady state a request allocates nothing (Beast's
// basic_fields would allocate a node per header). Pure: no sockets; the fuzzer drives it.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "page/response.h"

namespace intermission::page {

namespace beast = boost::beast;
namespace http = beast::http;

struct RequestBits {  // owned by the connection, so their capacity survives requests
  std::string method;
  std::string target;
  std::string accept;
  bool expect_continue = false;
};

class LeanParser final : public http::basic_parser<true> {
 public:
  explicit LeanParser(RequestBits& bits) : bits_(bits) {
    bits_.method.clear();
    bits_.target.clear();
    bits_.accept.clear();
    bits_.expect_continue = false;
  }

 private:
  void on_request_impl(http::verb, beast::string_view method_str, beast::string_view target_str,
                       int, beast::error_code&) override {
    bits_.method.assign(method_str.data(), method_str.size());
    bits_.target.assign(target_str.data(), target_str.size());
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  void on_field_impl(http::field name, beast::string_view, beast::string_view value,
                     beast::error_code&) override {
    if (name == http::field::accept) bits_.accept.assign(value.data(), value.size());
    if (name == http::field::expect && beast::iequals(value, "100-continue")) {
      bits_.expect_continue = true;
    }
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    return body.size();  // read and discarded
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override {
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  RequestBits& bits_;
};


// Answers every complete request in `bytes` (pipelined, as a connection would receive them)
// and returns the responses chosen, in order; stops at the first incomplete or bad request
// (appending the bad-request answer for a bad one). For tests and the fuzzer.
std::vector<const std::string*> respond_all(const ResponseSet& set, std::string_view bytes,
                                            std::size_t header_limit, std::size_t body_limit);

}  // namespace intermission::page
