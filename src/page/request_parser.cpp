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

// "0\r\n\r\n": the last chunk with no extension and no trailer.
constexpr std::size_t kShortestChunkedEnd = 5;

// Fewer than kShortestChunkedEnd bytes that may yet become the end of a chunked body: the
// last chunk, preceded by the closing CRLF of a chunk with data when one came before it (RFC
// 9112 §7.1). Only these are held back: other bytes go to the parser at once, so a malformed
// chunk is refused as soon as it arrives, whatever the pieces it comes in.
bool could_end_chunked_body(std::string_view waiting, bool after_data) {
  if (waiting.size() >= kShortestChunkedEnd) return false;
  const std::string_view end = after_data ? "\r\n0\r\n\r\n" : "0\r\n\r\n";
  return end.substr(0, waiting.size()) == waiting;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 3986 unreserved and sub-delims: what a reg-name holds besides percent-escapes.
bool is_name_char(char c) {
  if (is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

}  // namespace

bool valid_host(std::string_view value) {
  std::string_view port;
  if (!value.empty() && value.front() == '[') {
    // IP-literal: an IPv6 address (hex digits, colons, dots for an embedded IPv4) or
    // IPvFuture ("v" 1*HEXDIG "." 1*(unreserved / sub-delims / ":")).
    const std::size_t close = value.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    const std::string_view inside = value.substr(1, close - 1);
    if (inside.front() == 'v' || inside.front() == 'V') {
      const std::size_t dot = inside.find('.');
      if (dot == std::string_view::npos || dot < 2 || dot + 1 == inside.size()) return false;
      for (std::size_t i = 1; i < dot; ++i) {
        if (!is_hex(inside[i])) return false;
      }
      for (const char c : inside.substr(dot + 1)) {
        if (!is_name_char(c) && c != ':') return false;
      }
    } else {
      if (inside.find(':') == std::string_view::npos) return false;
      for (const char c : inside) {
        if (!is_hex(c) && c != ':' && c != '.') return false;
      }
    }
    const std::string_view rest = value.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
  } else {
    // reg-name or IPv4address (the latter is a reg-name too), then an optional port.
    const std::size_t colon = value.find(':');
    const std::string_view name = value.substr(0, colon);
    for (std::size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '%') {
        if (i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2])) return false;
        i += 2;
      } else if (!is_name_char(name[i])) {
        return false;
      }
    }
    if (colon != std::string_view::npos) port = value.substr(colon + 1);
  }
  for (const char c : port) {
    if (!is_digit(c)) return false;
  }
  return true;
}

beast::error_code request_rule_error(const HeaderFacts& f) {
  if (f.host_lines > 1 || (f.host_lines == 0 && f.version >= 11) ||
      (f.host_lines == 1 && !valid_host(f.host))) {
    return http::error::bad_value;
  }
  if (f.transfer_encoding && (f.version < 11 || !f.chunked)) {
    return http::error::bad_transfer_encoding;
  }
  return {};
}

bool valid_method(std::string_view method) {
  if (method.empty()) return false;
  for (const char c : method) {
    if ((c < 'A' || c > 'Z') && c != '-' && c != '_') return false;
  }
  return true;
}

