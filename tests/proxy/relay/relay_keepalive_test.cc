// The relay's keepalive pings and client message rate limit, on a real event_base over
// socketpairs: the test plays client and backend with raw bytes.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include "proxy/relay/relay.h"

using namespace wsgate;
using namespace std::chrono_literals;

namespace {

struct Frame {
  uint8_t opcode = 0;
  bool fin = false;
  bool masked = false;
  std::string payload;  // unmasked
};

std::string frame(uint8_t opcode, const std::string& payload, bool masked, bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const uint8_t mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | payload.size()));
  } else {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  const uint8_t key[4] = {0x21, 0x43, 0x65, 0x87};
  if (masked) f.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(masked ? payload[i] ^ key[i % 4] : payload[i]));
  return f;
}

// Every complete frame in `bytes` (the tests keep frames < 64 KiB).
std::vector<Frame> frames_in(const std::string& bytes) {
  std::vector<Frame> out;
  std::size_t pos = 0;
  while (pos + 2 <= bytes.size()) {
    Frame f;
    f.fin = (bytes[pos] & 0x80) != 0;
    f.opcode = static_cast<uint8_t>(bytes[pos] & 0x0f);
    f.masked = (bytes[pos + 1] & 0x80) != 0;
    std::size_t len = static_cast<uint8_t>(bytes[pos + 1]) & 0x7f;
    std::size_t h = 2;
    if (len == 126) {
      if (pos + 4 > bytes.size()) break;
      len = (static_cast<uint8_t>(bytes[pos + 2]) << 8) | static_cast<uint8_t>(bytes[pos + 3]);
      h = 4;
    }
    const std::size_t mask_at = pos + h;
    if (f.masked) h += 4;
    if (pos + h + len > bytes.size()) break;
    f.payload = bytes.substr(pos + h, len);
    if (f.masked)
      for (std::size_t i = 0; i < len; ++i) f.payload[i] ^= bytes[mask_at + i % 4];
    out.push_back(f);
    pos += h + len;
  }
  return out;
}

int count_opcode(const std::string& bytes, uint8_t opcode) {
  int n = 0;
  for (const Frame& f : frames_in(bytes)) n += f.opcode == opcode ? 1 : 0;
  return n;
}

// The first frame with `opcode` (a test failure when there is none).
Frame first_with(const std::vector<Frame>& frames, uint8_t opcode) {
  for (const Frame& f : frames)
    if (f.opcode == opcode) return f;
  FAIL("no frame with opcode " << int{opcode});
  return {};
}

uint16_t close_code(const Frame& f) {
  if (f.payload.size() < 2) return 0;
  return static_cast<uint16_t>((static_cast<uint8_t>(f.payload[0]) << 8) |
                               static_cast<uint8_t>(f.payload[1]));
}

struct Fixture {
  EventBasePtr base{event_base_new()};
  int client_peer = -1, upstream_peer = -1;
  metrics::ConnectionStats stats;
  std::unique_ptr<proxy::Relay> relay;
  bool finished = false;
  bool client_eof = false;
  std::string at_client, at_upstream;

