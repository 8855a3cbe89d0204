// The relay on a real event_base over socketpairs: the test plays client and backend
// with raw bytes and checks what reaches the other side.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "proxy/relay/relay.h"

using namespace wsgate;

namespace {

std::string frame(uint8_t opcode, const std::string& payload, bool masked, bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() < 65536) {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    f.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(masked ? payload[i] ^ key[i % 4] : payload[i]));
  return f;
}

std::string close_payload(uint16_t code) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
}

// Reads the close code of the first Close frame in `bytes` (unmasking if needed); 0 if none.
uint16_t first_close_code(const std::string& bytes) {
  std::size_t pos = 0;
  while (pos + 2 <= bytes.size()) {
    const auto b0 = static_cast<uint8_t>(bytes[pos]);
    const auto b1 = static_cast<uint8_t>(bytes[pos + 1]);
    uint64_t len = b1 & 0x7f;
    std::size_t h = 2;
    if (len == 126) {
      len = (static_cast<uint8_t>(bytes[pos + 2]) << 8) | static_cast<uint8_t>(bytes[pos + 3]);
      h = 4;
    } else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(bytes[pos + 2 + i]);
      h = 10;
    }
    const bool masked = (b1 & 0x80) != 0;
    const std::size_t mask_at = pos + h;
    if (masked) h += 4;
    if ((b0 & 0x0f) == 0x8 && len >= 2) {
      uint8_t p0 = static_cast<uint8_t>(bytes[pos + h]);
      uint8_t p1 = static_cast<uint8_t>(bytes[pos + h + 1]);
      if (masked) {
        p0 ^= static_cast<uint8_t>(bytes[mask_at]);
        p1 ^= static_cast<uint8_t>(bytes[mask_at + 1]);
      }
      return static_cast<uint16_t>((p0 << 8) | p1);
    }
    pos += h + len;
  }
  return 0;
}

struct Fixture {
  EventBasePtr base{event_base_new()};
  int client_peer = -1, client_gw = -1, upstream_gw = -1, upstream_peer = -1;
  metrics::ConnectionStats stats;
  std::unique_ptr<proxy::Relay> relay;
  bool finished = false;
  std::string at_client, at_upstream;  // what the peers have read so far

