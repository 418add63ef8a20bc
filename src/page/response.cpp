#include "page/response.h"

#include <boost/json.hpp>

#include <array>
#include <cstdint>

namespace intermission::page {
namespace {

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

bool equals_ci(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && equals_ci(text.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A qvalue (RFC 9110 §12.4.2: "0" to "1", up to three decimals) in thousandths; a malformed
// one counts as 1000, as if absent.
int parse_qvalue(std::string_view v) {
  if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) return 1000;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.') return 1000;
  int scale = 100;
  for (const char c : v.substr(2)) {
    if (c < '0' || c > '9') return 1000;
    q += (c - '0') * scale;
    scale /= 10;
  }
  return q > 1000 ? 1000 : q;
}

// The q parameter among an element's parameters ("level=1;q=0.5"), 1000 when absent.
int quality_of(std::string_view params) {
  while (!params.empty()) {
    const std::size_t next = params.find(';');
    const std::string_view param = trim(params.substr(0, next));
    params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
    if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
      return parse_qvalue(param.substr(2));  // what follows q are accept-ext
    }
  }
  return 1000;
}

// RFC 4647 §3.4 lookup of one language range among the first `n` tags: the range, then the
// range with its last subtag dropped (and a single-letter subtag left before it), and so
// on. The index of the tag it reaches, or n.
std::size_t lookup(std::string_view range, const std::vector<std::string>& tags,
                   std::size_t n) {
  while (!range.empty()) {
    for (std::size_t i = 0; i < n; ++i) {
      if (equals_ci(range, tags[i])) return i;
    }
    std::size_t dash = range.rfind('-');
    if (dash == std::string_view::npos) break;
    range = range.substr(0, dash);
    if (dash = range.rfind('-'); dash != std::string_view::npos && range.size() - dash == 2) {
      range = range.substr(0, dash);
    }
  }
  return n;
}

// How a client's Accept rates one media type: the quality of the most specific range that
// matches it (RFC 9110 §12.5.1) and that range's specificity (3 type/subtype, 2 type/*,
// 1 */*; 0 and quality 0 when no range matches).
struct Rating {
  int specificity = 0;
  int quality = 0;
};

Rating rate(std::string_view accept, std::string_view type, std::string_view subtype) {
  Rating best;
  while (!accept.empty()) {
    const std::size_t comma = accept.find(',');
    std::string_view element = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    const std::size_t semi = element.find(';');
    const std::string_view range = trim(element.substr(0, semi));
    const std::size_t slash = range.find('/');
    if (slash == std::string_view::npos) continue;
    const std::string_view t = range.substr(0, slash);
    const std::string_view st = range.substr(slash + 1);
    int specificity = 0;
    if (t == "*" && st == "*") {
      specificity = 1;
    } else if (equals_ci(t, type) && st == "*") {
      specificity = 2;
    } else if (equals_ci(t, type) && equals_ci(st, subtype)) {
      specificity = 3;
    }
    if (specificity == 0 || specificity < best.specificity) continue;
    const int quality =
        quality_of(semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1));
    // Of equally specific ranges (a list that names a type twice), the better quality.
    if (specificity > best.specificity || quality > best.quality) best = {specificity, quality};
  }
  return best;
}

}  // namespace

