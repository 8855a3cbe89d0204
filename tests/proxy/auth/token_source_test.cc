#include <doctest/doctest.h>

#include "proxy/auth/token_source.h"

using namespace wsgate;
using Source = conf::JwtAuth::TokenSource;
using Kind = Source::Kind;

namespace {

http::RequestHead request(std::string path, http::Fields fields) {
  http::RequestHead r;
  r.method = "GET";
  r.path = std::move(path);
  r.fields = std::move(fields);
  return r;
}

}  // namespace

TEST_CASE("the token is found in the first configured place that holds one") {
  const std::vector<Source> all{{Kind::Bearer, ""},
                                {Kind::Cookie, "jwt"},
                                {Kind::Query, "access_token"},
                                {Kind::Subprotocol, "bearer."}};
  auto r =
      request("/chat?a=1&access_token=q.q.q", {{"Cookie", "x=1; jwt=c.c.c; y=2"},
                                               {"Sec-WebSocket-Protocol", "chat, bearer.s.s.s"},
                                               {"Authorization", "bEaReR  h.h.h "}});
  CHECK(proxy::find_token(r, all)->token == "h.h.h");
  CHECK(proxy::find_token(r, {all[1]})->token == "c.c.c");
  CHECK(proxy::find_token(r, {all[2]})->token == "q.q.q");
  CHECK(proxy::find_token(r, {all[3]})->token == "s.s.s");
  CHECK_FALSE(proxy::find_token(request("/", {{"Authorization", "Basic abc"}}), all).has_value());
  CHECK_FALSE(proxy::find_token(request("/?access_token=", {}), all).has_value());
  // HTTP/2 may split Cookie into several fields (RFC 9113 8.2.3).
  CHECK(proxy::find_token(request("/", {{"cookie", "a=1"}, {"cookie", "jwt=\"z.z.z\""}}), {all[1]})
            ->token == "z.z.z");
  CHECK(proxy::find_token(request("/?access_token=a%2Eb.c", {}), {all[2]})->token == "a.b.c");
}

TEST_CASE("strip_token removes the token and nothing else") {
  auto r =
      request("/chat?a=1&access_token=q.q.q&b=2", {{"Cookie", "x=1; jwt=c.c.c; y=2"},
                                                   {"Sec-WebSocket-Protocol", "chat, bearer.s.s.s"},
                                                   {"Authorization", "Bearer h.h.h"}});
  proxy::strip_token(r, {"q.q.q", {Kind::Query, "access_token"}});
  CHECK(r.path == "/chat?a=1&b=2");
  proxy::strip_token(r, {"c.c.c", {Kind::Cookie, "jwt"}});
  CHECK(r.find("cookie")->value == "x=1; y=2");
  proxy::strip_token(r, {"s.s.s", {Kind::Subprotocol, "bearer."}});
  CHECK(r.find("sec-websocket-protocol")->value == "chat");
  proxy::strip_token(r, {"h.h.h", {Kind::Bearer, ""}});
  CHECK(r.find("authorization") == nullptr);

  auto only = request("/x?access_token=t", {{"Cookie", "jwt=t"}});
  proxy::strip_token(only, {"t", {Kind::Query, "access_token"}});
  proxy::strip_token(only, {"t", {Kind::Cookie, "jwt"}});
  CHECK(only.path == "/x");
  CHECK(only.find("cookie") == nullptr);
}

TEST_CASE("the access log's path has query tokens redacted") {
  const std::vector<Source> q{{Kind::Query, "access_token"}};
  CHECK(proxy::redact_token_query("/a?x=1&access_token=secret", q) ==
        "/a?x=1&access_token=redacted");
  CHECK(proxy::redact_token_query("/a", q) == "/a");
  CHECK(proxy::redact_token_query("/a?access_token_2=keep", q) == "/a?access_token_2=keep");
}
