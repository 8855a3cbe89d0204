// Forward auth's pure mappings (proxy/auth/forward_auth_request.cc): the subrequest's head
// and the verdict for an answer.
#include <doctest/doctest.h>

#include <string>

#include "proxy/auth/forward_auth.h"

using namespace wsgate;
using proxy::ForwardAuthVerdict;

namespace {

http::RequestHead client_request() {
  http::RequestHead r;
  r.method = "GET";
  r.scheme = "https";
  r.authority = "app.example:8443";
  r.path = "/chat/room?id=7&x=%20";
  r.protocol = "websocket";
  r.fields = {{"Authorization", "Bearer good"},
              {"Cookie", "a=1"},
              {"cookie", "b=2"},
              {"X-Forwarded-For", "10.9.9.9"},
              {"X-Forwarded-Uri", "/spoofed"},
              {"X-Other", "not sent"},
              {"Sec-WebSocket-Version", "13"}};
  return r;
}

const proxy::ForwardAuthFacts kFacts{"auth.internal:9000", "192.0.2.7", "https", true};

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\r\n" + line + "\r\n") != std::string::npos;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

http1::ResponseHead answer(const std::string& text) {
  http1::ResponseHead head;
  const auto r = http1::parse_response_head(text, http1::Limits{}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  return head;
}

}  // namespace

TEST_CASE("forward auth request: GET to the path with the client's request described") {
  conf::ForwardAuth f;
  f.path = "/verify?realm=ws";
  const std::string out = proxy::build_forward_auth_request(f, client_request(), kFacts);
  CHECK(out.rfind("GET /verify?realm=ws HTTP/1.1\r\n", 0) == 0);
  CHECK(out.size() >= 4);
  CHECK(out.substr(out.size() - 4) == "\r\n\r\n");
  CHECK(has_line(out, "Host: auth.internal:9000"));
  CHECK(has_line(out, "X-Forwarded-Method: GET"));
  CHECK(has_line(out, "X-Forwarded-Uri: /chat/room?id=7&x=%20"));
  CHECK(has_line(out, "X-Forwarded-Host: app.example:8443"));
  CHECK(has_line(out, "X-Forwarded-Proto: https"));
  CHECK(has_line(out, "X-Forwarded-For: 192.0.2.7"));
  CHECK(has_line(out, "Content-Length: 0"));
  CHECK(out.find("Connection:") == std::string::npos);  // keep-alive: HTTP/1.1's default
  // The default request_headers (authorization, cookie), every occurrence, in order.
  CHECK(has_line(out, "Authorization: Bearer good"));
  CHECK(out.find("Cookie: a=1\r\ncookie: b=2\r\n") != std::string::npos);
  // Nothing else of the client's: not its other fields, not its own X-Forwarded-*.
  CHECK(out.find("X-Other") == std::string::npos);
  CHECK(out.find("Sec-WebSocket") == std::string::npos);
  CHECK(out.find("10.9.9.9") == std::string::npos);
  CHECK(out.find("/spoofed") == std::string::npos);
  CHECK(count_of(out, "\r\n") == 1 + 10 + 1);  // request line, 10 fields, the empty line
}

TEST_CASE("forward auth request: only the configured fields, never the gateway's own") {
  conf::ForwardAuth f;
  f.request_headers = {"x-other",        "x-forwarded-uri", "x-forwarded-for", "host",
                       "content-length", "connection",      "x-absent"};
  const std::string out = proxy::build_forward_auth_request(f, client_request(), kFacts);
  CHECK(has_line(out, "X-Other: not sent"));
  CHECK(out.find("Authorization") == std::string::npos);
  CHECK(out.find("Cookie") == std::string::npos);
  CHECK(count_of(out, "X-Forwarded-Uri:") == 1);
  CHECK(count_of(out, "X-Forwarded-For:") == 1);
  CHECK(count_of(out, "Host:") == 2);  // Host and X-Forwarded-Host
  CHECK(count_of(out, "Content-Length:") == 1);
  CHECK(out.find("/spoofed") == std::string::npos);
}

TEST_CASE("forward auth request: Connection close when the auth upstream keeps no connections") {
  conf::ForwardAuth f;
  proxy::ForwardAuthFacts facts = kFacts;
  facts.keep_alive = false;
  facts.proto = "http";
  const std::string out = proxy::build_forward_auth_request(f, client_request(), facts);
  CHECK(has_line(out, "Connection: close"));
  CHECK(has_line(out, "X-Forwarded-Proto: http"));
}

TEST_CASE("forward auth request: a value with CR or LF is left out, nothing is injected") {
  // The parsers never let such a value through; the builder still refuses to split.
  conf::ForwardAuth f;
  http::RequestHead r = client_request();
  r.fields = {{"Authorization", "Bearer x\r\nX-Injected: 1"}, {"Cookie", "c=1\nX-Injected: 2"}};
  r.path = "/a\r\nX-Injected: 3";
  r.method = "POST";
  const std::string out = proxy::build_forward_auth_request(f, r, kFacts);
  CHECK(out.find("X-Injected") == std::string::npos);
  CHECK(out.find("X-Forwarded-Uri") == std::string::npos);
  CHECK(has_line(out, "X-Forwarded-Method: POST"));
  // Every line ends in CRLF and none holds a bare CR or LF.
  for (std::size_t at = 0; at < out.size(); ++at) {
    if (out[at] == '\n') CHECK(at > 0);
    if (out[at] == '\n') CHECK(out[at - 1] == '\r');
    if (out[at] == '\r') CHECK((at + 1 < out.size() && out[at + 1] == '\n'));
  }
}

TEST_CASE("forward auth answer: 2xx allows, with only the configured fields for the upstream") {
  conf::ForwardAuth f;
  f.response_headers = {"x-user", "x-groups"};
  const auto head = answer(
      "HTTP/1.1 200 OK\r\nX-User: alice\r\nX-Groups: a\r\nx-groups: b\r\nX-Secret: no\r\n"
      "Set-Cookie: s=1\r\nContent-Length: 2\r\n\r\n");
  const ForwardAuthVerdict v = proxy::classify_forward_auth_answer(f, head, "ok");
  CHECK(v.kind == ForwardAuthVerdict::Kind::Allowed);
  REQUIRE(v.upstream_fields.size() == 3);
  CHECK(v.upstream_fields[0] == http::Field{"X-User", "alice"});
  CHECK(v.upstream_fields[1] == http::Field{"X-Groups", "a"});
  CHECK(v.upstream_fields[2] == http::Field{"x-groups", "b"});
  CHECK(v.client_fields.empty());
  CHECK(v.body.empty());
  CHECK_FALSE(v.no_store);
  CHECK(std::string(proxy::to_string(v.kind)) == "allowed");

  const auto no_content =
      answer("HTTP/1.1 204 No Content\r\nCache-Control: private, no-store\r\n\r\n");
  const ForwardAuthVerdict v204 = proxy::classify_forward_auth_answer(f, no_content, "");
  CHECK(v204.kind == ForwardAuthVerdict::Kind::Allowed);
  CHECK(v204.upstream_fields.empty());
  CHECK(v204.no_store);
}

TEST_CASE("forward auth answer: 401, 403, 302 and 500 deny with the client's fields and body") {
  conf::ForwardAuth f;
  f.response_headers = {"x-user"};
  const auto h401 = answer(
      "HTTP/1.1 401 Unauthorized\r\nServer: authd\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n"
      "Content-Type: application/json\r\nX-User: mallory\r\nSet-Cookie: a=1\r\n"
      "Set-Cookie: b=2\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n");
  const ForwardAuthVerdict v = proxy::classify_forward_auth_answer(f, h401, R"({"error":"nope"})");
  CHECK(v.kind == ForwardAuthVerdict::Kind::Denied);
  CHECK(v.status == 401);
  CHECK(v.body == R"({"error":"nope"})");
  CHECK(v.upstream_fields.empty());
  const http::ExtraFields want = {{"WWW-Authenticate", "Bearer realm=\"x\""},
                                  {"Content-Type", "application/json"},
                                  {"Set-Cookie", "a=1"},
                                  {"Set-Cookie", "b=2"}};
  CHECK(v.client_fields == want);

  const auto h302 = answer(
      "HTTP/1.1 302 Found\r\nLocation: https://login.example/?r=1\r\nCache-Control: no-store\r\n"
      "Retry-After: 5\r\nContent-Length: 0\r\n\r\n");
  const ForwardAuthVerdict v302 = proxy::classify_forward_auth_answer(f, h302, "");
  CHECK(v302.kind == ForwardAuthVerdict::Kind::Denied);
  CHECK(v302.status == 302);
  CHECK(v302.no_store);
  CHECK(v302.client_fields.size() == 3);

  for (const int status : {403, 500, 503}) {
    const auto h = answer("HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n");
    const ForwardAuthVerdict d = proxy::classify_forward_auth_answer(f, h, "");
    CHECK(d.kind == ForwardAuthVerdict::Kind::Denied);
    CHECK(d.status == status);
  }
}

TEST_CASE("forward auth answer: 101 is a failure of the service") {
  conf::ForwardAuth f;
  const auto h = answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n");
  const ForwardAuthVerdict v = proxy::classify_forward_auth_answer(f, h, "");
  CHECK(v.kind == ForwardAuthVerdict::Kind::Failed);
  CHECK(v.reason == "auth service answered 101");
}