std::string_view path_of(std::string_view target) {
  // absolute-form (RFC 9112 §3.2.2): "http://host[:port]/path?query"; the path, or "/" when
  // the target has none.
  for (const std::string_view scheme : {"http://", "https://"}) {
    if (!starts_with_ci(target, scheme)) continue;
    target.remove_prefix(scheme.size());
    const std::size_t slash = target.find_first_of("/?#");
    if (slash == std::string_view::npos || target[slash] != '/') return "/";
    target.remove_prefix(slash);
    break;
  }
  const std::size_t q = target.find_first_of("?#");
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

bool prefers_json(std::string_view accept) {
  const Rating json = rate(accept, "application", "json");
  const Rating html = rate(accept, "text", "html");
  if (json.quality != html.quality) return json.quality > html.quality;
  // Equal quality: the type the client named more precisely ("application/json, */*" from
  // axios and friends), else the page.
  return json.quality > 0 && json.specificity > html.specificity;
}

std::size_t choose_language(std::string_view header, const std::vector<std::string>& tags) {
  const std::size_t n = std::min(tags.size(), kMaxLanguages);
  if (n <= 1) return 0;
  std::array<int, kMaxLanguages> quality{};     // the best quality a range gave each tag
  std::array<std::size_t, kMaxLanguages> at{};  // the position of that range in the header
  std::uint64_t excluded = 0;
  static_assert(kMaxLanguages <= 64);
  for (std::size_t position = 1; !header.empty(); ++position) {
    const std::size_t comma = header.find(',');
    const std::string_view element = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    const std::size_t semi = element.find(';');
    const std::string_view range = trim(element.substr(0, semi));
    if (range.empty()) continue;
    const std::size_t i = range == "*" ? 0 : lookup(range, tags, n);
    if (i == n) continue;
    const int q =
        quality_of(semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1));
    if (q == 0) {
      // "not this language": only the tag the range names exactly, not one it falls back to.
      if (range != "*" && equals_ci(range, tags[i])) excluded |= std::uint64_t{1} << i;
      continue;
    }
    if (q > quality[i]) {
      quality[i] = q;
      at[i] = position;
    }
  }
  std::size_t best = 0;
  int best_quality = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if ((excluded >> i & 1U) != 0 || quality[i] == 0) continue;
    if (quality[i] > best_quality || (quality[i] == best_quality && at[i] < at[best])) {
      best = i;
      best_quality = quality[i];
    }
  }
  return best;
}

bool valid_language_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 35) return false;
  bool first = true;
  while (true) {
    const std::size_t dash = tag.find('-');
    const std::string_view subtag = tag.substr(0, dash);
    if (subtag.empty() || subtag.size() > 8) return false;
    for (const char c : subtag) {
      const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      if (!letter && (first || c < '0' || c > '9')) return false;
    }
    if (dash == std::string_view::npos) return true;
    tag.remove_prefix(dash + 1);
    first = false;
  }
}

ResponseSet::Variants ResponseSet::build(int status, std::string_view reason_phrase,
                                         std::string_view type, const std::string& body,
                                         const std::string& extra_headers,
                                         const std::string& date) {
  // Only the headers the answer needs (bench/RESULTS.md, "Answer headers"): no Server, and
  // no Connection header where HTTP/1.1's default (persistent) is what happens.
  Variants out;
  for (int connection = 0; connection < 3; ++connection) {
    for (int head = 0; head < 2; ++head) {
      std::string& r = out.v[connection][head];
      r.reserve(192 + body.size());
      r += "HTTP/1.1 " + std::to_string(status) + " ";
      r += reason_phrase;
      r += "\r\nDate: " + date + "\r\nContent-Type: ";
      r += type;
      r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
      r += extra_headers;
      if (connection == 0) r += "Connection: close\r\n";
      if (connection == 2) r += "Connection: keep-alive\r\n";
      r += "\r\n";
      if (head == 0) r += body;
    }
  }
  return out;
}

