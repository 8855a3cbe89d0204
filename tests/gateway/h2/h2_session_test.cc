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
  // RFC 9113 8.1: the answer is complete; the client, still open, is asked to stop.
  CHECK(c->streams[id].error_code == NGHTTP2_NO_ERROR);
}

// Deadlines and bounds (hostile clients): each of these held the connection or its
// upstream side forever before.

TEST_CASE(
    "h2: a connection that sends only its preface and SETTINGS ends after handshake_timeout") {
  UpstreamListener up;
  Gateway g(up.port, "handshake_timeout = \"300ms\"\n");
  auto c = h2_connect(g);
  // Before: held for the 5-minute idle time; HTTP/1.1 gets handshake_timeout.
  CHECK(g.run_until(
      [&] {
        c->pump();
        return c->peer.eof;
      },
      3000ms));
  CHECK(c->goaway);
}

TEST_CASE("h2: HEADERS without its CONTINUATION ends the connection after handshake_timeout") {
  UpstreamListener up;
  Gateway g(up.port, "handshake_timeout = \"300ms\"\nmax_header_bytes = 65536\n");
  auto c = h2_connect(g);
  // A first request completes (404: no route), so the connection is past its first
  // request head.
  const int32_t first = c->submit(extended_connect("/nope"));
  c->flush();
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[first].closed;
  }));
  CHECK(c->streams[first].status() == 404);
  // RFC 9113 6.10: nothing else may come on the connection until the CONTINUATION does.
  c->drop_continuation = true;
  c->submit(extended_connect("/ws/chat", {{"x-padding", std::string(40000, 'a')}}));
  c->flush();
  CHECK(std::count(c->frame_types_sent.begin(), c->frame_types_sent.end(), NGHTTP2_CONTINUATION) ==
        0);
  // Before: the stream waited for its CONTINUATION forever, pinning the connection.
  CHECK(g.run_until(
      [&] {
        c->pump();
        return c->peer.eof;
      },
      3000ms));
  CHECK(c->goaway);
  Peer none;
  CHECK_FALSE(up.accept(none));
}

TEST_CASE("h2_h1: a relaying stream's trailing HEADERS without END_HEADERS ends the connection") {
  UpstreamListener up;
  Gateway g(up.port, "handshake_timeout = \"300ms\"\n");
  auto c = h2_connect(g);
  const int32_t id = c->submit(extended_connect("/ws/chat"));
  c->flush();
  Peer u = upstream_request(g, up, *c);
  u.write(upstream_101(u.head()));
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].status() == 200;
  }));
  // A trailer block on the open stream (one literal field, "x-t: 1") whose CONTINUATION
  // never comes: RFC 9113 6.10 pins the connection until it does.
  std::string headers("\0\0\x07\x01\0\0\0\0\0", 9);
  headers[8] = static_cast<char>(id);
  headers += std::string(
      "\0\x03x-t\x01"
      "1",
      7);
  c->peer.write(headers);
  // Before: only request heads had a deadline; this held the connection forever.
  CHECK(g.run_until(
      [&] {
        c->pump();
        return c->peer.eof;
      },
      3000ms));
  CHECK(c->goaway);
}

TEST_CASE("h2_h1: a stream whose client never opens its window is reset after http2_send_timeout") {
  UpstreamListener up;
  Gateway g(up.port, "http2_send_timeout = \"300ms\"\n");
  // RFC 9113 6.9.2: the client gives every stream a window of 0 and never raises it.
  auto c = h2_connect(g, {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0}});
  const int32_t id = c->submit(extended_connect("/ws/chat"));
  c->flush();
  Peer u = upstream_request(g, up, *c);
  u.write(upstream_101(u.head()));
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].status() != 0;
  }));
  CHECK(c->streams[id].status() == 200);
  u.in.clear();
  u.write(std::string("\x82\x05hello", 7));  // stuck in the gateway: no window
  // Before: the bytes (up to 256 KiB a stream) waited forever.
  REQUIRE(g.run_until(
      [&] {
        c->pump();
        u.pump();
        return c->streams[id].closed;
      },
      3000ms));
  CHECK(c->streams[id].reset);
  CHECK(c->streams[id].body.empty());
  // The exchange ends cleanly: the upstream gets Close 1001 (RFC 6455 7.4.1: going away).
  REQUIRE(g.run_until([&] {
    u.pump();
    return u.in.size() >= 8 || u.eof;
  }));
  REQUIRE(u.in.size() >= 8);
  CHECK(static_cast<uint8_t>(u.in[0]) == 0x88);
  CHECK((static_cast<uint8_t>(u.in[1]) & 0x80) != 0);  // masked: the gateway is the client
  const auto unmasked = [&](std::size_t i) {
    return static_cast<uint8_t>(u.in[6 + i] ^ u.in[2 + i % 4]);
  };
  CHECK(((unmasked(0) << 8) | unmasked(1)) == 1001);
}