  explicit Fixture(const proxy::RelaySettings& settings) {
    // A peer the gateway drops is a socket the test may still write to (as in wsgate).
    std::signal(SIGPIPE, SIG_IGN);
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
  ~Fixture() {
    relay.reset();
    close(client_peer);
    close(upstream_peer);
  }

  static void send_all(int fd, const std::string& bytes) {
    REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }
  static bool drain_into(int fd, std::string& out) {  // false at EOF
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n == 0) return false;
      if (n < 0) return true;
      out.append(buf, static_cast<std::size_t>(n));
    }
  }
  // Runs the loop until `done` holds or `limit` passes; the client is read unless told not.
  bool read_upstream = true;
  std::size_t client_read_limit = 0;  // bytes the client reads per turn; 0: all there are
  std::string client_out;             // bytes the client still has to write (its socket was full)
  std::string upstream_out;           // ... and the upstream

  bool run_until(const std::function<bool()>& done, bool read_client = true,
                 std::chrono::milliseconds limit = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      event_base_loop(base.get(), EVLOOP_NONBLOCK);
      for (auto [fd, out] : {std::pair{client_peer, &client_out}, {upstream_peer, &upstream_out}}) {
        if (out->empty()) continue;
        const ssize_t n = write(fd, out->data(), out->size());
        if (n > 0) out->erase(0, static_cast<std::size_t>(n));
      }
      if (read_client && client_read_limit > 0) {
        char buf[65536];
        const ssize_t n = read(client_peer, buf, std::min(sizeof(buf), client_read_limit));
        if (n == 0) client_eof = true;
        if (n > 0) at_client.append(buf, static_cast<std::size_t>(n));
      } else if (read_client && !drain_into(client_peer, at_client)) {
        client_eof = true;
      }
      if (read_upstream) drain_into(upstream_peer, at_upstream);
      if (done()) return true;
      usleep(1000);
    }
    return false;
  }
};

proxy::RelaySettings pings(bool client, bool upstream) {
  proxy::RelaySettings s;
  s.ping_interval = 50ms;
  s.ping_timeout = 400ms;
  s.ping_client = client;
  s.ping_upstream = upstream;
  return s;
}

}  // namespace

TEST_CASE("keepalive: the client's pong to a gateway ping is consumed, with its round trip") {
  Fixture f(pings(true, false));
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 1; }));
  const Frame ping = first_with(frames_in(f.at_client), 0x9);
  CHECK_FALSE(ping.masked);  // RFC 6455 5.1: a server's frames are not masked
  CHECK(ping.payload.size() == 12);
  CHECK(ping.payload.starts_with("wsgp"));
  Fixture::send_all(f.client_peer, frame(0xA, ping.payload, true) + frame(0x1, "after", true));
  // Client frames stay masked on their way to the upstream: look at the payloads.
  REQUIRE(f.run_until([&] {
    for (const Frame& fr : frames_in(f.at_upstream))
      if (fr.opcode == 0x1 && fr.payload == "after") return true;
    return false;
  }));
  CHECK(count_opcode(f.at_upstream, 0xA) == 0);
  CHECK(f.stats.client_pings.answered == 1);
  CHECK(f.stats.client_pings.last_rtt_us > 0);
  CHECK(f.stats.client_to_upstream.pongs == 0);
  // The next ping follows one interval later; none goes to the upstream.
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 2; }));
  CHECK(count_opcode(f.at_upstream, 0x9) == 0);
  CHECK(f.stats.upstream_pings.sent == 0);
}

TEST_CASE("keepalive: pings to the upstream are masked and their pongs stay in the gateway") {
  Fixture f(pings(false, true));
  REQUIRE(f.run_until([&] { return count_opcode(f.at_upstream, 0x9) >= 1; }));
  const Frame ping = first_with(frames_in(f.at_upstream), 0x9);
  CHECK(ping.masked);  // RFC 6455 5.3: frames toward a server are masked
  CHECK(ping.payload.starts_with("wsgp"));
  Fixture::send_all(f.upstream_peer, frame(0xA, ping.payload, false) + frame(0x1, "hi", false));
  REQUIRE(f.run_until([&] { return f.at_client.find("hi") != std::string::npos; }));
  CHECK(count_opcode(f.at_client, 0xA) == 0);
  CHECK(count_opcode(f.at_client, 0x9) == 0);
  CHECK(f.stats.upstream_pings.answered == 1);
}

TEST_CASE("keepalive: other pongs and pings pass untouched") {
  Fixture f(pings(true, false));
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 1; }));
  // The backend's own ping reaches the client; the client's answer reaches the backend.
  Fixture::send_all(f.upstream_peer, frame(0x9, "app-ping", false));
  REQUIRE(f.run_until([&] {
    for (const Frame& fr : frames_in(f.at_client))
      if (fr.opcode == 0x9 && fr.payload == "app-ping") return true;
    return false;
  }));
  Fixture::send_all(f.client_peer, frame(0xA, "app-ping", true));
  REQUIRE(f.run_until([&] { return count_opcode(f.at_upstream, 0xA) == 1; }));
  CHECK(first_with(frames_in(f.at_upstream), 0xA).payload == "app-ping");
}