PageBodies page_bodies(const PageOptions& o, core::Time now) {
  PageBodies out;
  std::int64_t retry_seconds = 0;
  std::string until_sentence;
  std::string until_iso;
  const bool until_known = o.until && *o.until > now;
  if (until_known) {
    until_iso = core::format_iso8601(*o.until);
    // "18:30 UTC" when it is within the day; with the date when it is further away.
    std::string when = until_iso.substr(11, 5) + " UTC";
    if (*o.until - now > std::chrono::hours(20)) {
      const std::string http = core::format_http_date(*o.until);  // "Thu, 01 Jan 2099 ..."
      when = http.substr(5, 11) + ", " + when;
    }
    until_sentence = "We expect to be back by " + when + ".";
  }
  if (until_known && !o.fixed_retry_after) {
    // An absolute date needs no rebuild as time passes; the seconds are for the JSON body.
    out.retry_after = core::format_http_date(*o.until);
    retry_seconds = std::chrono::ceil<std::chrono::seconds>(*o.until - now).count();
  } else {
    retry_seconds = std::chrono::ceil<std::chrono::seconds>(o.default_retry_after).count();
    out.retry_after = std::to_string(retry_seconds);
  }
  const std::string reason =
      !o.reason.empty()           ? o.reason
      : !o.default_reason.empty() ? o.default_reason
                                  : "We are updating the site right now. It will be back in a few minutes.";
  std::string html = o.html_template.empty() ? default_page_template() : o.html_template;
  html = replace_all(std::move(html), "{{reason}}", html_escape(reason));
  html = replace_all(std::move(html), "{{until}}", html_escape(until_sentence));
  html = replace_all(std::move(html), "{{until_iso}}", html_escape(until_iso));
  out.html = replace_all(std::move(html), "{{retry_after}}", std::to_string(retry_seconds));

  boost::json::object j{{"status", "maintenance"},
                        {"message", reason},
                        {"retry_after", retry_seconds}};
  j["until"] = until_iso.empty() ? boost::json::value(nullptr) : boost::json::value(until_iso);
  out.json = boost::json::serialize(j) + "\n";
  return out;
}

ResponseSet::ResponseSet(const PageOptions& o, core::Time now)
    : assets_prefix_(o.assets_prefix), health_path_(o.health_path) {
  const std::string date = core::format_http_date(now);
  // The default language first, then each translation as its own page (same reason, until
  // and Retry-After).
  const bool translated = !o.translations.empty();
  const std::string vary = translated ? "Vary: Accept, Accept-Language\r\n" : "Vary: Accept\r\n";
  auto add_language = [&](const std::string& tag, const PageOptions& lo) {
    PageBodies bodies = page_bodies(lo, now);
    // No X-Content-Type-Options here: the page and the JSON are ours, always sent with their
    // exact type, so there is nothing for a browser to sniff (assets, the operator's files
    // typed by extension, keep it).
    std::string headers = "Retry-After: " + bodies.retry_after +
                          "\r\nCache-Control: no-store\r\n";
    if (!tag.empty()) headers += "Content-Language: " + tag + "\r\n";
    headers += vary;
    if (languages_.empty()) html_body_ = bodies.html;
    languages_.push_back(Language{
        tag, build(503, "Service Unavailable", "text/html; charset=utf-8", bodies.html, headers, date),
        build(503, "Service Unavailable", "application/json", bodies.json, headers, date)});
  };
  add_language(o.language, o);
  for (const auto& t : o.translations) {
    if (languages_.size() == kMaxLanguages) break;
    PageOptions lo = o;
    lo.translations.clear();
    lo.html_template = t.html_template;
    if (!t.default_reason.empty()) lo.default_reason = t.default_reason;
    add_language(t.tag, lo);
  }
  for (const auto& l : languages_) tags_.push_back(l.tag);
  health_ = build(200, "OK", "text/plain; charset=utf-8", "ok\n", "Cache-Control: no-store\r\n",
                  date);
  not_found_ = build(404, "Not Found", "text/plain; charset=utf-8", "not found\n",
                     "Cache-Control: no-store\r\n", date);
  for (const auto& [path, asset] : o.assets) {
    assets_.emplace(path, build(200, "OK", asset.content_type, asset.body,
                                "Cache-Control: public, max-age=300\r\n"
                                "X-Content-Type-Options: nosniff\r\n",
                                date));
  }
  auto error = [&date](int status, std::string_view phrase) {
    return build(status, phrase, "text/plain; charset=utf-8",
                 std::string(phrase) + "\n", "", date)
        .pick(false, false);
  };
  bad_request_ = error(400, "Bad Request");
  header_too_large_ = error(431, "Request Header Fields Too Large");
  body_too_large_ = error(413, "Content Too Large");
  version_not_supported_ = error(505, "HTTP Version Not Supported");
}

