// The HTTP/2 downstream (gateway/h2_session.h, gateway/h2_stream.h) and the exchanges
// behind it, on a real Worker and event loop: the test is an nghttp2 client over h2c
// (prior knowledge) and the HTTP/1.1 upstream, and checks the frames and bytes each
// side sees.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "tests/gateway/h2_client.h"
#include "tests/gateway/session_harness.h"

using namespace wsgate;
using namespace wsgate::test;

namespace {

// A client whose SETTINGS the gateway has answered with its own.
std::unique_ptr<H2Client> h2_connect(Gateway& g,
                                     std::vector<nghttp2_settings_entry> settings = {}) {
  auto c = std::make_unique<H2Client>(g.connect(), std::move(settings));
  c->flush();
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->settings_received;
  }));
  return c;
}

// The upstream's side of the connection the gateway opened for a stream, with its
// request head read.
Peer upstream_request(Gateway& g, UpstreamListener& up, H2Client& c) {
  Peer p;
  REQUIRE(g.run_until([&] {
    c.pump();
    if (p.fd < 0) up.accept(p);
    p.pump();
    return p.head_complete();
  }));
  return p;
}

bool stream_answered(H2Client& c, int32_t id) {
  const H2Response& r = c.streams[id];
  return r.status() != 0 || r.closed;
}

}  // namespace

TEST_CASE("h2_h1: extended CONNECT in HEADERS+CONTINUATION reaches the upstream as an upgrade") {
  UpstreamListener up;
  Gateway g(up.port, "max_header_bytes = 65536\n");
  auto c = h2_connect(g);
  // 40000 bytes that HPACK cannot squeeze under one 16 KiB frame: the block continues.
  const int32_t id =
      c->submit(extended_connect("/ws/chat?room=1", {{"sec-websocket-protocol", "chat"},
                                                     {"x-padding", std::string(40000, 'a')}}));
  c->flush();
  CHECK(std::count(c->frame_types_sent.begin(), c->frame_types_sent.end(), NGHTTP2_CONTINUATION) >=
        1);
  Peer u = upstream_request(g, up, *c);
  const std::string req = u.head();
  CHECK(req.rfind("GET /ws/chat?room=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(header_value(req, "Host") == "example.test");
  CHECK(header_value(req, "Upgrade") == "websocket");
  CHECK(header_value(req, "Connection") == "Upgrade");
  CHECK(header_value(req, "Sec-WebSocket-Version") == "13");
  CHECK(header_value(req, "Sec-WebSocket-Key").size() == 24);  // the gateway's own
  CHECK(header_value(req, "Sec-WebSocket-Protocol") == "chat");
  CHECK(header_value(req, "X-Padding").size() == 40000);
  u.write(upstream_101(req, "Sec-WebSocket-Protocol: chat\r\n"));
  REQUIRE(g.run_until([&] {
    c->pump();
    return stream_answered(*c, id);
  }));
  CHECK(c->streams[id].status() == 200);  // RFC 8441 5
  // The upstream's frames reach the client as DATA.
  u.write(std::string("\x82\x05hello", 7));
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].body.size() >= 7;
  }));
  CHECK(c->streams[id].body == std::string("\x82\x05hello", 7));
}

TEST_CASE("h2: a stream with an uppercase field name gets 400") {
  UpstreamListener up;
  Gateway g(up.port);
  auto c = h2_connect(g);
  const int32_t id = c->submit(extended_connect("/ws/chat", {{"x-upper", "1"}}));
  c->rewrite_headers[id] = extended_connect("/ws/chat", {{"X-Upper", "1"}});
  c->flush();
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].closed;
  }));
  CHECK(c->streams[id].status() == 400);
  CHECK(c->streams[id].body.find('\n') == c->streams[id].body.size() - 1);
  Peer none;
  CHECK_FALSE(up.accept(none));
}

TEST_CASE("h2_h1: an upstream 101 with a wrong Sec-WebSocket-Accept gets 502") {
  UpstreamListener up;
  Gateway g(up.port);
  auto c = h2_connect(g);
  const int32_t id = c->submit(extended_connect("/ws/chat"));
  c->flush();
  Peer u = upstream_request(g, up, *c);
  u.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].closed;
  }));
  CHECK(c->streams[id].status() == 502);
  CHECK(c->streams[id].body == "upstream answered 101 with a wrong Sec-WebSocket-Accept\n");
}

TEST_CASE("h2_h1: an upstream 403 with a body is passed to the client") {
  UpstreamListener up;
  Gateway g(up.port);
  auto c = h2_connect(g);
  const int32_t id = c->submit(extended_connect("/ws/chat"));
  c->flush();
  Peer u = upstream_request(g, up, *c);
  u.write(
      "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
      "go away now\n");
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].closed;
  }));
  CHECK(c->streams[id].status() == 403);
  CHECK(c->streams[id].body == "go away now\n");
  CHECK_FALSE(c->streams[id].reset);
}