  explicit Fixture(proxy::RelaySettings settings = {}) {
    int a[2], b[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a) == 0);
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b) == 0);
    client_peer = a[0];
    client_gw = a[1];
    upstream_gw = b[0];
    upstream_peer = b[1];
    BufferEventPtr c(bufferevent_socket_new(base.get(), client_gw, BEV_OPT_CLOSE_ON_FREE));
    BufferEventPtr u(bufferevent_socket_new(base.get(), upstream_gw, BEV_OPT_CLOSE_ON_FREE));
    relay = std::make_unique<proxy::Relay>(base.get(), std::move(c), true, std::move(u), true,
                                           settings, stats, [this] { finished = true; });
    relay->start();
  }
  ~Fixture() {
    relay.reset();
    close(client_peer);
    close(upstream_peer);
  }

  static void send_all(int fd, const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }
  static void drain_into(int fd, std::string& out) {
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Writes all of `bytes` to `fd` while the loop runs and both peers are read (for more
  // than a socket buffer holds); false after 10 s.
  bool feed(int fd, const std::string& bytes) {
    std::size_t off = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (off < bytes.size() && std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = write(fd, bytes.data() + off, bytes.size() - off);
      if (n > 0) off += static_cast<std::size_t>(n);
      event_base_loop(base.get(), EVLOOP_NONBLOCK);
      drain_into(client_peer, at_client);
      drain_into(upstream_peer, at_upstream);
    }
    return off == bytes.size();
  }
  // Runs the loop until `done` holds (reading both peers as we go) or 3 s pass.
  bool run_until(const std::function<bool()>& done, bool read_client = true) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      event_base_loop(base.get(), EVLOOP_NONBLOCK);
      if (read_client) drain_into(client_peer, at_client);
      drain_into(upstream_peer, at_upstream);
      if (done()) return true;
      usleep(1000);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("client frames reach the upstream byte for byte, and back") {
  Fixture f;
  const std::string text = frame(0x1, "hello", true);
  const std::string big = frame(0x2, std::string(70000, 'b'), true);
  const std::string fragmented =
      frame(0x1, "frag", true, false) + frame(0x9, "p", true) + frame(0x0, "ment", true, true);
  Fixture::send_all(f.client_peer, text + big + fragmented);
  const std::size_t sent = text.size() + big.size() + fragmented.size();
  REQUIRE(f.run_until([&] { return f.at_upstream.size() >= sent; }));
  CHECK(f.at_upstream == text + big + fragmented);
  CHECK(f.stats.client_to_upstream.messages == 3);
  CHECK(f.stats.client_to_upstream.text_messages == 2);
  CHECK(f.stats.client_to_upstream.binary_messages == 1);
  CHECK(f.stats.client_to_upstream.pings == 1);
  CHECK(f.stats.client_to_upstream.frames == 5);
  CHECK(f.stats.client_to_upstream.bytes == sent);

  const std::string reply = frame(0x1, "world", false);
  Fixture::send_all(f.upstream_peer, reply);
  REQUIRE(f.run_until([&] { return f.at_client.size() >= reply.size(); }));
  CHECK(f.at_client == reply);
}

TEST_CASE("a close handshake passes through and ends the relay") {
  Fixture f;
  Fixture::send_all(f.client_peer, frame(0x8, close_payload(4001) + "bye", true));
  REQUIRE(f.run_until([&] { return first_close_code(f.at_upstream) == 4001; }));
  CHECK_FALSE(f.finished);
  Fixture::send_all(f.upstream_peer, frame(0x8, close_payload(4001), false));
  REQUIRE(f.run_until([&] { return f.finished; }));
  CHECK(first_close_code(f.at_client) == 4001);
  CHECK(f.stats.close_code == 4001);
  CHECK(f.stats.closed_by == metrics::Side::Client);
}

TEST_CASE("an unmasked client frame gets 1002, the upstream gets 1001") {
  Fixture f;
  Fixture::send_all(f.client_peer, frame(0x1, "ok", true) + frame(0x1, "unmasked", false));
  REQUIRE(f.run_until([&] { return first_close_code(f.at_client) != 0; }));
  CHECK(first_close_code(f.at_client) == 1002);
  REQUIRE(f.run_until([&] { return first_close_code(f.at_upstream) != 0; }));
  CHECK(first_close_code(f.at_upstream) == 1001);
  // The good frame went through; the bad one did not.
  CHECK(f.at_upstream.starts_with(frame(0x1, "ok", true)));
  CHECK(f.at_upstream.find("unmasked") == std::string::npos);
  CHECK(f.stats.closed_by == metrics::Side::Gateway);
  CHECK(f.stats.close_code == 1002);
  Fixture::send_all(f.upstream_peer, frame(0x8, close_payload(1001), false));
  REQUIRE(f.run_until([&] { return f.finished; }));
}

TEST_CASE("a message over max_message_size gets 1009") {
  proxy::RelaySettings s;
  s.max_message_size = 1000;
  Fixture f(s);
  Fixture::send_all(f.client_peer, frame(0x2, std::string(600, 'a'), true, false) +
                                       frame(0x0, std::string(600, 'a'), true, true));
  REQUIRE(f.run_until([&] { return first_close_code(f.at_client) != 0; }));
  CHECK(first_close_code(f.at_client) == 1009);
}

TEST_CASE("the gateway's Close waits for the frame in flight to end") {
  Fixture f;
  const std::string whole = frame(0x2, std::string(1000, 'z'), false);
  Fixture::send_all(f.upstream_peer, whole.substr(0, 300));
  REQUIRE(f.run_until([&] { return f.at_client.size() == 300; }));
  f.relay->close(1001, "going away");
  f.run_until([] { return false; });  // give it time: nothing more may arrive yet
  CHECK(f.at_client.size() == 300);
  Fixture::send_all(f.upstream_peer, whole.substr(300));
  REQUIRE(f.run_until([&] { return f.at_client.size() > whole.size(); }));
  CHECK(f.at_client.substr(0, whole.size()) == whole);
  CHECK(first_close_code(f.at_client) == 1001);
  CHECK(first_close_code(f.at_upstream) == 1001);
}

TEST_CASE("a client that reads nothing holds the gateway to its buffer size") {
  proxy::RelaySettings s;
  s.buffer_size = 64 * 1024;
  Fixture f(s);
  const std::string chunk = frame(0x2, std::string(16 * 1024, 'x'), false);
  // Push until the backend's socket is full: the gateway must stop reading it.
  std::size_t pushed = 0;
  std::size_t max_buffered = 0;
  for (int i = 0; i < 2000; ++i) {
    const ssize_t n = write(f.upstream_peer, chunk.data(), chunk.size());
    if (n > 0) pushed += static_cast<std::size_t>(n);
    event_base_loop(f.base.get(), EVLOOP_NONBLOCK);
    max_buffered = std::max(max_buffered, f.relay->buffered_bytes());
    if (n < 0 && f.relay->buffered_bytes() > 0) {
      // Give the loop a few more turns to prove it stays paused.
      for (int k = 0; k < 20; ++k) event_base_loop(f.base.get(), EVLOOP_NONBLOCK);
      max_buffered = std::max(max_buffered, f.relay->buffered_bytes());
      break;
    }
  }
  CHECK(pushed > 0);
  // High watermark plus at most one read (libevent reads up to 16 KiB... or one chunk).
  CHECK(max_buffered <= s.buffer_size + 64 * 1024);
  // Reading resumes once the client reads.
  std::string got;
  REQUIRE(f.run_until([&] { return f.at_client.size() >= pushed; }));
}

TEST_CASE("the backend disappearing gives the client 1011") {
  Fixture f;
  close(f.upstream_peer);
  f.upstream_peer = -1;
  REQUIRE(f.run_until([&] { return first_close_code(f.at_client) != 0; }));
  CHECK(first_close_code(f.at_client) == 1011);
  CHECK(f.stats.closed_by == metrics::Side::Upstream);
  CHECK(f.stats.close_code == 1006);
}

// Large payloads go socket to socket by splice(2) (Pipe::start_splice): the bytes, the
// counts and the close rules must be what the buffered path gives.
TEST_CASE("large frames are spliced, byte for byte and counted, both ways") {
  metrics::SplicedBytes spliced;
  proxy::RelaySettings s;
  s.spliced = &spliced;
  Fixture f(s);
  std::string payload(3 * 1024 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 % 251);
  const std::string up = frame(0x2, payload, true) + frame(0x1, "after", true) +
                         frame(0x2, payload.substr(0, 200000), true);
  const std::string down = frame(0x2, payload.substr(5), false) + frame(0x9, "p", false);
  // Written in pieces, as a peer would: the relay sees headers and payload apart.
  std::size_t up_off = 0, down_off = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((f.at_upstream.size() < up.size() || f.at_client.size() < down.size()) &&
         std::chrono::steady_clock::now() < deadline) {
    for (auto [fd, bytes, off] :
         {std::tuple{f.client_peer, &up, &up_off}, std::tuple{f.upstream_peer, &down, &down_off}}) {
      if (*off < bytes->size()) {
        const ssize_t n =
            write(fd, bytes->data() + *off, std::min<std::size_t>(100000, bytes->size() - *off));
        if (n > 0) *off += static_cast<std::size_t>(n);
      }
    }
    event_base_loop(f.base.get(), EVLOOP_NONBLOCK);
    Fixture::drain_into(f.client_peer, f.at_client);
    Fixture::drain_into(f.upstream_peer, f.at_upstream);
  }
  REQUIRE(f.at_upstream.size() == up.size());
  CHECK(f.at_upstream == up);
  REQUIRE(f.at_client.size() == down.size());
  CHECK(f.at_client == down);
  // Most of each large payload never entered the gateway's buffers.
  CHECK(spliced.client_to_upstream > payload.size());
  CHECK(spliced.upstream_to_client > payload.size() - 200000);
  CHECK(f.stats.client_to_upstream.bytes == up.size());
  CHECK(f.stats.client_to_upstream.messages == 3);
  CHECK(f.stats.upstream_to_client.bytes == down.size());
  CHECK(f.stats.upstream_to_client.pings == 1);
  CHECK(!f.finished);
}

TEST_CASE("the gateway's Close waits for the end of a spliced frame") {
  metrics::SplicedBytes spliced;
  proxy::RelaySettings s;
  s.spliced = &spliced;
  Fixture f(s);
  const std::string whole = frame(0x2, std::string(1024 * 1024, 'z'), false);
  REQUIRE(f.feed(f.upstream_peer, whole.substr(0, 300000)));
  REQUIRE(f.run_until([&] { return f.at_client.size() == 300000; }));
  CHECK(spliced.upstream_to_client > 0);
  f.relay->close(1001, "going away");
  f.run_until([] { return false; });  // nothing more may arrive yet
  CHECK(f.at_client.size() == 300000);
  REQUIRE(f.feed(f.upstream_peer, whole.substr(300000)));
  REQUIRE(f.run_until([&] { return f.at_client.size() > whole.size(); }));
  CHECK(f.at_client.substr(0, whole.size()) == whole);
  CHECK(first_close_code(f.at_client.substr(whole.size())) == 1001);
}

TEST_CASE("a client that ends inside a spliced frame: the upstream gets what was sent, then EOF") {
  metrics::SplicedBytes spliced;
  proxy::RelaySettings s;
  s.spliced = &spliced;
  Fixture f(s);
  const std::string whole = frame(0x2, std::string(1024 * 1024, 'c'), true);
  const std::string sent = whole.substr(0, 400000);
  REQUIRE(f.feed(f.client_peer, sent));
  REQUIRE(f.run_until([&] { return f.at_upstream.size() == sent.size(); }));
  CHECK(spliced.client_to_upstream > 0);
  shutdown(f.client_peer, SHUT_WR);
  // The upstream's connection ends without a Close (nothing may go inside the cut frame,
  // RFC 6455 5.4), and the relay ends.
  REQUIRE(f.run_until([&] { return f.finished; }));
  Fixture::drain_into(f.upstream_peer, f.at_upstream);
  CHECK(f.at_upstream == sent);
  CHECK(f.stats.closed_by == metrics::Side::Client);
  CHECK(f.stats.close_code == 1006);
  char c;
  CHECK(read(f.upstream_peer, &c, 1) == 0);  // EOF
}