TEST_CASE("keepalive: a ping waits for the frame in flight to end") {
  Fixture f(pings(true, false));
  const std::string whole = frame(0x2, std::string(1000, 'z'), false);
  Fixture::send_all(f.upstream_peer, whole.substr(0, 300));
  REQUIRE(f.run_until([&] { return f.at_client.size() >= 300; }));
  f.run_until([] { return false; }, true, 300ms);  // several ping intervals
  CHECK(f.at_client.size() == 300);                // nothing inside the frame
  Fixture::send_all(f.upstream_peer, whole.substr(300));
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 1; }));
  CHECK(f.at_client.substr(0, whole.size()) == whole);
  CHECK(frames_in(f.at_client)[1].opcode == 0x9);
}

TEST_CASE("keepalive: the deadline counts from when a held Ping is written, not sent") {
  proxy::RelaySettings s = pings(true, false);
  s.ping_timeout = 800ms;
  Fixture f(s);
  // A frame in flight holds the Ping due at 50 ms (its deadline passes at 850 ms and is
  // put off, the Ping not being out yet); the frame ends at about 1300 ms.
  const std::string whole = frame(0x2, std::string(1000, 'z'), false);
  Fixture::send_all(f.upstream_peer, whole.substr(0, 300));
  f.run_until([] { return false; }, true, 1300ms);
  REQUIRE(count_opcode(f.at_client, 0x9) == 0);
  Fixture::send_all(f.upstream_peer, whole.substr(300));
  // The client reads nothing for 600 ms, less than ping_timeout after the Ping was
  // written. A deadline still counted from the send (the one due at 1650 ms) would drop
  // it, though the Ping had been within its reach for only 350 ms.
  f.run_until([] { return false; }, false, 600ms);
  CHECK_FALSE(f.stats.client_pings.timed_out);
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 1; }));
  const Frame ping = first_with(frames_in(f.at_client), 0x9);
  Fixture::send_all(f.client_peer, frame(0xA, ping.payload, true));
  REQUIRE(f.run_until([&] { return f.stats.client_pings.answered >= 1; }));
  CHECK_FALSE(f.stats.client_pings.timed_out);
  CHECK_FALSE(f.finished);
}

TEST_CASE("keepalive: a client that stops reading inside a frame is dropped") {
  Fixture f(pings(true, false));
  // A 1 MiB frame from the upstream, 900 KiB of it sent, toward a client that reads
  // nothing: the gateway's output to it stops moving and the Ping due meanwhile waits
  // for the frame's end, which cannot come. Bytes wait and none are taken for a whole
  // ping_timeout: dead, as if the Ping had been written.
  std::string head("\x82\x7f", 2);
  for (int shift = 56; shift >= 0; shift -= 8)
    head.push_back(static_cast<char>((uint64_t{1} << 20) >> shift));
  f.upstream_out = head + std::string(900 * 1024, 'q');
  REQUIRE(f.run_until([&] { return f.stats.client_pings.timed_out; }, false, 5s));
  CHECK(f.stats.close_reason == "client ping timeout");
  CHECK(count_opcode(f.at_client, 0x9) == 0);  // the Ping never left
}

TEST_CASE("keepalive: a client that has all of a stalled frame is not dropped") {
  Fixture f(pings(true, false));
  // The upstream stops inside its frame: the client has every byte there is, so the
  // Ping waits on the upstream, not on the client, through several ping_timeouts.
  const std::string whole = frame(0x2, std::string(1000, 'z'), false);
  Fixture::send_all(f.upstream_peer, whole.substr(0, 300));
  f.run_until([] { return false; }, true, 1500ms);
  CHECK_FALSE(f.stats.client_pings.timed_out);
  CHECK_FALSE(f.finished);
  Fixture::send_all(f.upstream_peer, whole.substr(300));
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 1; }));
}

