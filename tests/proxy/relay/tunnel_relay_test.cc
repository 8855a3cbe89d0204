// The tunnel relay (CONNECT tunnels, proxy/relay/tunnel_relay.cc) on a real event_base over
// socketpairs: bytes pass unparsed, EOF is passed on as a half-close, backpressure
// bounds the buffering, the idle timeout ends the tunnel.
#include <doctest/doctest.h>
#include <sys/ioctl.h>
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
  int client_gw = -1;  // the gateway's end of the client's socket (the relay owns it)
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
    client_gw = a[1];
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

// Bulk traffic goes by splice(2) (TunnelRelay::opaque_ahead): the same bytes, counts and
// endings as through the buffers.
TEST_CASE("raw relay: bulk both ways is spliced, exact and counted, and EOF still half-closes") {
  metrics::SplicedBytes spliced;
  proxy::RelaySettings s;
  s.spliced = &spliced;
  RawFixture f(s);
  std::string up(4 * 1024 * 1024 + 5, '\0'), down(3 * 1024 * 1024 + 9, '\0');
  for (std::size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>(i * 13 % 251);
  for (std::size_t i = 0; i < down.size(); ++i) down[i] = static_cast<char>(i * 7 % 253);
  std::size_t up_off = 0, down_off = 0;
  bool up_shut = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (
      (f.at_upstream.size() < up.size() || f.at_client.size() < down.size() || !f.upstream_eof) &&
      std::chrono::steady_clock::now() < deadline) {
    if (up_off < up.size()) {
      const ssize_t n = write(f.client_peer, up.data() + up_off, up.size() - up_off);
      if (n > 0) up_off += static_cast<std::size_t>(n);
    } else if (!up_shut) {
      shutdown(f.client_peer, SHUT_WR);  // passed on once every byte before it went
      up_shut = true;
    }
    if (down_off < down.size()) {
      const ssize_t n = write(f.upstream_peer, down.data() + down_off, down.size() - down_off);
      if (n > 0) down_off += static_cast<std::size_t>(n);
    }
    event_base_loop(f.base.get(), EVLOOP_NONBLOCK);
    RawFixture::read_into(f.client_peer, f.at_client, f.client_eof);
    RawFixture::read_into(f.upstream_peer, f.at_upstream, f.upstream_eof);
  }
  CHECK(f.upstream_eof);
  REQUIRE(f.at_upstream.size() == up.size());
  CHECK(f.at_upstream == up);
  REQUIRE(f.at_client.size() == down.size());
  CHECK(f.at_client == down);
  CHECK(spliced.client_to_upstream > up.size() / 2);
  CHECK(spliced.upstream_to_client > down.size() / 2);
  CHECK(f.stats.client_to_upstream.bytes == up.size());
  CHECK(f.stats.upstream_to_client.bytes == down.size());
  CHECK_FALSE(f.finished);  // the upstream may still answer
  shutdown(f.upstream_peer, SHUT_WR);
  REQUIRE(f.run_until([&] { return f.finished; }));
  CHECK(f.stats.tunnel_end == metrics::TunnelEnd::BothClosed);
}

TEST_CASE("raw relay: closing a spliced tunnel delivers what was taken, then ends it") {
  metrics::SplicedBytes spliced;
  proxy::RelaySettings s;
  s.spliced = &spliced;
  RawFixture f(s);
  const std::string chunk(256 * 1024, 'b');
  std::size_t sent = 0;
  // Bulk, read at the upstream, until the splice is under way ...
  for (int i = 0; i < 2000 && spliced.client_to_upstream == 0; ++i) {
    const ssize_t n = write(f.client_peer, chunk.data(), chunk.size());
    if (n > 0) sent += static_cast<std::size_t>(n);
    f.run_until([] { return true; });
  }
  REQUIRE(spliced.client_to_upstream > 0);
  // ... then the upstream stops reading: the pipe and the sockets fill up.
  for (int i = 0; i < 50; ++i) {
    const ssize_t n = write(f.client_peer, chunk.data(), chunk.size());
    if (n > 0) sent += static_cast<std::size_t>(n);
    f.run_until([] { return true; }, /*read_upstream=*/false);
  }
  f.relay->close(1001, "drain");
  // Whatever the gateway took from the client reaches the upstream; then both close.
  REQUIRE(f.run_until([&] { return f.finished; }));
  int unread = 0;  // still in the client's socket: the gateway never took it
  REQUIRE(ioctl(f.client_gw, FIONREAD, &unread) == 0);
  f.relay.reset();  // as its owner does: the sockets close
  REQUIRE(f.run_until([&] { return f.upstream_eof; }));
  CHECK(f.at_upstream.size() == sent - static_cast<std::size_t>(unread));
  CHECK(f.at_upstream.size() == f.stats.client_to_upstream.bytes);
  CHECK(f.at_upstream == std::string(f.at_upstream.size(), 'b'));
  CHECK(f.stats.tunnel_end == metrics::TunnelEnd::GatewayClosed);
}