TEST_CASE("h2: streams reset before their answer beyond the rate are refused, then GOAWAY") {
  UpstreamListener up;
  Gateway g(up.port);
  auto c = h2_connect(g);
  // Rapid reset (CVE-2023-44487): 150 streams, each reset by the client right after its
  // HEADERS. 100 are taken, the rest refused (RFC 9113 8.7: REFUSED_STREAM, safe to
  // retry); a reset stream never gives its token back.
  const auto rapid_reset = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const int32_t id = c->submit(extended_connect("/nope"));
      c->flush();  // nghttp2 would drop HEADERS not yet sent when the stream is reset
      nghttp2_submit_rst_stream(c->ng(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
    c->flush();
  };
  const auto& rejections = g.worker->metrics().totals().limit_rejections;
  const auto refused = [&]() -> uint64_t {
    auto it = rejections.find("h2_stream_rate");
    return it == rejections.end() ? 0 : it->second;
  };
  rapid_reset(150);
  REQUIRE(g.run_until([&] {
    c->pump();
    return refused() >= 25;
  }));
  g.run_for(100ms);
  c->pump();
  CHECK(refused() >= 25);  // tokens come back at 20 a second while the test runs
  CHECK(refused() <= 50);
  CHECK_FALSE(c->goaway);
  // A client that goes on regardless is told to calm down and disconnected.
  rapid_reset(150);
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->peer.eof;
  }));
  CHECK(c->goaway);
  CHECK(c->goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("h2: streams answered whole give their token back, so requests are not rate-limited") {
  UpstreamListener up;
  Gateway g(up.port);
  auto c = h2_connect(g);
  // Three full sets of concurrent streams, one after the other, well above the burst
  // and the refill rate: each answered stream (404: no route) returns its token.
  for (int round = 0; round < 3; ++round) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 100; ++i) ids.push_back(c->submit(extended_connect("/nope")));
    c->flush();
    REQUIRE(g.run_until([&] {
      c->pump();
      return std::all_of(ids.begin(), ids.end(), [&](int32_t id) { return c->streams[id].closed; });
    }));
    for (int32_t id : ids) CHECK(c->streams[id].status() == 404);
  }
  CHECK(g.worker->metrics().totals().limit_rejections.count("h2_stream_rate") == 0);
  CHECK_FALSE(c->goaway);
}

TEST_CASE("h2: a closing connection whose client reads nothing ends after handshake_timeout") {
  UpstreamListener up;
  Gateway g(up.port, "handshake_timeout = \"300ms\"\n");
  // A client that stops reading with large windows, so the gateway's output fills.
  auto c = std::make_unique<H2Client>(
      g.connect(8192),
      std::vector<nghttp2_settings_entry>{{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1U << 31) - 1}});
  nghttp2_session_set_local_window_size(c->ng(), NGHTTP2_FLAG_NONE, 0, (1 << 30));
  c->flush();
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->settings_received;
  }));
  const int32_t id = c->submit(extended_connect("/ws/chat"));
  c->flush();
  Peer u = upstream_request(g, up, *c);
  u.write(upstream_101(u.head()));
  u.in.clear();
  REQUIRE(g.run_until([&] {
    c->pump();
    return c->streams[id].status() == 200;
  }));
  // The upstream sends without pause, the client reads nothing and sends PINGs: once
  // the gateway cannot write, their acks pile up in nghttp2 until it detects a flood
  // (max_outbound_ack) and fails the connection, which then only wants to flush its
  // output - to a client that does not read.
  const std::string frame = std::string("\x82\x7e\xff\xff", 4) + std::string(65535, 'x');
  std::size_t sent_in_frame = 0;
  std::string pings;
  for (int i = 0; i < 1100; ++i) pings += std::string("\0\0\x08\x06\0\0\0\0\0", 9) + "12345678";
  std::size_t sent_in_pings = 0;
  // Before: the closing connection had no deadline: the client, its stream and the
  // upstream connection were held for as long as the client kept its socket open. Now
  // the stream ends with the connection, handshake_timeout later, and the upstream hears
  // of it.
  CHECK(g.run_until(
      [&] {
        sent_in_frame =
            (sent_in_frame + u.write_some(std::string_view(frame).substr(sent_in_frame))) %
            frame.size();
        sent_in_pings =
            (sent_in_pings + c->peer.write_some(std::string_view(pings).substr(sent_in_pings))) %
            pings.size();
        u.pump();
        return !u.in.empty() || u.eof;
      },
      15000ms));
}
