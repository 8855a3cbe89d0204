// The HTTP/1.1 downstream (gateway/h1/h1_connection.h) and the WebSocket exchange behind
// it, on a real Worker and event loop: the test is the client and the upstream, over
// real sockets, and checks the bytes each side sees.
#include <doctest/doctest.h>

#include <string>

#include "tests/gateway/session_harness.h"

using namespace wsgate;
using namespace wsgate::test;

namespace {

const std::string kUpgrade =
    "GET /ws/chat?room=1 HTTP/1.1\r\n"
    "Host: example.test\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: chat\r\n"
    "\r\n";

// What the upstream receives for one client head, delivered in two writes split at
// `split` (0: one write). The upstream then answers `answer` (empty: none) and the client
// collects what it gets until it has `want_client` bytes or the connection ends.
struct Run {
  std::string upstream_request;
  Peer client;
  Peer upstream;
};

Run send_head(Gateway& g, UpstreamListener& up, const std::string& head, std::size_t split = 0) {
  Run r;
  r.client = g.connect();
  if (split > 0) {
    r.client.write(head.substr(0, split));
    // Let the gateway accept and read the first part on its own.
    g.turn();
    g.turn();
    r.client.write(head.substr(split));
  } else {
    r.client.write(head);
  }
  const bool got = g.run_until([&] {
    if (r.upstream.fd < 0) up.accept(r.upstream);
    r.upstream.pump();
    return r.upstream.head_complete();
  });
  if (got) r.upstream_request = r.upstream.head();
  return r;
}

// The head without its X-Request-Id line: each request gets its own id.
std::string without_request_id(std::string head) {
  const std::size_t at = head.find("X-Request-Id: ");
  if (at != std::string::npos) head.erase(at, head.find("\r\n", at) + 2 - at);
  return head;
}

}  // namespace

