// The page server's pure half: every response it can send, built once from the page options
// and the time, and a request -> response choice that allocates nothing. The socket loop
// (server.h) only moves these bytes. See design.md §2 "Page server".
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace intermission::page {

// A file served under the assets prefix, already in memory.
struct Asset {
  std::string content_type;
  std::string body;
};

struct PageOptions {
  // The HTML page. Placeholders: {{reason}}, {{until}} (a sentence, or empty when unknown),
  // {{until_iso}}, {{retry_after}} (seconds). Substituted values are HTML-escaped.
  std::string html_template;
  std::string health_path = "/healthz";
  std::string assets_prefix = "/_intermission/";  // must start and end with '/'
  std::map<std::string, Asset> assets;            // key: path below the prefix ("site.css")
  std::string reason;                             // an operator's words, or empty
  std::optional<core::Time> until;                // the expected end, if known
  core::Duration default_retry_after = std::chrono::minutes(2);
  // Retry-After (and the JSON's retry_after) is always default_retry_after, even when
  // `until` is known: for bodies written once and served later (nginx serving files), where
  // a date or a countdown computed now would go stale. The page still shows `until`.
  bool fixed_retry_after = false;
  // The page's words when there is no reason: empty = the built-in English sentence. Shown in
  // {{reason}} and as the JSON's "message".
  std::string default_reason;
  // Languages (see page_dir.h): `language` is the tag of html_template/default_reason, sent as
  // Content-Language when not empty; `translations` are the other languages' pages, chosen by
  // Accept-Language. The operator's `reason` and `until` apply to every language.
  std::string language;
  struct Translation {
    std::string tag;  // a valid language tag, unique (case-insensitively), not `language`
    std::string html_template;
    std::string default_reason;  // empty = the default language's
  };
  std::vector<Translation> translations;
};

inline constexpr std::size_t kMaxLanguages = 32;  // the default and its translations together

// The page's bodies and its Retry-After value, exactly as the page server sends them; built
// once for files another server serves (the nginx backend's page files).
struct PageBodies {
  std::string html;
  std::string json;
  std::string retry_after;  // the header value: seconds, or an HTTP date when `until` is known
};
PageBodies page_bodies(const PageOptions& options, core::Time now);

// What the response choice needs from a request. Views into the parser's buffers.
struct RequestView {
  std::string_view method;
  std::string_view target;
  std::string_view accept;
  bool keep_alive = true;
  std::string_view accept_language;
  bool http10 = false;  // an HTTP/1.0 request: keeping its connection open must be said
};

// All responses, serialized (status line, headers, body). Immutable once built, so many
// threads may read one; rebuild a new set when the time (Date) or the options change.
class ResponseSet {
 public:
  ResponseSet(const PageOptions& options, core::Time now);

  // The bytes to send for `request`. The reference lives as long as this set.
  [[nodiscard]] const std::string& respond(const RequestView& request) const;

  // Fixed answers to requests the server could not parse (they close the connection).
  [[nodiscard]] const std::string& bad_request() const { return bad_request_; }
  [[nodiscard]] const std::string& header_too_large() const { return header_too_large_; }
  [[nodiscard]] const std::string& body_too_large() const { return body_too_large_; }
  [[nodiscard]] const std::string& version_not_supported() const { return version_not_supported_; }

  // The page body as sent (for tests and the ALB budget check).
  [[nodiscard]] const std::string& html_body() const { return html_body_; }

 private:
  // Variants of one response: [connection][head], where connection is 0 for "Connection:
  // close", 1 for an HTTP/1.1 connection kept open (persistent by default: no header) and 2
  // for an HTTP/1.0 one ("Connection: keep-alive", or the client would wait for the close).
  struct Variants {
    std::string v[3][2];
    const std::string& pick(bool keep_alive, bool head, bool http10 = false) const {
      return v[keep_alive ? (http10 ? 2 : 1) : 0][head];
    }
  };
  static Variants build(int status, std::string_view reason_phrase, std::string_view type,
                        const std::string& body, const std::string& extra_headers,
                        const std::string& date);

  // One per language, the default first: its tag and its page and JSON answers.
  struct Language {
    std::string tag;
    Variants html;
    Variants json;
  };
  std::vector<Language> languages_;
  std::vector<std::string> tags_;  // languages_[i].tag, for choose_language()
  Variants health_;
  Variants not_found_;
  std::map<std::string, Variants, std::less<>> assets_;
  std::string assets_prefix_;
  std::string health_path_;
  std::string html_body_;
  std::string bad_request_;
  std::string header_too_large_;
  std::string body_too_large_;
  std::string version_not_supported_;
};

// True when the client's Accept prefers JSON to HTML (API clients, fetch/XHR with Accept set),
// by quality values (RFC 9110 §12.5.1: the most specific matching range gives a type its
// quality; q=0 means "not this"). On equal quality the type named more specifically wins,
// and HTML when that is equal too (no Accept, "*/*", "application/json, text/html").
bool prefers_json(std::string_view accept);

// Which of `tags` (tags[0] the default) a client's Accept-Language asks for: RFC 9110
// §12.5.4 quality values with RFC 4647 §3.4 lookup. Each language range is matched against
// the tags case-insensitively, dropping its last subtag until one matches ("de-CH-1996" ->
// "de-CH" -> "de"); the range with the highest quality that matches wins, the earlier one on
// equal quality. "*" stands for the default; a range with q=0 takes the tag it names exactly
// out ("de;q=0"). No header, nothing matching, or garbage: 0. Allocates nothing; at most
// kMaxLanguages tags (more are never chosen).
std::size_t choose_language(std::string_view accept_language,
                            const std::vector<std::string>& tags);

// True for a language tag as accepted in page file names: subtags of 1 to 8 letters or
// digits joined by '-', the first of letters only ("de", "pt-BR", "zh-Hant-TW"), at most 35
// characters.
bool valid_language_tag(std::string_view tag);

// The path of a request target in origin form ("/a?b") or absolute form
// ("http://host/a?b"): no scheme, authority, query or fragment. A view into `target`.
std::string_view path_of(std::string_view target);

// Escapes &, <, >, ", ' for HTML text and attributes.
std::string html_escape(std::string_view text);

// The built-in page: self-contained HTML and CSS, readable on a phone.
const std::string& default_page_template();

}  // namespace intermission::page
