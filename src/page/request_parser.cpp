#include "page/request_parser.h"

#include <boost/asio/buffer.hpp>
#include <boost/optional.hpp>

namespace intermission::page {
namespace {

// Where the header at the start of `bytes` ends (just after its empty line), or npos. A bare
// LF counts as a line end here so that such a request reaches the parser, which refuses it.
std::size_t header_end(std::string_view bytes) {
  for (std::size_t i = bytes.find('\n'); i != std::string_view::npos; i = bytes.find('\n', i + 1)) {
    if (i + 1 < bytes.size() && bytes[i + 1] == '\n') return i + 2;
    if (i + 2 < bytes.size() && bytes[i + 1] == '\r' && bytes[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

}  // namespace

Exchange::Fed Exchange::feed(const ResponseSet& set, std::string_view bytes, bool force_close,
                             std::vector<const std::string*>& out) {
  Fed r;
  std::optional<LeanParser> local;
  while (r.used < bytes.size()) {
    LeanParser* parser = body_.get();
    if (parser == nullptr) {
      // Beast consumes a request line as soon as it is complete, before the rest of the
      // header has arrived; the response is chosen from views into the bytes, so the parser
      // gets a header only once all of it is here (and then parses it in one call).
      const std::string_view rest = bytes.substr(r.used);
      if (header_end(rest.substr(0, header_limit_)) == std::string_view::npos) {
        if (rest.size() < header_limit_) return r;  // more is coming
        out.push_back(&set.header_too_large());
        r.close = true;
        return r;
      }
      parser = &local.emplace(set, force_close, body_limit_);
      parser->eager(true);
      parser->header_limit(static_cast<std::uint32_t>(header_limit_));
    }
    beast::error_code ec;
    const std::size_t n =
        parser->put(boost::asio::buffer(bytes.data() + r.used, bytes.size() - r.used), ec);
    r.used += n;
    if (parser->is_header_done() && parser->answers_before_body()) {
      // Answered from the header alone, whatever the (eagerly parsed) body bytes hold.
      out.push_back(parser->reply());
      body_.reset();
      r.close = true;
      return r;
    }
    if (ec == http::error::need_more && parser->is_header_done()) {
      // The body goes on in later bytes (a partial chunk header is fed again with them).
      // Beast sets no limit on a chunk header's line: what waits unconsumed is bounded here.
      if (bytes.size() - r.used > header_limit_) {
        out.push_back(&set.bad_request());
        body_.reset();
        r.close = true;
        return r;
      }
      if (!body_) body_ = std::make_unique<LeanParser>(std::move(*local));
      return r;
    }
    if (ec == http::error::need_more) ec = http::error::partial_message;  // cannot happen
    if (ec) {
      out.push_back(ec == http::error::header_limit ? &set.header_too_large()
                    : ec == http::error::body_limit ? &set.body_too_large()
                                                    : &set.bad_request());
      body_.reset();
      r.close = true;
      return r;
    }
    if (parser->is_done()) {
      out.push_back(parser->reply());
      const bool keep = parser->keeps_alive();
      body_.reset();
      if (!keep) {
        r.close = true;
        return r;
      }
    } else if (!body_) {
      body_ = std::make_unique<LeanParser>(std::move(*local));  // all bytes went to the body
    }
  }
  return r;
}

std::vector<const std::string*> respond_all(const ResponseSet& set, std::string_view bytes,
                                            std::size_t header_limit, std::size_t body_limit) {
  std::vector<const std::string*> out;
  Exchange exchange(header_limit, body_limit);
  (void)exchange.feed(set, bytes, false, out);
  return out;
}

}  // namespace intermission::page