TEST_CASE("keepalive: a client that does not answer is dropped, the upstream gets 1001") {
  Fixture f(pings(true, false));
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(f.run_until([&] { return count_opcode(f.at_upstream, 0x8) == 1; }, false));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 400ms);
  CHECK(took < 2s);
  const Frame close = first_with(frames_in(f.at_upstream), 0x8);
  CHECK(close_code(close) == 1001);
  CHECK(close.payload.substr(2) == "client ping timeout");
  CHECK(f.stats.close_code == 1006);
  CHECK(f.stats.closed_by == metrics::Side::Client);
  CHECK(f.stats.close_reason == "client ping timeout");
  CHECK(f.stats.client_pings.timed_out);
  // The dead client gets no close handshake: its connection just ends.
  REQUIRE(f.run_until([&] { return f.client_eof; }));
  CHECK(count_opcode(f.at_client, 0x8) == 0);
  CHECK_FALSE(f.finished);
  Fixture::send_all(f.upstream_peer, frame(0x8, std::string("\x03\xe9", 2), false));
  REQUIRE(f.run_until([&] { return f.finished; }));
}

TEST_CASE("rate limit: the message over the burst gets 1008, the upstream 1001") {
  proxy::RelaySettings s;
  s.max_message_rate = 2;
  s.max_message_burst = 3;
  Fixture f(s);
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += frame(0x1, "m" + std::to_string(i), true);
  Fixture::send_all(f.client_peer, burst);
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x8) == 1; }));
  const Frame to_client = first_with(frames_in(f.at_client), 0x8);
  CHECK(close_code(to_client) == 1008);
  CHECK(to_client.payload.substr(2) == "message rate exceeded");
  REQUIRE(f.run_until([&] { return count_opcode(f.at_upstream, 0x8) == 1; }));
  const auto up = frames_in(f.at_upstream);
  CHECK(count_opcode(f.at_upstream, 0x1) == 3);
  CHECK(close_code(first_with(up, 0x8)) == 1001);
  CHECK(first_with(up, 0x8).payload.substr(2) == "client message rate exceeded");
  CHECK(f.stats.close_code == 1008);
  CHECK(f.stats.closed_by == metrics::Side::Gateway);
}

TEST_CASE("rate limit: continuation frames and control frames are not messages") {
  proxy::RelaySettings s;
  s.max_message_rate = 1;
  s.max_message_burst = 1;
  Fixture f(s);
  const std::string msg = frame(0x1, "a", true, false) + frame(0x9, "p", true) +
                          frame(0x0, "b", true, false) + frame(0x0, "c", true, true);
  Fixture::send_all(f.client_peer, msg);
  REQUIRE(f.run_until([&] { return f.at_upstream.size() >= msg.size(); }));
  CHECK(f.at_upstream == msg);
  CHECK(count_opcode(f.at_client, 0x8) == 0);
}

TEST_CASE("keepalive: a client the gateway is not reading (backpressure) is not dropped") {
  proxy::RelaySettings s = pings(true, false);
  s.buffer_size = 4096;
  s.ping_timeout = 300ms;
  Fixture f(s);
  // The upstream reads nothing: its socket fills, the gateway stops reading the client,
  // and the client's own socket fills behind it.
  f.read_upstream = false;
  const std::string one = frame(0x2, std::string(16 * 1024, 'c'), true);
  for (int i = 0; i < 60; ++i) f.client_out += one;
  const std::size_t total = f.client_out.size();
  REQUIRE(f.run_until([&] { return count_opcode(f.at_client, 0x9) >= 1; }));
  // Several ping timeouts pass: the client cannot be heard, so it is not judged.
  f.run_until([] { return false; }, true, 1000ms);
  CHECK_FALSE(f.stats.client_pings.timed_out);
  CHECK_FALSE(f.finished);
  REQUIRE(f.client_out.size() > 0);  // the client really was blocked
  // The client answers at its next frame boundary; the upstream reads again.
  const std::size_t written = total - f.client_out.size();
  const std::size_t boundary = (written + one.size() - 1) / one.size() * one.size() - written;
  const Frame ping = first_with(frames_in(f.at_client), 0x9);
  f.client_out.insert(boundary, frame(0xA, ping.payload, true));
  f.read_upstream = true;
  REQUIRE(f.run_until([&] { return f.stats.client_pings.answered >= 1; }));
  CHECK_FALSE(f.stats.client_pings.timed_out);
  REQUIRE(f.run_until([&] { return f.client_out.empty() && f.at_upstream.size() >= total; }));
  CHECK(f.at_upstream.size() == total);  // every data frame, and not the Pong
}

