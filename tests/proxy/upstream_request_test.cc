#include <doctest/doctest.h>

#include "gateway/h1/h1_request.h"
#include "proxy/upstream_request.h"

using namespace wsgate;

namespace {

// The request as an HTTP/1.1 client's head reaches the exchange.
http::RequestHead parse(const std::string& text) {
  http1::RequestHead head;
  const auto r = http1::parse_request_head(text, http1::Limits{}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  auto mapped = gateway::h1::request_from_h1(head, "http");
  REQUIRE(mapped.ok());
  return mapped.value;
}

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";

bool has_line(const std::string& req, const std::string& line) {
  return req.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("end-to-end headers pass, hop-by-hop headers do not") {
  const auto head = parse(
      "GET /chat?room=1 HTTP/1.1\r\n"
      "Host: example.com:8080\r\n"
      "Upgrade: WebSocket\r\n"
      "Connection: keep-alive, Upgrade, X-Secret\r\n"
      "X-Secret: drop me\r\n"
      "Keep-Alive: timeout=5\r\n"
      "TE: trailers\r\n"
      "Proxy-Authorization: Basic abc\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Protocol: chat, superchat\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\n"
      "Origin: https://app.example.com\r\n"
      "Cookie: session=42\r\n"
      "X-Forwarded-Proto: https\r\n"
      "\r\n");
  const std::string req = proxy::build_upstream_request(head, {"10.1.2.3", "http", ""}, kKey);
  CHECK(req.starts_with("GET /chat?room=1 HTTP/1.1\r\n"));
  CHECK(req.ends_with("\r\n\r\n"));
  CHECK(has_line(req, "Host: example.com:8080"));
  CHECK(has_line(req, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(has_line(req, "Sec-WebSocket-Version: 13"));
  CHECK(has_line(req, "Sec-WebSocket-Protocol: chat, superchat"));
  CHECK(has_line(req, "Sec-WebSocket-Extensions: permessage-deflate"));
  CHECK(has_line(req, "Origin: https://app.example.com"));
  CHECK(has_line(req, "Cookie: session=42"));
  CHECK(has_line(req, "Upgrade: websocket"));
  CHECK(has_line(req, "Connection: Upgrade"));
  CHECK(has_line(req, "X-Forwarded-For: 10.1.2.3"));
  CHECK(has_line(req, "X-Forwarded-Proto: http"));
  CHECK(has_line(req, "X-Forwarded-Host: example.com:8080"));
  CHECK(req.find("X-Secret") == std::string::npos);
  CHECK(req.find("Keep-Alive") == std::string::npos);
  CHECK(req.find("TE:") == std::string::npos);
  CHECK(req.find("Proxy-Authorization") == std::string::npos);
  CHECK(req.find("keep-alive") == std::string::npos);
  CHECK(req.find("X-Forwarded-Proto: https") == std::string::npos);  // replaced by ours
}

TEST_CASE("X-Forwarded-For appends the client to what came before") {
  const auto head = parse(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n");
  const std::string req = proxy::build_upstream_request(head, {"127.0.0.1", "http", ""}, kKey);
  CHECK(has_line(req, "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 127.0.0.1"));
}

TEST_CASE("only the gateway sets X-Client-Cert-Subject") {
  const auto head = parse("GET / HTTP/1.1\r\nHost: h\r\nX-Client-Cert-Subject: /CN=forged\r\n\r\n");
  const std::string anonymous =
      proxy::build_upstream_request(head, {"127.0.0.1", "https", ""}, kKey);
  CHECK(anonymous.find("forged") == std::string::npos);
  CHECK(anonymous.find("X-Client-Cert-Subject") == std::string::npos);
  const std::string verified =
      proxy::build_upstream_request(head, {"127.0.0.1", "https", "/CN=alice"}, kKey);
  CHECK(has_line(verified, "X-Client-Cert-Subject: /CN=alice"));
  CHECK(has_line(verified, "X-Forwarded-Proto: https"));
  CHECK(verified.find("forged") == std::string::npos);
}

TEST_CASE("the upstream gets the origin form and the gateway's key, whatever the client sent") {
  const auto head = parse(
      "GET http://app.example/chat?x=1 HTTP/1.1\r\nHost: other.example\r\n"
      "Sec-WebSocket-Key: Y2xpZW50cyBvd24ga2V5IQ==\r\n\r\n");
  const std::string req = proxy::build_upstream_request(head, {"127.0.0.1", "http", ""}, kKey);
  CHECK(req.starts_with("GET /chat?x=1 HTTP/1.1\r\n"));
  // RFC 9112 3.2.2: the absolute-form authority replaces Host.
  CHECK(has_line(req, "Host: app.example"));
  CHECK(req.find("other.example") == std::string::npos);
  CHECK(has_line(req, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(req.find("Y2xpZW50cyBvd24ga2V5IQ==") == std::string::npos);
}
