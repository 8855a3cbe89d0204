// The relay over in-memory Endpoints (tests/proxy/relay/memory_endpoint.h): no sockets, so
// this is what an HTTP/2 stream as an Endpoint relies on: frames pass, the close
// handshake ends both sides, backpressure stops taking bytes out of input() (no
// flow-control credit) and resumes with what was kept, a tunnel's EOF becomes a
// half-close and a reset a reset.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "proxy/relay/relay.h"
#include "tests/proxy/relay/memory_endpoint.h"

using namespace wsgate;
using test::MemoryEndpoint;

namespace {

// A short frame (< 126 bytes payload), masked with a fixed key when `masked`.
std::string frame(uint8_t opcode, const std::string& payload, bool masked) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  f.push_back(static_cast<char>((masked ? 0x80 : 0) | payload.size()));
  const char key[4] = {0x0a, 0x0b, 0x0c, 0x0d};
  if (masked) f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(masked ? payload[i] ^ key[i % 4] : payload[i]));
  return f;
}

std::string close_frame(uint16_t code, bool masked) {
  return frame(0x8, std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)},
               masked);
}

struct MemoryRelay {
  EventBasePtr base{event_base_new()};
  metrics::ConnectionStats stats;
  MemoryEndpoint* client = nullptr;    // owned by the relay
  MemoryEndpoint* upstream = nullptr;  // owned by the relay
  std::unique_ptr<proxy::Relay> relay;
  bool finished = false;

  explicit MemoryRelay(proxy::RelaySettings settings = {}) {
    auto c = std::make_unique<MemoryEndpoint>();
    auto u = std::make_unique<MemoryEndpoint>();
    client = c.get();
    upstream = u.get();
    relay = std::make_unique<proxy::Relay>(base.get(), std::move(c), std::move(u), settings, stats,
                                           [this] { finished = true; });
    relay->start();
  }
};

}  // namespace

TEST_CASE("memory relay: frames pass both ways byte for byte, and are counted") {
  MemoryRelay r;
  CHECK(r.client->reading());
  CHECK(r.upstream->reading());
  const std::string hello = frame(0x1, "hello", /*masked=*/true);
  r.client->peer_send(hello);
  CHECK(r.upstream->peer_receive() == hello);
  CHECK(r.client->taken() == hello.size());
  CHECK(r.upstream->flushes() == 1);
  const std::string answer = frame(0x2, "answer", /*masked=*/false);
  r.upstream->peer_send(answer);
  CHECK(r.client->peer_receive() == answer);
  CHECK(r.stats.client_to_upstream.messages == 1);
  CHECK(r.stats.upstream_to_client.binary_messages == 1);
  CHECK_FALSE(r.finished);
}

TEST_CASE("memory relay: a frame split across reads waits for its header, then passes") {
  MemoryRelay r;
  const std::string f = frame(0x1, "split", /*masked=*/true);
  r.client->peer_send(f.substr(0, 1));
  CHECK(r.upstream->peer_receive().empty());
  CHECK(r.client->waiting() == 1);  // an incomplete header stays in input()
  r.client->peer_send(f.substr(1));
  CHECK(r.upstream->peer_receive() == f);
}

TEST_CASE("memory relay: the close handshake ends both sides cleanly") {
  MemoryRelay r;
  r.client->peer_send(close_frame(1000, /*masked=*/true));
  CHECK(r.upstream->peer_receive() == close_frame(1000, true));
  CHECK(r.relay->closing());
  CHECK_FALSE(r.finished);
  r.upstream->peer_send(close_frame(1000, /*masked=*/false));
  CHECK(r.client->peer_receive() == close_frame(1000, false));
  CHECK(r.finished);
  CHECK(r.stats.close_code == 1000);
  CHECK(r.stats.closed_by == metrics::Side::Client);
  CHECK_FALSE(r.client->attached());
  CHECK_FALSE(r.upstream->attached());
  CHECK(r.client->finished_cleanly());
  CHECK(r.upstream->finished_cleanly());
}

