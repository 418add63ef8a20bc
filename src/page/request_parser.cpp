#include "page/request_parser.h"

#include <boost/asio/buffer.hpp>
#include <boost/optional.hpp>

namespace intermission::page {

std::vector<const std::string*> respond_all(const ResponseSet& set, std::string_view bytes,
                                            std::size_t header_limit, std::size_t body_limit) {
  std::vector<const std::string*> out;
  RequestBits bits;
  while (!bytes.empty()) {
    LeanParser p(bits);
    p.eager(true);
    p.header_limit(static_cast<std::uint32_t>(header_limit));
    p.body_limit(body_limit);
    beast::error_code ec;
    std::size_t used = 0;
    while (!p.is_done()) {
      const std::size_t n = p.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (ec || n == 0) break;
    }
    if (ec == http::error::need_more || (!ec && !p.is_done())) break;
    if (ec == http::error::header_limit) {
      out.push_back(&set.header_too_large());
      break;
    }
    if (ec == http::error::body_limit) {
      out.push_back(&set.body_too_large());
      break;
    }
    if (ec) {
      out.push_back(&set.bad_request());
      break;
    }
    out.push_back(&set.respond(RequestView{bits.method, bits.target, bits.accept, p.keep_alive()}));
    bytes.remove_prefix(used);
    if (!p.keep_alive()) break;
  }
  return out;
}

}  // namespace intermission::page
