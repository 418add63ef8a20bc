#include "page/response.h"

#include <gtest/gtest.h>

namespace intermission::page {
namespace {

const core::Time kNow = *core::parse_iso8601("2026-11-27T10:00:00Z");

PageOptions options() {
  PageOptions o;
  o.assets["site.css"] = Asset{"text/css; charset=utf-8", "body{}"};
  o.assets["img/logo.svg"] = Asset{"image/svg+xml", "<svg/>"};
  return o;
}

std::string body_of(const std::string& response) {
  return response.substr(response.find("\r\n\r\n") + 4);
}

std::string respond(const ResponseSet& s, std::string_view method, std::string_view target,
                    std::string_view accept = "", bool keep_alive = true) {
  return s.respond({method, target, accept, keep_alive, {}});
}

TEST(Response, EveryPathAndMethodGetsThe503Page) {
  const ResponseSet s(options(), kNow);
  for (auto method : {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"}) {
    for (auto target : {"/", "/checkout?x=1", "/api/v1/orders", "*"}) {
      const std::string r = respond(s, method, target);
      EXPECT_EQ(r.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << method << target;
      EXPECT_NE(r.find("\r\nRetry-After: 120\r\n"), std::string::npos);
      EXPECT_NE(r.find("\r\nCache-Control: no-store\r\n"), std::string::npos);
      EXPECT_NE(r.find("data-intermission=\"maintenance\""), std::string::npos);
    }
  }
}

TEST(Response, HeadHasTheHeadersButNoBody) {
  const ResponseSet s(options(), kNow);
  const std::string get = respond(s, "GET", "/");
  const std::string head = respond(s, "HEAD", "/");
  EXPECT_EQ(body_of(head), "");
  EXPECT_EQ(head, get.substr(0, get.find("\r\n\r\n") + 4)) << "same headers, same length";
  EXPECT_NE(head.find("Content-Length: " + std::to_string(body_of(get).size())),
            std::string::npos);
}

TEST(Response, HealthPathIs200ForGetAndHead) {
  const ResponseSet s(options(), kNow);
  EXPECT_EQ(respond(s, "GET", "/healthz").rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(body_of(respond(s, "GET", "/healthz")), "ok\n");
  EXPECT_EQ(respond(s, "HEAD", "/healthz?probe=1").rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(respond(s, "POST", "/healthz").rfind("HTTP/1.1 503", 0), 0u);
}

TEST(Response, JsonForClientsThatPreferIt) {
  const ResponseSet s(options(), kNow);
  const std::string r = respond(s, "GET", "/api", "application/json");
  EXPECT_NE(r.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(body_of(r),
            "{\"status\":\"maintenance\",\"message\":\"We are updating the site right now. It "
            "will be back in a few minutes.\",\"retry_after\":120,\"until\":null}\n");
  EXPECT_NE(respond(s, "GET", "/", "text/html,application/xhtml+xml,application/json;q=0.9")
                .find("text/html"),
            std::string::npos);
  EXPECT_TRUE(prefers_json("application/json, text/plain, */*"));
  EXPECT_FALSE(prefers_json("*/*"));
}

// RFC 9110 §12.5.1: quality values decide, not the order of the list.
TEST(Response, AcceptIsNegotiatedByQuality) {
  EXPECT_TRUE(prefers_json("application/json;q=1, text/html;q=0.5"));
  EXPECT_TRUE(prefers_json("text/html;q=0.5, application/json"));
  EXPECT_TRUE(prefers_json("text/html; q=0.2, application/*; q=0.3"));
  EXPECT_FALSE(prefers_json("application/json;q=0.5, text/html"));
  EXPECT_FALSE(prefers_json("application/json;q=0.9,text/html;q=0.91"));
  // q=0 means "not this", whatever else matches.
  EXPECT_FALSE(prefers_json("application/json;q=0, */*"));
  EXPECT_TRUE(prefers_json("text/html;q=0, */*"));
  EXPECT_TRUE(prefers_json("text/*;q=0, application/json;q=0.001"));
  // The most specific range gives a type its quality.
  EXPECT_FALSE(prefers_json("application/json;q=0.2, */*;q=1"));
  EXPECT_TRUE(prefers_json("*/*;q=0.1, application/json"));
  // A tie: HTML, unless JSON was named more precisely.
  EXPECT_FALSE(prefers_json(""));
  EXPECT_FALSE(prefers_json("application/json, text/html"));
  EXPECT_FALSE(prefers_json("application/json;q=0.5, text/html;q=0.500"));
  EXPECT_FALSE(prefers_json("image/png"));
  EXPECT_FALSE(prefers_json("application/json;q=0, text/html;q=0"));
  // Browsers: HTML.
  EXPECT_FALSE(prefers_json(
      "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"));
  // Case and spacing as clients send them; a malformed q counts as absent.
  EXPECT_TRUE(prefers_json("Application/JSON ; Q=1 , text/html ; q=0.4"));
  EXPECT_TRUE(prefers_json("application/json;q=abc, text/html;q=0.5"));
  EXPECT_TRUE(prefers_json("application/json; charset=utf-8; q=0.8, text/html;q=0.7"));
}

// RFC 9112 §3.2.2: a server must accept the absolute form of a request target.
TEST(Response, HealthPathInAbsoluteForm) {
  const ResponseSet s(options(), kNow);
  EXPECT_EQ(respond(s, "GET", "http://example.com/healthz").rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_EQ(respond(s, "HEAD", "HTTP://example.com:8080/healthz?x").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(respond(s, "GET", "https://[::1]:443/_intermission/site.css").rfind("HTTP/1.1 200", 0),
            0u);
  EXPECT_EQ(respond(s, "GET", "http://healthz").rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_EQ(respond(s, "GET", "http://h/x/healthz").rfind("HTTP/1.1 503", 0), 0u);
  EXPECT_EQ(path_of("http://h?q=/healthz"), "/");
  EXPECT_EQ(path_of("http://h"), "/");
  EXPECT_EQ(path_of("/a/b?c#d"), "/a/b");
  EXPECT_EQ(path_of("*"), "*");
}

TEST(Response, ReasonAndExpectedEndAreShownEscaped) {
  PageOptions o = options();
  o.reason = "Upgrading <db> & \"cache\"";
  o.until = kNow + std::chrono::minutes(30);
  const ResponseSet s(o, kNow);
  const std::string r = respond(s, "GET", "/");
  EXPECT_NE(r.find("Upgrading &lt;db&gt; &amp; &quot;cache&quot;"), std::string::npos);
  EXPECT_EQ(r.find("<db>"), std::string::npos);
  EXPECT_NE(r.find("back by 10:30 UTC"), std::string::npos);
  EXPECT_NE(r.find("Retry-After: Fri, 27 Nov 2026 10:30:00 GMT\r\n"), std::string::npos);
  EXPECT_NE(respond(s, "GET", "/", "application/json").find("\"retry_after\":1800"),
            std::string::npos);
}

TEST(Response, AFarExpectedEndNamesTheDate) {
  PageOptions o = options();
  o.until = kNow + std::chrono::hours(50);
  const ResponseSet s(o, kNow);
  EXPECT_NE(s.html_body().find("back by 29 Nov 2026, 12:00 UTC."), std::string::npos);
}

TEST(Response, AssetsByExactPathOnly) {
  const ResponseSet s(options(), kNow);
  const std::string css = respond(s, "GET", "/_intermission/site.css");
  EXPECT_EQ(css.rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_NE(css.find("Content-Type: text/css"), std::string::npos);
  EXPECT_EQ(body_of(css), "body{}");
  EXPECT_EQ(body_of(respond(s, "GET", "/_intermission/img/logo.svg?v=2")), "<svg/>");
  for (auto t : {"/_intermission/../etc/passwd", "/_intermission/%2e%2e/etc/passwd",
                 "/_intermission/img/../site.css", "/_intermission/", "/_intermission/SITE.CSS"}) {
    EXPECT_EQ(respond(s, "GET", t).rfind("HTTP/1.1 404", 0), 0u) << t;
  }
  EXPECT_EQ(respond(s, "POST", "/_intermission/site.css").rfind("HTTP/1.1 503", 0), 0u);
}

TEST(Response, ConnectionHeaderOnlyWhereTheDefaultIsNotWhatHappens) {
  const ResponseSet s(options(), kNow);
  // HTTP/1.1 keeps the connection by default: nothing to say.
  EXPECT_EQ(respond(s, "GET", "/", "", true).find("Connection:"), std::string::npos);
  EXPECT_NE(respond(s, "GET", "/", "", false).find("\r\nConnection: close\r\n"), std::string::npos);
  // HTTP/1.0 closes by default: a connection kept open must say so.
  EXPECT_NE(s.respond({"GET", "/", "", true, {}, true}).find("\r\nConnection: keep-alive\r\n"),
            std::string::npos);
  EXPECT_NE(s.respond({"GET", "/", "", false, {}, true}).find("\r\nConnection: close\r\n"),
            std::string::npos);
  EXPECT_NE(respond(s, "GET", "/").find("Date: Fri, 27 Nov 2026 10:00:00 GMT"),
            std::string::npos);
}

TEST(Response, ThePageSendsOnlyTheHeadersItNeeds) {
  const ResponseSet s(options(), kNow);
  const std::string r = respond(s, "GET", "/");
  const std::string head = r.substr(0, r.find("\r\n\r\n") + 4);
  EXPECT_EQ(head,
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Date: Fri, 27 Nov 2026 10:00:00 GMT\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Length: " + std::to_string(s.html_body().size()) + "\r\n"
            "Retry-After: 120\r\n"
            "Cache-Control: no-store\r\n"
            "Vary: Accept\r\n\r\n");
}

TEST(Response, CustomTemplate) {
  PageOptions o = options();
  o.html_template = "<p>{{reason}}|{{until}}|{{retry_after}}</p>";
  o.reason = "r";
  const ResponseSet s(o, kNow);
  EXPECT_EQ(s.html_body(), "<p>r||120</p>");
}

TEST(Response, PageBodiesAreTheBytesThePageServerSends) {
  PageOptions o = options();
  o.reason = "database <upgrade>";
  o.until = kNow + std::chrono::minutes(30);
  const ResponseSet s(o, kNow);
  const PageBodies b = page_bodies(o, kNow);
  EXPECT_EQ(b.html, s.html_body());
  EXPECT_EQ(b.json, body_of(respond(s, "GET", "/", "application/json")));
  EXPECT_EQ(b.retry_after, "Fri, 27 Nov 2026 10:30:00 GMT");
}

TEST(Response, FixedRetryAfterKeepsTheUntilButNoCountdown) {
  // Bodies written once and served later (nginx's files): a countdown would go stale, so the
  // retry hint is the fixed default while the page still says when it ends.
  PageOptions o = options();
  o.reason = "database upgrade";
  o.until = kNow + std::chrono::minutes(30);
  o.default_retry_after = std::chrono::seconds(90);
  o.fixed_retry_after = true;
  const PageBodies b = page_bodies(o, kNow);
  EXPECT_EQ(b.retry_after, "90");
  EXPECT_NE(b.html.find("We expect to be back by 10:30 UTC."), std::string::npos) << b.html;
  EXPECT_NE(b.json.find(R"("retry_after":90)"), std::string::npos) << b.json;
  EXPECT_NE(b.json.find(R"("until":"2026-11-27T10:30:00.000Z")"), std::string::npos) << b.json;
  const ResponseSet s(o, kNow);
  EXPECT_NE(respond(s, "GET", "/").find("\r\nRetry-After: 90\r\n"), std::string::npos);
}

// Accept-Language (RFC 9110 §12.5.4) with RFC 4647 lookup: tags[0] is the default.
TEST(Language, ChosenByQualityWithLookupFallback) {
  const std::vector<std::string> tags = {"en", "de", "pt-BR", "fr"};
  EXPECT_EQ(choose_language("", tags), 0u);
  EXPECT_EQ(choose_language("de", tags), 1u);
  EXPECT_EQ(choose_language("DE", tags), 1u);                      // case-insensitive
  EXPECT_EQ(choose_language("pt-br", tags), 2u);
  EXPECT_EQ(choose_language("de-CH", tags), 1u);                   // falls back to de
  EXPECT_EQ(choose_language("de-Latn-CH-1996", tags), 1u);
  EXPECT_EQ(choose_language("pt", tags), 0u);                      // lookup never widens
  EXPECT_EQ(choose_language("pt-BR-x-a", tags), 2u);               // singleton dropped too
  EXPECT_EQ(choose_language("en-US,en;q=0.9,de;q=0.8", tags), 0u);
  EXPECT_EQ(choose_language("fr;q=0.5, de;q=0.7", tags), 1u);      // by quality, not order
  EXPECT_EQ(choose_language("fr, de", tags), 3u);                  // equal: the first
  EXPECT_EQ(choose_language("it, de;q=0.2", tags), 1u);            // unknown skipped
  EXPECT_EQ(choose_language("it, es", tags), 0u);                  // nothing: the default
  EXPECT_EQ(choose_language("de;Q=0.3 , fr ; q=0.4", tags), 3u);   // spaces, Q
  EXPECT_EQ(choose_language("de;q=0.001, fr;q=0", tags), 1u);
}

TEST(Language, StarAndZeroQuality) {
  const std::vector<std::string> tags = {"en", "de", "fr"};
  EXPECT_EQ(choose_language("*", tags), 0u);
  EXPECT_EQ(choose_language("de;q=0.5, *", tags), 0u);             // * is the default
  EXPECT_EQ(choose_language("*;q=0.1, de;q=0.5", tags), 1u);
  EXPECT_EQ(choose_language("de, de;q=0", tags), 0u);              // q=0 excludes, wherever
  EXPECT_EQ(choose_language("de;q=0, de-CH", tags), 0u);           // also its fallback
  EXPECT_EQ(choose_language("de-CH;q=0, de", tags), 1u);           // only the exact tag
  EXPECT_EQ(choose_language("en;q=0, fr;q=0.1", tags), 2u);
  EXPECT_EQ(choose_language("en;q=0, de;q=0", tags), 0u);          // nothing left: default
  EXPECT_EQ(choose_language("*;q=0", tags), 0u);
}

TEST(Language, GarbageHeadersGetTheDefaultOrWhatIsReadable) {
  const std::vector<std::string> tags = {"en", "de"};
  for (auto h : {",,,", ";;;", "-de", ";q=1", "d e", "\xff\xfe", "*/*", "ende", "q=0.9",
                 "de en", "=de"}) {
    EXPECT_EQ(choose_language(h, tags), 0u) << h;
  }
  EXPECT_EQ(choose_language("de-", tags), 1u);       // lookup drops the empty subtag
  EXPECT_EQ(choose_language("de;q=", tags), 1u);
  EXPECT_EQ(choose_language("de;q=abc", tags), 1u);  // a malformed q counts as absent
  EXPECT_EQ(choose_language(std::string(8000, ','), tags), 0u);
  EXPECT_EQ(choose_language("de", {"en"}), 0u);  // one language: nothing to choose
  EXPECT_EQ(choose_language("de", {}), 0u);
}

TEST(Language, TagsAcceptedInFileNames) {
  for (auto t : {"de", "pt-BR", "zh-Hant-TW", "de-CH-1996", "x", "en-US"}) {
    EXPECT_TRUE(valid_language_tag(t)) << t;
  }
  for (auto t : {"", "-", "de-", "-de", "de--CH", "pt_BR", "1de", "de.CH", "toolonglang",
                 "de/../x", "de CH"}) {
    EXPECT_FALSE(valid_language_tag(t)) << t;
  }
  EXPECT_FALSE(valid_language_tag(std::string(36, 'a')));
}

PageOptions translated() {
  PageOptions o = options();
  o.language = "en";
  o.html_template = "<p>{{reason}}</p>";
  o.translations.push_back({"de", "<p lang=de>{{reason}}</p>", "Wartungsarbeiten."});
  o.translations.push_back({"pt-BR", "<p lang=pt>{{reason}}</p>", ""});
  return o;
}

TEST(Response, PageAndJsonInTheLanguageAsked) {
  const ResponseSet s(translated(), kNow);
  const std::string de = s.respond({"GET", "/", "", true, "de-CH, en;q=0.5"});
  EXPECT_EQ(body_of(de), "<p lang=de>Wartungsarbeiten.</p>");
  EXPECT_NE(de.find("\r\nContent-Language: de\r\n"), std::string::npos);
  EXPECT_NE(de.find("\r\nVary: Accept, Accept-Language\r\n"), std::string::npos);
  const std::string de_json = s.respond({"GET", "/", "application/json", true, "de"});
  EXPECT_NE(body_of(de_json).find("\"message\":\"Wartungsarbeiten.\""), std::string::npos);
  EXPECT_NE(de_json.find("\r\nContent-Language: de\r\n"), std::string::npos);
  // No message of its own: the default's words in the Portuguese page.
  const std::string pt = s.respond({"HEAD", "/", "", false, "pt-BR"});
  EXPECT_NE(pt.find("\r\nContent-Language: pt-BR\r\n"), std::string::npos);
  EXPECT_NE(pt.find("\r\nConnection: close\r\n"), std::string::npos);
  const std::string en = s.respond({"GET", "/x", "", true, "fr"});
  EXPECT_EQ(body_of(en), "<p>We are updating the site right now. It will be back in a few minutes.</p>");
  EXPECT_NE(en.find("\r\nContent-Language: en\r\n"), std::string::npos);
  EXPECT_EQ(s.html_body(), body_of(en));
  // The operator's reason is every language's.
  PageOptions o = translated();
  o.reason = "DB migration";
  const ResponseSet r(o, kNow);
  EXPECT_EQ(body_of(r.respond({"GET", "/", "", true, "de"})), "<p lang=de>DB migration</p>");
  // Health and assets are not translated.
  EXPECT_EQ(s.respond({"GET", "/healthz", "", true, "de"}).find("Content-Language"),
            std::string::npos);
}

TEST(Response, NoLanguagesNoLanguageHeaders) {
  const std::string r = ResponseSet(options(), kNow).respond({"GET", "/", "", true, "de"});
  EXPECT_EQ(r.find("Content-Language"), std::string::npos);
  EXPECT_NE(r.find("\r\nVary: Accept\r\n"), std::string::npos);
  PageOptions one = options();
  one.language = "en";  // a page folder without translations: a language but nothing varies
  const std::string e = ResponseSet(one, kNow).respond({"GET", "/", "", true, "de"});
  EXPECT_NE(e.find("\r\nContent-Language: en\r\n"), std::string::npos);
  EXPECT_NE(e.find("\r\nVary: Accept\r\n"), std::string::npos);
}

}  // namespace
}  // namespace intermission::page
