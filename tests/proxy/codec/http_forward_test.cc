#include "proxy/codec/http_forward.h"

#include <doctest/doctest.h>

#include "gateway/h1/h1_request.h"
#include "proxy/codec/hop_by_hop.h"

using namespace wsgate;

namespace {

http::RequestHead parse(const std::string& text) {
  http1::RequestHead head;
  const auto r = http1::parse_request_head(text, http1::Limits{}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  auto mapped = gateway::h1::request_from_h1(head, "http");
  REQUIRE(mapped.ok());
  return mapped.value;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("forwarded request: method, target and Host kept, hop-by-hop fields dropped") {
  const auto req = parse(
      "POST /api/x?y=1 HTTP/1.1\r\n"
      "Host: App.Example:8080\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: secret\r\n"
      "Keep-Alive: timeout=5\r\n"
      "TE: trailers\r\n"
      "Expect: 100-continue\r\n"
      "Proxy-Authorization: Basic abc\r\n"
      "X-Forwarded-For: 10.0.0.1\r\n"
      "X-Forwarded-Host: evil\r\n"
      "Cookie: a=1\r\n"
      "Content-Length: 3\r\n\r\n");
  const std::string out = proxy::build_forward_request(req, {"192.0.2.7", "https", ""}, false);
  CHECK(out.starts_with("POST /api/x?y=1 HTTP/1.1\r\nHost: App.Example:8080\r\n"));
  CHECK(has_line(out, "Cookie: a=1"));
  CHECK(has_line(out, "Content-Length: 3"));
  CHECK(has_line(out, "X-Forwarded-For: 10.0.0.1, 192.0.2.7"));
  CHECK(has_line(out, "X-Forwarded-Proto: https"));
  CHECK(has_line(out, "X-Forwarded-Host: App.Example:8080"));
  CHECK(has_line(out, "Connection: close"));
  for (const char* gone : {"X-Hop", "Keep-Alive", "TE:", "Expect", "Proxy-Authorization", "evil",
                           "keep-alive", "Transfer-Encoding"})
    CHECK(out.find(gone) == std::string::npos);
  CHECK(out.ends_with("\r\n\r\n"));
}

TEST_CASE("forwarded request: a body of unknown length goes up chunked") {
  auto req = parse("PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  req.has_body = true;
  const std::string out = proxy::build_forward_request(req, {"127.0.0.1", "http", ""}, true);
  CHECK(has_line(out, "Transfer-Encoding: chunked"));
  CHECK(out.find("Content-Length") == std::string::npos);
}

TEST_CASE("response for the client: hop-by-hop fields and framing fields removed") {
  http1::ResponseHead head;
  REQUIRE(http1::parse_response_head("HTTP/1.1 200 Fine\r\n"
                                     "Connection: keep-alive, X-Hop\r\n"
                                     "X-Hop: 1\r\n"
                                     "Keep-Alive: timeout=5\r\n"
                                     "Transfer-Encoding: chunked\r\n"
                                     "Set-Cookie: s=1\r\n\r\n",
                                     http1::Limits{}, head)
              .state == http1::ParseState::Complete);
  const auto framing = http1::response_body_framing(head, "GET");
  const http::ResponseHead r = proxy::response_for_client(head, framing);
  CHECK(r.status == 200);
  CHECK(r.reason == "Fine");
  CHECK(r.body == http::ResponseHead::Body::Stream);
  REQUIRE(r.fields.size() == 1);
  CHECK(r.fields[0].name == "Set-Cookie");
}

TEST_CASE("response for the client: Content-Length frames content, or stays for HEAD") {
  http1::ResponseHead head;
  REQUIRE(http1::parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
                                     http1::Limits{}, head)
              .state == http1::ParseState::Complete);
  const http::ResponseHead get =
      proxy::response_for_client(head, http1::response_body_framing(head, "GET"));
  CHECK(get.body == http::ResponseHead::Body::Length);
  CHECK(get.content_length == 12);
  CHECK(get.fields.empty());
  const http::ResponseHead for_head =
      proxy::response_for_client(head, http1::response_body_framing(head, "HEAD"));
  CHECK(for_head.body == http::ResponseHead::Body::None);
  REQUIRE(for_head.fields.size() == 1);
  CHECK(for_head.fields[0].value == "12");
}

TEST_CASE("Via names the version each message arrived in, after the earlier members") {
  // RFC 9110 7.6.3: the request came over HTTP/1.0, HTTP/1.1 or HTTP/2.
  CHECK(proxy::via_member(http::Version::Http10) == "1.0 wsgate");
  CHECK(proxy::via_member(http::Version::Http11) == "1.1 wsgate");
  CHECK(proxy::via_member(http::Version::Http2) == "2 wsgate");
  const auto req = parse("GET / HTTP/1.1\r\nHost: a\r\nVia: 1.1 edge\r\n\r\n");
  const std::string off = proxy::build_forward_request(req, {"192.0.2.7", "http", ""}, false);
  CHECK(has_line(off, "Via: 1.1 edge"));
  CHECK(off.find("wsgate") == std::string::npos);
  const std::string on =
      proxy::build_forward_request(req, {"192.0.2.7", "http", ""}, false, true, true);
  CHECK(has_line(on, "Via: 1.1 edge"));
  CHECK(on.ends_with("\r\nVia: 1.1 wsgate\r\n\r\n"));
  CHECK(on.find("Via: 1.1 edge") < on.find("Via: 1.1 wsgate"));

  http1::ResponseHead head;
  REQUIRE(http1::parse_response_head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                                     http1::Limits{}, head)
              .state == http1::ParseState::Complete);
  const auto framing = http1::response_body_framing(head, "GET");
  const std::size_t without = proxy::response_for_client(head, framing).fields.size();
  const http::ResponseHead r = proxy::response_for_client(head, framing, true);
  REQUIRE(r.fields.size() == without + 1);
  CHECK(r.fields.back().name == "Via");
  CHECK(r.fields.back().value == "1.0 wsgate");
}

TEST_CASE("hop-by-hop names are found in any case, and only they") {
  for (std::string_view name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                                "transfer-encoding", "UPGRADE"})
    CHECK(http::is_hop_by_hop_name(name));
  for (std::string_view name : {"Content-Type", "te2", "Trailers", "Upgrade-Insecure-Requests",
                                "connectio", "Keep-Alive2", "", "Host"})
    CHECK_FALSE(http::is_hop_by_hop_name(name));
}

TEST_CASE("Connection options: tokens of every Connection field, OWS trimmed, any number") {
  using wsgate::http1::Header;
  const std::vector<Header> one = {
      {"Connection", " keep-alive ,\tX-Trace ,, "}, {"Connection", "Upgrade"}, {"X-Trace", "1"}};
  const http::ConnectionOptions options(one);
  for (std::string_view named : {"keep-alive", "x-trace", "UPGRADE"}) CHECK(options.names(named));
  for (std::string_view other : {"Connection", "X-Tracer", "", "trace"})
    CHECK_FALSE(options.names(other));
  // More options than are kept split: every Connection field is looked at.
  const std::vector<Header> many = {{"Connection", "a, b, c, d, e, f, g"}, {"Connection", "h"}};
  const http::ConnectionOptions all(many);
  for (std::string_view named : {"a", "f", "g", "H"}) CHECK(all.names(named));
  CHECK_FALSE(all.names("i"));
}
