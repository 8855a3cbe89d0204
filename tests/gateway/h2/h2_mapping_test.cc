#include "gateway/h2/h2_mapping.h"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include <algorithm>
#include <cctype>

#include "gateway/h1/h1_request.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/websocket_key.h"

using wsgate::gateway::h2map::Field;
using wsgate::gateway::h2map::Fields;
using wsgate::gateway::h2map::forwarded_response_to_h2;
using wsgate::gateway::h2map::h1_response_to_h2;
using wsgate::gateway::h2map::h1_upgrade_to_extended_connect;
using wsgate::gateway::h2map::h2_response_to_h1;
using wsgate::gateway::h2map::request_from_h2;
namespace http1 = wsgate::http1;
namespace http = wsgate::http;
using Mapped = http::Checked<http::RequestHead>;

namespace {

constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";  // RFC 6455 1.3

// RFC 8441 5.1's example request, with an Origin, two cookie crumbs and an extension.
Fields rfc8441_request() {
  return {{":method", "CONNECT"},
          {":protocol", "websocket"},
          {":scheme", "https"},
          {":path", "/chat?room=1"},
          {":authority", "server.example.com"},
          {"sec-websocket-protocol", "chat, superchat"},
          {"sec-websocket-extensions", "permessage-deflate"},
          {"sec-websocket-version", "13"},
          {"origin", "http://www.example.com"},
          {"cookie", "a=1"},
          {"cookie", "b=2"},
          {"x-custom", "kept"}};
}

http1::RequestHead parse_request(const std::string& raw) {
  http1::RequestHead head;
  const auto r = http1::parse_request_head(raw, {}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  CHECK(r.head_length == raw.size());
  return head;
}

http1::ResponseHead parse_response(const std::string& raw) {
  http1::ResponseHead head;
  const auto r = http1::parse_response_head(raw, {}, head);
  REQUIRE(r.state == http1::ParseState::Complete);
  return head;
}

std::string value_of(const http::RequestHead& h, std::string_view name) {
  const http::Field* f = h.find(name);
  return f != nullptr ? f->value : std::string("<none>");
}

Fields replace(Fields f, std::string_view name, std::string_view value) {
  for (auto& x : f)
    if (x.name == name) x.value = value;
  return f;
}

Fields remove(Fields f, std::string_view name) {
  std::erase_if(f, [&](const Field& x) { return x.name == name; });
  return f;
}

Mapped map(const Fields& f) {
  return request_from_h2(f);
}

}  // namespace

TEST_CASE("h2 request: RFC 8441 extended CONNECT becomes a structured WebSocket request") {
  const Mapped m = map(rfc8441_request());
  REQUIRE(m.ok());
  const http::RequestHead& r = m.value;
  CHECK(r.method == "GET");
  CHECK(r.protocol == "websocket");
  CHECK(r.is_websocket());
  CHECK(r.scheme == "https");
  CHECK(r.authority == "server.example.com");
  CHECK(r.path == "/chat?room=1");
  CHECK(r.version == http::Version::Http2);
  CHECK(value_of(r, "sec-websocket-version") == "13");
  CHECK(value_of(r, "sec-websocket-protocol") == "chat, superchat");
  CHECK(value_of(r, "sec-websocket-extensions") == "permessage-deflate");
  CHECK(value_of(r, "origin") == "http://www.example.com");
  CHECK(value_of(r, "cookie") == "a=1; b=2");  // RFC 9113 8.2.3
  CHECK(r.count("cookie") == 1);
  CHECK(value_of(r, "x-custom") == "kept");
  // No pseudo-header and no HTTP/1.1 upgrade field is a field of the request.
  for (const auto& f : r.fields) CHECK_FALSE(f.name.starts_with(':'));
  CHECK(r.find("upgrade") == nullptr);
  CHECK(r.find("connection") == nullptr);
}

TEST_CASE("one request from both protocols: h1 upgrade and its h2 form map to the same request") {
  const std::string raw =
      "GET /ws?x=1 HTTP/1.1\r\nHost: example.com:8443\r\nUpgrade: websocket\r\n"
      "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
      "Sec-WebSocket-Version: 13\r\nOrigin: https://example.com\r\nCookie: s=1\r\n"
      "Sec-WebSocket-Protocol: v2.chat\r\n\r\n";
  const http1::RequestHead h1 = parse_request(raw);
  const auto from_h1 = wsgate::gateway::h1::request_from_h1(h1, "https");
  REQUIRE(from_h1.ok());
  const Mapped from_h2 = map(h1_upgrade_to_extended_connect(h1, "https"));
  REQUIRE(from_h2.ok());
  CHECK(from_h2.value.method == from_h1.value.method);
  CHECK(from_h2.value.protocol == from_h1.value.protocol);
  CHECK(from_h2.value.scheme == from_h1.value.scheme);
  CHECK(from_h2.value.authority == from_h1.value.authority);
  CHECK(from_h2.value.path == from_h1.value.path);
  // The same fields, but for the HTTP/1.1 key (RFC 8441 5: none over HTTP/2), the
  // names' case and the place of the (joined) cookie field.
  http::Fields want;
  for (const auto& f : from_h1.value.fields) {
    if (http::iequals(f.name, "sec-websocket-key")) continue;
    std::string name = f.name;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    want.push_back({name, f.value});
  }
  http::Fields got = from_h2.value.fields;
  const auto by_name = [](const http::Field& a, const http::Field& b) { return a.name < b.name; };
  std::stable_sort(want.begin(), want.end(), by_name);
  std::stable_sort(got.begin(), got.end(), by_name);
  CHECK(got == want);
}

TEST_CASE("h2 request: the client's own sec-websocket-key and host are dropped") {
  Fields f = rfc8441_request();
  f.push_back({"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="});
  f.push_back({"host", "evil.example"});
  const Mapped m = map(f);
  REQUIRE(m.ok());
  CHECK(m.value.find("sec-websocket-key") == nullptr);
  CHECK(m.value.find("host") == nullptr);
  CHECK(m.value.authority == "server.example.com");
}

TEST_CASE("h2 request: :protocol compares case-insensitively, http scheme is fine") {
  CHECK(map(replace(rfc8441_request(), ":protocol", "WebSocket")).ok());
  CHECK(map(replace(rfc8441_request(), ":scheme", "http")).ok());
}

TEST_CASE("h2 request: a plain GET and a plain CONNECT map, the exchange decides on them") {
  const Mapped get = map(remove(replace(rfc8441_request(), ":method", "GET"), ":protocol"));
  REQUIRE(get.ok());
  CHECK(get.value.method == "GET");
  CHECK_FALSE(get.value.is_websocket());
  const Mapped tunnel = map({{":method", "CONNECT"}, {":authority", "example.com:443"}});
  REQUIRE(tunnel.ok());
  CHECK(tunnel.value.method == "CONNECT");
  CHECK(tunnel.value.protocol.empty());
  CHECK(tunnel.value.authority == "example.com:443");
}

TEST_CASE("h2 request: refusals carry a status and a reason") {
  struct Case {
    Fields fields;
    int status;
    std::string_view reason_part;
  };
  const Fields good = rfc8441_request();
  Fields late_pseudo = good;
  late_pseudo.push_back({":path", "/again"});
  Fields upper = good;
  upper.push_back({"X-Upper", "1"});
  Fields crlf = good;
  crlf.push_back({"x-inject", "a\r\nHost: b"});
  Fields spaced = good;
  spaced.push_back({"x-space", " a"});
  Fields conn = good;
  conn.push_back({"connection", "close"});
  Fields te = good;
  te.push_back({"te", "gzip"});
  Fields repeated = good;
  repeated.insert(repeated.begin(), {":method", "CONNECT"});
  Fields unknown = good;
  unknown.insert(unknown.begin(), {":status", "200"});
  const Case cases[] = {
      {late_pseudo, 400, "after a regular field"},
      {upper, 400, "invalid field name"},
      {crlf, 400, "invalid value"},
      {spaced, 400, "invalid value"},
      {conn, 400, "connection-specific"},
      {te, 400, "connection-specific"},
      {repeated, 400, "repeated pseudo-header :method"},
      {unknown, 400, "unknown pseudo-header :status"},
      {remove(good, ":method"), 400, "missing :method"},
      {replace(good, ":method", "GET"), 400, ":protocol on a GET"},
      {replace(good, ":protocol", "connect-udp"), 501, "unsupported :protocol \"connect-udp\""},
      {remove(good, ":scheme"), 400, "missing :scheme"},
      {remove(good, ":path"), 400, "missing :path"},
      {remove(good, ":authority"), 400, "missing :authority"},
      {replace(good, ":scheme", "wss"), 400, ":scheme must be http or https"},
      {replace(good, ":path", "chat"), 400, ":path must start with"},
      {replace(good, ":authority", "user@host"), 400, "invalid :authority"},
  };
  for (const auto& c : cases) {
    const Mapped m = map(c.fields);
    INFO("expected ", c.status, " ", c.reason_part, ", got ", m.refusal.status, " ",
         m.refusal.reason);
    CHECK(m.refusal.status == c.status);
    CHECK(m.refusal.reason.find(c.reason_part) != std::string::npos);
  }
}

TEST_CASE("h1 -> h2 response: 101 becomes 200 with the negotiated protocol and extensions") {
  const std::string raw =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate\r\nSet-Cookie: id=7\r\n\r\n";
  const auto m = h1_response_to_h2(parse_response(raw));
  CHECK(m.websocket);
  CHECK_FALSE(m.has_body);
  const Fields want = {{":status", "200"},
                       {"sec-websocket-protocol", "chat"},
                       {"sec-websocket-extensions", "permessage-deflate"},
                       {"set-cookie", "id=7"}};
  CHECK(m.fields == want);
  // ... and back: the 101 a client of the HTTP/1.1 side would see for its own key.
  const http1::ResponseHead back = parse_response(h2_response_to_h1(m.fields, kKey));
  CHECK(back.status == 101);
  REQUIRE(back.find("sec-websocket-accept") != nullptr);
  CHECK(back.find("sec-websocket-accept")->value == wsgate::ws::compute_accept(kKey));
  CHECK(back.find("sec-websocket-protocol")->value == "chat");
  CHECK(back.find("sec-websocket-extensions")->value == "permessage-deflate");
}

TEST_CASE("h1 -> h2 response: a refusal passes as is, hop-by-hop fields dropped") {
  const std::string raw =
      "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
      "Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Why: origin\r\n\r\n";
  const auto m = h1_response_to_h2(parse_response(raw));
  CHECK_FALSE(m.websocket);
  CHECK(m.has_body);
  CHECK_FALSE(m.body_until_close);
  CHECK(m.content_length == 12);
  const Fields want = {{":status", "403"},
                       {"content-type", "text/plain"},
                       {"content-length", "12"},
                       {"x-why", "origin"}};
  CHECK(m.fields == want);
  const http1::ResponseHead back = parse_response(h2_response_to_h1(m.fields, kKey));
  CHECK(back.status == 403);
  CHECK(back.find("x-why")->value == "origin");
}

TEST_CASE("h1 -> h2 response: bodies without Content-Length run until the end") {
  const auto chunked = h1_response_to_h2(
      parse_response("HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"));
  CHECK(chunked.has_body);
  CHECK(chunked.body_until_close);
  CHECK(chunked.fields == Fields{{":status", "401"}});
  const auto empty =
      h1_response_to_h2(parse_response("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
  CHECK_FALSE(empty.has_body);
}

TEST_CASE("h2 request: refusal reasons never echo raw control bytes from the client") {
  // Issue 14 item 5: reasons reach the access log and the refusal body; a name or value
  // with CR, LF or ESC must come out escaped, whatever field it was in.
  const Fields good = rfc8441_request();
  Fields name = good;
  name.push_back({"X-\x1b[2J\r\naccess forged", "1"});
  Fields unknown = good;
  unknown.insert(unknown.begin(), {":x\r\n\x1b", "1"});
  const Fields fields[] = {name, unknown, replace(good, ":protocol", "w\x1b\r\nx"),
                           replace(good, ":path", "c\x7f\x1b"),
                           remove(replace(good, ":method", "G\x1b\r\n"), ":protocol")};
  for (const auto& f : fields) {
    const Mapped m = map(f);
    INFO(m.refusal.reason);
    CHECK(m.refusal.status >= 400);
    CHECK_FALSE(m.refusal.reason.empty());
    for (const char c : m.refusal.reason) {
      const auto u = static_cast<unsigned char>(c);
      CHECK((u >= 0x20 && u < 0x7f));
    }
  }
  CHECK(map(name).refusal.reason.find(R"("X-\x1b[2J\r\naccess forged")") != std::string::npos);
}

TEST_CASE("forwarded response -> h2: lowercase names, no connection fields, framing by length") {
  http::ResponseHead head;
  head.status = 200;
  head.reason = "OK";
  head.fields = {{"Content-Type", "text/html"},
                 {"Set-Cookie", "a=1"},
                 {"Set-Cookie", "b=2"},
                 {"Keep-Alive", "timeout=5"},
                 {"Upgrade", "h2c"}};
  head.body = http::ResponseHead::Body::Length;
  head.content_length = 42;
  const Fields want = {{":status", "200"},
                       {"content-type", "text/html"},
                       {"set-cookie", "a=1"},
                       {"set-cookie", "b=2"},
                       {"content-length", "42"}};
  CHECK(forwarded_response_to_h2(head) == want);

  // Content of unknown length: no content-length, END_STREAM ends it.
  head.body = http::ResponseHead::Body::Stream;
  head.fields = {{"Content-Type", "text/event-stream"}};
  CHECK(forwarded_response_to_h2(head) ==
        Fields{{":status", "200"}, {"content-type", "text/event-stream"}});

  // A HEAD answer keeps the length of the content it does not carry, once.
  head.body = http::ResponseHead::Body::None;
  head.fields = {{"Content-Length", "7"}, {"content-length", "7"}};
  CHECK(forwarded_response_to_h2(head) == Fields{{":status", "200"}, {"content-length", "7"}});

  // A content-length the framing replaced is never sent twice.
  head.body = http::ResponseHead::Body::Length;
  head.content_length = 3;
  CHECK(forwarded_response_to_h2(head) == Fields{{":status", "200"}, {"content-length", "3"}});
}