bool valid_target(std::string_view method, std::string_view target) {
  if (target.empty()) return false;
  if (target.front() == '/') return method != "CONNECT";  // origin form, the usual case first
  if (target == "*") return method == "OPTIONS";
  if (method == "CONNECT") {
    // authority form: uri-host ":" port (RFC 9112 §3.2.3), the port required.
    const std::size_t bracket = target.front() == '[' ? target.find(']') : 0;
    return bracket != std::string_view::npos &&
           target.find(':', bracket) != std::string_view::npos && valid_host(target);
  }
  // absolute form: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" (RFC 3986
  // §3.1); Beast has already refused spaces and control characters in the rest.
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(target.front())) return false;
  for (std::size_t i = 1; i < target.size(); ++i) {
    const char c = target[i];
    if (c == ':') return true;
    if (!alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return false;
}

int request_line_version(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  constexpr std::string_view kTail = " HTTP/";
  if (line.size() < kTail.size() + 3) return -1;
  const std::string_view version = line.substr(line.size() - 3);
  if (line.substr(line.size() - 3 - kTail.size(), kTail.size()) != kTail) return -1;
  if (!is_digit(version[0]) || version[1] != '.' || !is_digit(version[2])) return -1;
  return (version[0] - '0') * 10 + (version[2] - '0');
}

Exchange::Fed Exchange::feed(const ResponseSet& set, std::string_view bytes, bool force_close,
                             std::vector<const std::string*>& out) {
  Fed r;
  std::optional<LeanParser> local;
  std::string as_http11;  // a header whose version is rewritten, for the put() that parses it
  while (r.used < bytes.size()) {
    LeanParser* parser = body_.get();
    std::string_view input = bytes.substr(r.used);  // what the parser is given next
    // A chunked body ends with at least kShortestChunkedEnd bytes ("0\r\n\r\n"), so fewer
    // cannot finish the request: they wait for more. Beast 1.81 relies on it: resuming the
    // last chunk of a body with no data chunk, it asserts that 5 bytes wait (its
    // parse_chunk_header, `BOOST_ASSERT(n >= 5)`); an empty body ending in pieces ("0\r\n",
    // "\r", "\n") would hand it 4. Holding back at most 4 bytes delays no answer; only bytes
    // that can still begin that end are held, so whole and in pieces get the same answer.
    if (parser != nullptr && parser->chunked() && !parser->in_chunk_data() &&
        could_end_chunked_body(bytes.substr(r.used), parser->after_chunk_data())) {
      return r;
    }
    if (parser == nullptr) {
      // RFC 9112 §2.2: empty lines (CRLF) before a request line are ignored, at most a header's
      // worth; while nothing else has come they wait with the rest, unconsumed, so a run cut
      // into pieces is judged as a whole.
      if (bytes[r.used] == '\r') {
        const std::string_view ahead = bytes.substr(r.used);
        std::size_t skip = 0;
        while (skip < header_limit_ && skip + 1 < ahead.size() && ahead[skip] == '\r' &&
               ahead[skip + 1] == '\n') {
          skip += 2;
        }
        if (skip >= header_limit_) {
          out.push_back(&set.bad_request());
          r.close = true;
          return r;
        }
        if (skip == ahead.size() || (skip + 1 == ahead.size() && ahead[skip] == '\r')) return r;
        r.used += skip;
      }
      // Beast consumes a request line as soon as it is complete, before the rest of the
      // header has arrived; the response is chosen from views into the bytes, so the parser
      // gets a header only once all of it is here (and then parses it in one call).
      const std::string_view rest = bytes.substr(r.used);
      input = rest;  // after the empty lines
      // A request line that is not HTTP/1.x is answered as soon as it is complete: an
      // HTTP/0.9 client ("GET /") sends no more lines, and would otherwise wait for ever.
      std::size_t minor_at = std::string_view::npos;  // the minor digit of HTTP/1.2 to 1.9
      if (const std::size_t eol = rest.substr(0, header_limit_).find('\n');
          eol != std::string_view::npos) {
        const int version = request_line_version(rest.substr(0, eol));
        if (version < 10 || version >= 20) {
          out.push_back(version >= 20 ? &set.version_not_supported() : &set.bad_request());
          r.close = true;
          return r;
        }
        if (version > 11) minor_at = eol - (rest[eol - 1] == '\r' ? 2 : 1);
      }
      const std::size_t header_size = header_end(rest.substr(0, header_limit_));
      if (header_size == std::string_view::npos) {
        if (rest.size() < header_limit_) return r;  // more is coming
        out.push_back(&set.header_too_large());
        r.close = true;
        return r;
      }
      parser = &local.emplace(set, force_close, body_limit_);
      parser->eager(true);
      parser->header_limit(static_cast<std::uint32_t>(header_limit_));
      if (minor_at != std::string_view::npos) {
        // RFC 9112 §2.3: a higher HTTP/1 minor version is processed as 1.1. Beast 1.81 knows
        // 1.0 and 1.1 only, so it parses a copy of the header that says 1.1; a body follows
        // from `bytes`, as for any request.
        as_http11.assign(rest.substr(0, header_size));
        as_http11[minor_at] = '1';
        input = as_http11;
      }
    }
    beast::error_code ec;
    parser->parsing(input);
    const std::size_t n = parser->put(boost::asio::buffer(input.data(), input.size()), ec);
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