const std::string& ResponseSet::respond(const RequestView& r) const {
  // Methods are case-sensitive (RFC 9110 §9.1); the parser refuses lower-case ones.
  const bool head = r.method == "HEAD";
  const bool read = head || r.method == "GET";
  const std::string_view path = path_of(r.target);
  if (read && path == health_path_) return health_.pick(r.keep_alive, head, r.http10);
  if (path.substr(0, assets_prefix_.size()) == assets_prefix_) {
    // Exact lookup in what was loaded at start: no path is ever opened from a request, so
    // "..", encoded dots and symlinks cannot lead anywhere.
    const auto it = assets_.find(path.substr(assets_prefix_.size()));
    if (read && it != assets_.end()) return it->second.pick(r.keep_alive, head, r.http10);
    if (read) return not_found_.pick(r.keep_alive, head, r.http10);
  }
  const Language& l = languages_.size() == 1 ? languages_.front()
                                             : languages_[choose_language(r.accept_language, tags_)];
  return prefers_json(r.accept) ? l.json.pick(r.keep_alive, head, r.http10)
                                 : l.html.pick(r.keep_alive, head, r.http10);
}

const std::string& default_page_template() {
  static const std::string kPage = R"html(<!doctype html>
<html lang="en" data-intermission="maintenance">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Back soon</title>
<style>
:root{color-scheme:light dark;--bg:#f6f4ef;--card:#fff;--ink:#1d2330;--muted:#5b6475;--accent:#d9822b}
@media (prefers-color-scheme:dark){:root{--bg:#12151c;--card:#1b202b;--ink:#eef1f6;--muted:#a3acbd}}
*{box-sizing:border-box}
html,body{height:100%;margin:0}
body{display:flex;align-items:center;justify-content:center;padding:24px;background:var(--bg);color:var(--ink);
font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{width:100%;max-width:560px;background:var(--card);border-radius:16px;padding:40px 36px;
box-shadow:0 1px 2px rgba(0,0,0,.06),0 12px 32px rgba(0,0,0,.08)}
.mark{width:56px;height:56px;border-radius:50%;display:grid;place-items:center;margin-bottom:20px;
background:color-mix(in srgb,var(--accent) 16%,transparent)}
.mark svg{width:28px;height:28px;stroke:var(--accent)}
h1{font-size:1.75rem;line-height:1.2;margin:0 0 12px}
p{margin:0 0 12px;color:var(--muted)}
.until{color:var(--ink);font-weight:600}
.until:empty{display:none}
footer{margin-top:24px;font-size:.85rem;color:var(--muted)}
@media (max-width:480px){main{padding:28px 22px;border-radius:12px}h1{font-size:1.45rem}}
@media (prefers-reduced-motion:no-preference){.mark svg{animation:spin 6s linear infinite}}
@keyframes spin{to{transform:rotate(360deg)}}
</style>
</head>
<body>
<main>
<div class="mark" aria-hidden="true"><svg viewBox="0 0 24 24" fill="none" stroke-width="2" stroke-linecap="round"><path d="M21 12a9 9 0 1 1-3-6.7"/><path d="M21 4v5h-5"/></svg></div>
<h1>We'll be right back</h1>
<p>{{reason}}</p>
<p class="until">{{until}}</p>
<footer>This page refreshes itself. Thank you for your patience.</footer>
</main>
<script>setTimeout(function(){location.reload()},Math.max(15,Math.min({{retry_after}},120))*1000)</script>
</body>
</html>
)html";
  return kPage;
}

}  // namespace intermission::page
