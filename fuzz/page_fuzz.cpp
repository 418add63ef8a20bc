// libFuzzer target: arbitrary bytes as a client connection would send them, through the page
// server's request parser and response choice (page/request_parser.h). Checks that every
// answer is a complete, well-formed HTTP/1.1 response, that the same bytes arriving in pieces
// (as reads from a socket deliver them) get the same answers, and that nothing crashes, leaks
// or reads out of bounds (built with ASan and UBSan).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "page/request_parser.h"

namespace {

const intermission::page::ResponseSet& responses() {
  static const intermission::page::ResponseSet kSet = [] {
    intermission::page::PageOptions o;
    o.assets["site.css"] = {"text/css; charset=utf-8", "body{}"};
    o.reason = "fuzzing";
    // Languages, so Accept-Language is weighed too (page/response.h choose_language).
    o.language = "en";
    o.translations.push_back({"de", "<p>de {{reason}}</p>", "Wartung"});
    o.translations.push_back({"pt-BR", "<p>pt {{reason}}</p>", ""});
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

  // The same bytes in pieces, as the server feeds them: what is not consumed is kept and fed
  // again with the next piece. Piece sizes come from the data itself (1 to 64 bytes).
  intermission::page::Exchange exchange(8192, 65536);
  std::vector<const std::string*> pieced;
  std::string kept;
  std::size_t at = 0;
  bool closed = false;
  while (at < size && !closed) {
    const std::size_t piece = std::min<std::size_t>(size - at, 1 + data[at] % 64);
    kept.append(bytes.substr(at, piece));
    at += piece;
    const auto fed = exchange.feed(responses(), kept, false, pieced);
    kept.erase(0, fed.used);
    closed = fed.close;
  }
  if (pieced != replies) std::abort();
  return 0;
}