TEST_CASE("h1_h1: an upgrade head split at every byte reaches the upstream the same") {
  UpstreamListener up;
  Gateway g(up.port);
  Run whole = send_head(g, up, kUpgrade);
  REQUIRE_FALSE(whole.upstream_request.empty());
  CHECK(whole.upstream_request.rfind("GET /ws/chat?room=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(header_value(whole.upstream_request, "Sec-WebSocket-Key") == "dGhlIHNhbXBsZSBub25jZQ==");
  CHECK(header_value(whole.upstream_request, "Sec-WebSocket-Protocol") == "chat");
  CHECK(header_value(whole.upstream_request, "Host") == "example.test");
  CHECK(header_value(whole.upstream_request, "X-Request-Id").size() == 32);
  for (std::size_t split = 1; split < kUpgrade.size(); ++split) {
    CAPTURE(split);
    Run r = send_head(g, up, kUpgrade, split);
    CHECK(without_request_id(r.upstream_request) == without_request_id(whole.upstream_request));
    r.client.close();
    r.upstream.close();
    g.turn();
  }
}

TEST_CASE("h1_h1: the upstream's 101 and then frames both ways") {
  UpstreamListener up;
  Gateway g(up.port);
  Run r = send_head(g, up, kUpgrade);
  REQUIRE_FALSE(r.upstream_request.empty());
  r.upstream.write(upstream_101(r.upstream_request, "Sec-WebSocket-Protocol: chat\r\n"));
  REQUIRE(g.run_until([&] {
    r.client.pump();
    return r.client.head_complete();
  }));
  CHECK(r.client.status() == 101);
  CHECK(header_value(r.client.head(), "Sec-WebSocket-Accept") ==
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 1.3's example key
  // A masked client text frame "hi" and an unmasked upstream one.
  const std::string client_frame = std::string("\x81\x82\x01\x02\x03\x04", 6) + "\x69\x6b";
  r.client.write(client_frame);
  r.upstream.in.clear();
  REQUIRE(g.run_until([&] {
    r.upstream.pump();
    return r.upstream.in.size() >= client_frame.size();
  }));
  CHECK(r.upstream.in == client_frame);
  r.client.in.clear();
  r.upstream.write(std::string("\x81\x02ok", 4));
  REQUIRE(g.run_until([&] {
    r.client.pump();
    return r.client.in.size() >= 4;
  }));
  CHECK(r.client.in == std::string("\x81\x02ok", 4));
}

TEST_CASE("h1: a malformed head gets 400 with a one-line reason") {
  UpstreamListener up;
  Gateway g(up.port);
  Peer client = g.connect();
  client.write("GET /ws HTTP/1.1\r\nHost example.test\r\n\r\n");
  REQUIRE(g.run_until([&] {
    client.pump();
    return client.eof;
  }));
  CHECK(client.status() == 400);
  const std::string body = client.body();
  REQUIRE(body.size() > 1);
  CHECK(body.back() == '\n');
  CHECK(body.find('\n') == body.size() - 1);  // one line
  Peer none;
  CHECK_FALSE(up.accept(none));  // the upstream was never contacted
}

TEST_CASE("h1: a head over max_header_bytes gets 431") {
  UpstreamListener up;
  Gateway g(up.port, "max_header_bytes = 1024\n");
  Peer client = g.connect();
  client.write("GET /ws HTTP/1.1\r\nHost: example.test\r\nX-Big: " + std::string(3000, 'a') +
               "\r\n\r\n");
  REQUIRE(g.run_until([&] {
    client.pump();
    return client.eof;
  }));
  CHECK(client.status() == 431);
  CHECK(client.body().find('\n') == client.body().size() - 1);
}

TEST_CASE("h1: a head that does not arrive in handshake_timeout gets 408") {
  UpstreamListener up;
  Gateway g(up.port, "handshake_timeout = \"200ms\"\n");
  Peer client = g.connect();
  client.write("GET /ws HTTP/1.1\r\nHost: exa");
  REQUIRE(g.run_until([&] {
    client.pump();
    return client.eof;
  }));
  CHECK(client.status() == 408);
}

TEST_CASE("h1: a connection refused by the [limits] rate gets 429 with Retry-After") {
  UpstreamListener up;
  Gateway g(up.port, {},
            "[limits]\nnew_connections_per_second_per_client = 0.01\nnew_connections_burst = 1\n");
  Peer first = g.connect();  // takes the one token
  REQUIRE(g.run_until([&] { return g.worker->connection_count() == 1; }));
  Peer second = g.connect();
  second.write(kUpgrade);
  REQUIRE(g.run_until([&] {
    second.pump();
    return second.eof;
  }));
  CHECK(second.status() == 429);
  CHECK_FALSE(header_value(second.head(), "Retry-After").empty());
  CHECK(second.body().find("connection rate limit reached") == 0);
  Peer none;
  CHECK_FALSE(up.accept(none));
}

TEST_CASE("h1_h1: an upstream 101 with a wrong Sec-WebSocket-Accept gets 502") {
  UpstreamListener up;
  Gateway g(up.port);
  Run r = send_head(g, up, kUpgrade);
  REQUIRE_FALSE(r.upstream_request.empty());
  r.upstream.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
  REQUIRE(g.run_until([&] {
    r.client.pump();
    return r.client.eof;
  }));
  CHECK(r.client.status() == 502);
  CHECK(r.client.body() == "upstream answered 101 with a wrong Sec-WebSocket-Accept\n");
}

TEST_CASE("h1_h1: an upstream 403 with a body is passed to the client") {
  UpstreamListener up;
  Gateway g(up.port);
  Run r = send_head(g, up, kUpgrade);
  REQUIRE_FALSE(r.upstream_request.empty());
  const std::string answer =
      "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
      "go away now\n";
  r.upstream.write(answer);
  REQUIRE(g.run_until([&] {
    r.client.pump();
    return r.client.in.size() >= answer.size() || r.client.eof;
  }));
  CHECK(r.client.in == answer);
}