TEST_CASE("memory relay: a full upstream output stops taking client bytes until it drains") {
  proxy::RelaySettings s;
  s.buffer_size = 256;
  MemoryRelay r(s);
  const std::string big = frame(0x2, std::string(120, 'x'), /*masked=*/true);
  r.client->peer_send(big);
  r.client->peer_send(big);
  r.client->peer_send(big);  // 3 x 126 bytes > 256: over the high watermark
  CHECK_FALSE(r.client->reading());
  const uint64_t taken = r.client->taken();
  CHECK(taken == 3 * big.size());
  // Like an HTTP/2 stream, the client endpoint keeps what arrives meanwhile; the relay
  // does not take it (no flow-control credit goes back).
  r.client->peer_send(big);
  CHECK(r.client->taken() == taken);
  CHECK(r.client->waiting() == big.size());
  // The upstream reads down to half the watermark: reading resumes, the kept frame moves.
  std::string got = r.upstream->peer_receive(3 * big.size() - 100);
  CHECK(r.client->reading());
  CHECK(r.client->taken() == 4 * big.size());
  got += r.upstream->peer_receive();
  CHECK(got == big + big + big + big);
}

TEST_CASE("memory relay: frames kept while paused still pass when the client ends") {
  proxy::RelaySettings s;
  s.buffer_size = 128;
  MemoryRelay r(s);
  const std::string big = frame(0x2, std::string(120, 'x'), /*masked=*/true);
  r.client->peer_send(big);
  r.client->peer_send(big);  // over the watermark: not taken, kept in the input
  REQUIRE_FALSE(r.client->reading());
  REQUIRE(r.client->waiting() == 0);
  r.client->peer_send(big);
  REQUIRE(r.client->waiting() == big.size());
  r.client->peer_end();  // like END_STREAM: its frames come before the gateway's Close
  CHECK(r.client->waiting() == 0);
  const std::string got = r.upstream->peer_receive();
  REQUIRE(got.size() > 3 * big.size());
  CHECK(got.substr(0, 3 * big.size()) == big + big + big);
  CHECK(static_cast<uint8_t>(got[3 * big.size()]) == 0x88);  // then Close (1001)
  CHECK(r.stats.closed_by == metrics::Side::Client);
}

TEST_CASE("memory relay: the gateway's close reaches both sides, masked toward the upstream") {
  MemoryRelay r;
  r.relay->close(1001, "going away");
  const std::string to_client = r.client->peer_receive();
  const std::string to_upstream = r.upstream->peer_receive();
  REQUIRE(to_client.size() >= 4);
  REQUIRE(to_upstream.size() >= 8);
  CHECK((static_cast<uint8_t>(to_client[1]) & 0x80) == 0);    // RFC 6455 5.1: unmasked
  CHECK((static_cast<uint8_t>(to_upstream[1]) & 0x80) != 0);  // RFC 6455 5.3: masked
  r.client->peer_send(close_frame(1001, /*masked=*/true));
  r.upstream->peer_send(close_frame(1001, /*masked=*/false));
  CHECK(r.finished);
  CHECK(r.stats.closed_by == metrics::Side::Gateway);
}

TEST_CASE("memory tunnel: an EOF becomes a half-close, both EOFs end it") {
  proxy::RelaySettings s;
  s.tunnel = true;
  MemoryRelay r(s);
  r.client->peer_send("request");
  r.client->peer_end();
  CHECK(r.upstream->peer_receive() == "request");
  CHECK(r.upstream->write_shut());
  CHECK_FALSE(r.finished);
  r.upstream->peer_send("response");
  CHECK(r.client->peer_receive() == "response");
  r.upstream->peer_end();
  CHECK(r.client->write_shut());
  CHECK(r.finished);
  CHECK(r.relay->tunnel_end() == proxy::TunnelEnd::BothClosed);
  CHECK(r.stats.tunnel_end == metrics::TunnelEnd::BothClosed);
  CHECK(r.stats.client_to_upstream.bytes == 7);
}

TEST_CASE("memory tunnel: a reset of one side resets the other") {
  proxy::RelaySettings s;
  s.tunnel = true;
  MemoryRelay r(s);
  r.upstream->peer_reset();
  CHECK(r.client->was_reset());
  CHECK(r.finished);
  CHECK(r.relay->tunnel_end() == proxy::TunnelEnd::UpstreamReset);
  CHECK(r.stats.closed_by == metrics::Side::Upstream);
  CHECK_FALSE(r.upstream->finished_cleanly());  // it is gone
}

