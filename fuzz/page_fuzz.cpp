// libFuzzer target: arbitrary bytes as a client connection would send them, through the page
// server's request parser and response choice (page/request_parser.h). Checks that every
// answer is a complete, well-formed HTTP/1.1 response and that nothing crashes, leaks or
// reads out of bounds (built with ASan and UBSan).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "page/request_parser.h"

namespace {

const intermission::page::ResponseSet& responses() {
  static const intermission::page::ResponseSet kSet = [] {
    intermission::page::PageOptions o;
    o.assets["site.css"] = {"text/css; charset=utf-8", "body{}"};
    o.reason = "fuzzing";
    return intermission::page::ResponseSet(o, intermission::core::from_epoch_ms(1'700'000'000'000));
  }();
  return kSet;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto replies = intermission::page::respond_all(responses(), bytes, 8192, 65536);
  for (const std::string* r : replies) {
    if (r == nullptr || r->rfind("HTTP/1.1 ", 0) != 0 || r->find("\r\n\r\n") == std::string::npos) {
      std::abort();
    }
  }
  if (replies.size() > size / 14 + 1) std::abort();  // "GET / HTTP/1.1\r\n\r\n" is the shortest
  return 0;
}