TEST_CASE("keepalive: a slow reader whose Ping waits behind its data is not dropped") {
  proxy::RelaySettings s = pings(true, false);
  // The gateway and this client share one thread: a pause of the whole process (a busy
  // machine) delays the client's answer as much as it delays the timer, so the timeout
  // leaves room for such pauses. What it tests is unchanged: reading what is ahead of
  // the Ping takes several timeouts.
  s.ping_timeout = 500ms;
  Fixture f(s);
  // 2 MiB toward a client that reads 1 KiB a turn (2048 turns of at least 1 ms): the Ping
  // waits behind four times ping_timeout's worth of data, but the client keeps reading.
  const std::string one = frame(0x2, std::string(16 * 1024, 'u'), false);
  for (int i = 0; i < 128; ++i) f.upstream_out += one;
  f.client_read_limit = 1024;
  // The client answers the gateway's Ping when it reaches it (walks headers as it reads).
  std::size_t scan = 0;
  int pongs = 0;
  int data_frames = 0;
  const auto answer_pings = [&] {
    while (scan + 2 <= f.at_client.size()) {
      std::size_t len = static_cast<uint8_t>(f.at_client[scan + 1]) & 0x7f;
      std::size_t h = 2;
      if (len == 126) {
        if (scan + 4 > f.at_client.size()) break;
        len = (static_cast<uint8_t>(f.at_client[scan + 2]) << 8) |
              static_cast<uint8_t>(f.at_client[scan + 3]);
        h = 4;
      }
      if (scan + h + len > f.at_client.size()) break;
      if ((f.at_client[scan] & 0x0f) == 0x9) {
        f.client_out += frame(0xA, f.at_client.substr(scan + h, len), true);
        pongs++;
      }
      if ((f.at_client[scan] & 0x0f) == 0x2) data_frames++;
      scan += h + len;
    }
    return data_frames == 128 && pongs >= 1;
  };
  const auto start = std::chrono::steady_clock::now();
  // The deadline only bounds a failing run: a sanitizer build on a busy machine needs far
  // longer than a plain one for these 2048 turns.
  REQUIRE(f.run_until(answer_pings, true, 120s));
  INFO("reading took " << std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count()
                       << " ms");
  CHECK_FALSE(f.stats.client_pings.timed_out);
  CHECK_FALSE(f.finished);
  REQUIRE(f.run_until([&] { return f.stats.client_pings.answered >= 1; }));
  CHECK(count_opcode(f.at_upstream, 0xA) == 0);
}

TEST_CASE("keepalive: a client dropped inside a frame: the upstream gets no Close, it is ended") {
  Fixture f(pings(true, false));
  // A frame announcing 1000 payload bytes (RFC 6455 5.2), 10 of them sent.
  const std::string cut =
      std::string("\x82\xfe\x03\xe8", 4) + "\x21\x43\x65\x87" + std::string(10, 'p');
  Fixture::send_all(f.client_peer, cut);
  // The client answers no Ping: after ping_timeout it is taken for dead. The frame
  // toward the upstream can never end, so no Close may follow it (5.4).
  REQUIRE(f.run_until([&] { return f.finished; }, false));
  f.run_until([] { return false; }, false, 50ms);
  CHECK(f.at_upstream == cut);
  CHECK(f.stats.close_code == 1006);
  CHECK(f.stats.close_reason == "client ping timeout");
}