TEST_CASE("memory tunnel: an EOF toward a side that cannot half-close ends both") {
  proxy::RelaySettings s;
  s.tunnel = true;
  MemoryRelay r(s);
  r.upstream->half_closable = false;
  r.client->peer_send("last words");
  r.client->peer_end();
  CHECK_FALSE(r.upstream->write_shut());
  CHECK_FALSE(r.finished);  // what is buffered is flushed first
  CHECK(r.upstream->peer_receive() == "last words");
  CHECK(r.finished);
  CHECK(r.relay->tunnel_end() == proxy::TunnelEnd::ClientClosed);
}

// Defect 6 (issue 14): a data frame cut by its sender's end. The header announces 1000
// payload bytes (16-bit length, RFC 6455 5.2); only 10 follow.
namespace {
// The code of the Close at the front of `bytes` (masked or not), 0 if there is none.
uint16_t close_code_at(const std::string& bytes) {
  if (bytes.size() < 4 || static_cast<uint8_t>(bytes[0]) != 0x88) return 0;
  const bool masked = (static_cast<uint8_t>(bytes[1]) & 0x80) != 0;
  const std::size_t at = masked ? 6 : 2;
  if (bytes.size() < at + 2) return 0;
  auto byte = [&](std::size_t i) {
    return static_cast<uint8_t>(bytes[at + i] ^ (masked ? bytes[2 + i] : 0));
  };
  return static_cast<uint16_t>((byte(0) << 8) | byte(1));
}
}  // namespace

namespace {
std::string cut_frame(bool masked) {
  std::string f = "\x82";
  f.push_back(static_cast<char>((masked ? 0x80 : 0) | 126));
  f += std::string("\x03\xe8", 2);
  if (masked) f += "\x0a\x0b\x0c\x0d";
  return f + std::string(10, 'p');
}
}  // namespace

TEST_CASE(
    "memory relay: an upstream that ends inside a frame: the client gets no Close, it is ended") {
  MemoryRelay r;
  const std::string cut = cut_frame(/*masked=*/false);
  r.upstream->peer_send(cut);
  r.upstream->peer_end();
  // RFC 6455 5.4: no Close inside the payload; the frame can never end, so the client's
  // connection ends once these bytes are out, with no close handshake (1006).
  CHECK(r.client->peer_receive() == cut);
  CHECK(r.finished);
  CHECK_FALSE(r.client->finished_cleanly());  // no TLS close_notify on a cut stream
  CHECK(r.client->abandoned());
  CHECK_FALSE(r.client->attached());
  CHECK(r.stats.close_code == 1006);
  CHECK(r.stats.closed_by == metrics::Side::Upstream);
  CHECK(r.upstream->peer_receive().empty());  // the upstream is gone: told nothing
}

TEST_CASE("memory relay: a client reset inside a frame: the upstream gets no Close, it is ended") {
  MemoryRelay r;
  const std::string answer = frame(0x1, "still whole", /*masked=*/false);
  const std::string cut = cut_frame(/*masked=*/true);
  r.client->peer_send(cut);
  r.upstream->peer_send(answer);  // the other direction is whole: it passes as is
  CHECK(r.client->peer_receive() == answer);
  r.client->peer_reset();
  CHECK(r.upstream->peer_receive() == cut);
  CHECK(r.finished);
  CHECK_FALSE(r.upstream->finished_cleanly());
  CHECK(r.upstream->abandoned());
  CHECK(r.stats.close_code == 1006);
  CHECK(r.stats.closed_by == metrics::Side::Client);
}

