// The tunnel relay (CONNECT tunnels, proxy/relay/tunnel_relay.cc) on a real event_base over
// socketpairs: bytes pass unparsed, EOF is passed on as a half-close, backpressure
// bounds the buffering, the idle timeout ends the tunnel.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <string>

#include "proxy/relay/relay.h"

using namespace wsgate;

namespace {

struct RawFixture {
  EventBasePtr base{event_base_new()};
  int client_peer = -1, upstream_peer = -1;
  metrics::ConnectionStats stats;
  std::unique_ptr<proxy::Relay> relay;
  bool finished = false;
  std::string at_client, at_upstream;
  bool client_eof = false, upstream_eof = false;

  explicit RawFixture(proxy::RelaySettings settings = {}) {
    settings.tunnel = true;
    int a[2], b[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b) == 0);
    client_peer = a[0];
    upstream_peer = b[1];
    BufferEventPtr c(bufferevent_socket_new(base.get(), a[1], BEV_OPT_CLOSE_ON_FREE));
    BufferEventPtr u(bufferevent_socket_new(base.get(), b[0], BEV_OPT_CLOSE_ON_FREE));
    relay = std::make_unique<proxy::Relay>(base.get(), std::move(c), true, std::move(u), true,
                                           settings, stats, [this] { finished = true; });
    relay->start();
  }
  ~RawFixture() {
    relay.reset();
    close(client_peer);
    close(upstream_peer);
  }

  static void read_into(int fd, std::string& out, bool& eof) {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n == 0) eof = true;
      if (n <= 0) return;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  bool run_until(const std::function<bool()>& done, bool read_upstream = true) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      event_base_loop(base.get(), EVLOOP_NONBLOCK);
      read_into(client_peer, at_client, client_eof);
      if (read_upstream) read_into(upstream_peer, at_upstream, upstream_eof);
      if (done()) return true;
      usleep(1000);
    }
    return false;
  }
};

void send_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
    REQUIRE(n > 0);
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

TEST_CASE("raw relay: any bytes pass both ways unparsed and are counted") {
  RawFixture f;
  // Not WebSocket frames at all: an HTTP request and binary noise.
  const std::string up = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string("\x00\xff\x88\x80", 4);
  const std::string down(300000, '\x88');  // would be a masked-Close flood as WebSocket
  send_all(f.client_peer, up);
  REQUIRE(f.run_until([&] { return f.at_upstream.size() >= up.size(); }));
  send_all(f.upstream_peer, down.substr(0, 100000));
  REQUIRE(f.run_until([&] { return f.at_client.size() >= 100000; }));
  CHECK(f.at_upstream == up);
  CHECK(f.at_client == down.substr(0, 100000));
  CHECK(f.stats.client_to_upstream.bytes == up.size());
  CHECK(f.stats.upstream_to_client.bytes == 100000);
  CHECK(f.stats.client_to_upstream.frames == 0);
  CHECK_FALSE(f.finished);
}

TEST_CASE("raw relay: EOF is passed on as a half-close, the other way keeps flowing") {
  RawFixture f;
  send_all(f.client_peer, "request");
  shutdown(f.client_peer, SHUT_WR);
  REQUIRE(f.run_until([&] { return f.upstream_eof; }));
  CHECK(f.at_upstream == "request");
  CHECK_FALSE(f.finished);
  send_all(f.upstream_peer, "response after the client's EOF");
  REQUIRE(f.run_until([&] { return f.at_client.size() >= 31; }));
  CHECK(f.at_client == "response after the client's EOF");
  shutdown(f.upstream_peer, SHUT_WR);
  REQUIRE(f.run_until([&] { return f.finished; }));
  CHECK(f.stats.tunnel_end == metrics::TunnelEnd::BothClosed);
  CHECK(f.relay->tunnel_end() == proxy::TunnelEnd::BothClosed);
  CHECK(f.stats.closed_by == metrics::Side::Client);
}

TEST_CASE("raw relay: a stalled upstream bounds what the gateway buffers") {
  proxy::RelaySettings s;
  s.buffer_size = 64 * 1024;
  RawFixture f(s);
  const std::string chunk(64 * 1024, 'x');
  std::size_t accepted = 0;
  // Write until the client's socket refuses: the relay stopped reading it.
  for (int i = 0; i < 400; ++i) {
    const ssize_t n = write(f.client_peer, chunk.data(), chunk.size());
    if (n > 0) accepted += static_cast<std::size_t>(n);
    f.run_until([] { return true; }, /*read_upstream=*/false);
  }
  CHECK(accepted < 400 * chunk.size());
  CHECK(f.relay->buffered_bytes() <= s.buffer_size + 256 * 1024);
  // The upstream reads again: everything arrives.
  REQUIRE(f.run_until([&] { return f.at_upstream.size() >= accepted; }));
  CHECK(f.at_upstream.size() == accepted);
}

TEST_CASE("raw relay: idle timeout ends the tunnel") {
  proxy::RelaySettings s;
  s.idle_timeout = std::chrono::milliseconds(100);
  RawFixture f(s);
  REQUIRE(f.run_until([&] { return f.finished; }));
  CHECK(f.stats.tunnel_end == metrics::TunnelEnd::IdleTimeout);
  CHECK(f.stats.closed_by == metrics::Side::Gateway);
  CHECK(f.stats.close_reason == "idle timeout");
}