TEST_CASE(
    "memory relay: a Close waiting for a frame boundary is never written if the frame is cut") {
  MemoryRelay r;
  const std::string cut = cut_frame(/*masked=*/false);
  r.upstream->peer_send(cut);
  CHECK(r.client->peer_receive() == cut);
  r.relay->close(1001, "draining");  // the client's Close waits for the frame to end
  const std::string to_upstream = r.upstream->peer_receive();
  REQUIRE(to_upstream.size() >= 2);
  CHECK(static_cast<uint8_t>(to_upstream[0]) == 0x88);  // the upstream is at a boundary
  CHECK(r.client->peer_receive().empty());
  r.upstream->peer_end();  // ... which now never comes
  CHECK(r.client->peer_receive().empty());
  CHECK(r.finished);  // no wait for a close_timeout: the client is ended at once
  CHECK_FALSE(r.client->finished_cleanly());
  CHECK(r.client->abandoned());
}

TEST_CASE("memory relay: at close_timeout a side in the middle of a frame is abandoned") {
  proxy::RelaySettings s;
  s.close_timeout = std::chrono::milliseconds(10);
  MemoryRelay r(s);
  const std::string cut = cut_frame(/*masked=*/false);
  r.upstream->peer_send(cut);  // ... and the upstream stalls inside the frame
  r.relay->close(1001, "draining");
  CHECK(r.client->peer_receive() == cut);
  CHECK(close_code_at(r.upstream->peer_receive()) == 1001);
  event_base_loop(r.base.get(), EVLOOP_ONCE);  // the close_timeout
  REQUIRE(r.finished);
  CHECK(r.client->abandoned());  // the frame toward it is cut: no clean end
  CHECK_FALSE(r.client->finished_cleanly());
  CHECK(r.upstream->finished_cleanly());  // it got its Close and is still there
  CHECK_FALSE(r.upstream->abandoned());
}

TEST_CASE("memory relay: a Close waiting for a frame boundary follows the frame when it ends") {
  MemoryRelay r;
  const std::string head = "\x82\x7e\x03\xe8";
  r.upstream->peer_send(head + std::string(10, 'p'));
  r.relay->close(1001, "draining");
  r.upstream->peer_send(std::string(990, 'q'));
  const std::string got = r.client->peer_receive();
  REQUIRE(got.size() > 1004);
  CHECK(got.substr(0, 1004) == head + std::string(10, 'p') + std::string(990, 'q'));
  CHECK(static_cast<uint8_t>(got[1004]) == 0x88);
  CHECK_FALSE(r.finished);
}

TEST_CASE("memory relay: a Ping flood over max_message_rate gets 1008, the upstream 1001") {
  proxy::RelaySettings s;
  s.max_message_rate = 2;
  s.max_message_burst = 3;  // control frames: 10x, a burst of 30
  MemoryRelay r(s);
  const std::string ping = frame(0x9, "are you there", /*masked=*/true);
  std::string flood;
  for (int i = 0; i < 100; ++i) flood += ping;
  r.client->peer_send(flood);
  std::string forwarded;
  for (int i = 0; i < 30; ++i) forwarded += ping;
  const std::string at_upstream = r.upstream->peer_receive();
  REQUIRE(at_upstream.size() > forwarded.size());
  CHECK(at_upstream.substr(0, forwarded.size()) == forwarded);  // the burst, no more
  CHECK(close_code_at(at_upstream.substr(forwarded.size())) == 1001);
  const std::string at_client = r.client->peer_receive();
  CHECK(close_code_at(at_client) == 1008);
  CHECK(at_client.substr(4) == "control frame rate exceeded");
  CHECK(r.stats.close_code == 1008);
  CHECK(r.stats.closed_by == metrics::Side::Gateway);
  CHECK_FALSE(r.client->reading());  // nothing more is taken from the offender
}

TEST_CASE("memory relay: Pings and Pongs do not spend the data message budget") {
  proxy::RelaySettings s;
  s.max_message_rate = 1;
  s.max_message_burst = 1;  // control frames: the floor, 10 at once
  MemoryRelay r(s);
  std::string control;
  for (int i = 0; i < 5; ++i)
    control += frame(0x9, "ping", /*masked=*/true) + frame(0xA, "pong", /*masked=*/true);
  const std::string msg = frame(0x1, "the one message", /*masked=*/true);
  r.client->peer_send(control + msg);
  CHECK(r.upstream->peer_receive() == control + msg);
  CHECK(r.client->peer_receive().empty());
  CHECK_FALSE(r.relay->closing());
}
