// The gateway's Ping payloads and how Pongs from the peer are told apart.
#include "proxy/relay/ping_tracker.h"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using wsgate::proxy::gateway_ping_seq;
using wsgate::proxy::ping_payload;
using wsgate::proxy::PingTracker;
using Pong = PingTracker::Pong;

TEST_CASE("a gateway ping payload is the tag and a big-endian sequence number") {
  const auto p = ping_payload(0x0102030405060708ull);
  const std::vector<uint8_t> expect = {'w', 's', 'g', 'p', 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(std::vector<uint8_t>(p.begin(), p.end()) == expect);
  CHECK(gateway_ping_seq(p) == 0x0102030405060708ull);
  auto other = p;
  other[0] = 'W';
  CHECK_FALSE(gateway_ping_seq(other).has_value());
  CHECK_FALSE(gateway_ping_seq(std::span<const uint8_t>(p.data(), 11)).has_value());
  CHECK_FALSE(gateway_ping_seq({}).has_value());
}

TEST_CASE("the pong to the outstanding ping answers it and gives its round trip") {
  PingTracker t;
  const auto t0 = PingTracker::Clock::time_point{} + 100s;
  const auto payload = t.start();
  CHECK(t.outstanding());
  CHECK_FALSE(t.was_written());
  t.written(t0);
  CHECK(t.on_pong(payload, t0 + 7ms) == Pong::Answer);
  CHECK(t.rtt() == 7ms);
  CHECK_FALSE(t.outstanding());
  // The same pong again (a duplicate) is still ours: consumed, no new answer.
  CHECK(t.on_pong(payload, t0 + 9ms) == Pong::Stale);
}

TEST_CASE("pongs that are not the gateway's pass") {
  PingTracker t;
  const auto t0 = PingTracker::Clock::time_point{} + 100s;
  t.start();
  t.written(t0);
  const uint8_t app[] = {'h', 'i'};
  CHECK(t.on_pong(app, t0) == Pong::NotOurs);
  // A gateway-looking payload with a sequence number never sent is not ours either.
  CHECK(t.on_pong(ping_payload(5), t0) == Pong::NotOurs);
  CHECK(t.on_pong(ping_payload(0), t0) == Pong::NotOurs);
  CHECK(t.outstanding());
}

TEST_CASE("an older gateway pong is consumed but does not answer the newer ping") {
  PingTracker t;
  const auto t0 = PingTracker::Clock::time_point{} + 100s;
  const auto first = t.start();
  t.written(t0);
  CHECK(t.on_pong(first, t0 + 1ms) == Pong::Answer);
  const auto second = t.start();
  t.written(t0 + 1s);
  CHECK(t.on_pong(first, t0 + 1100ms) == Pong::Stale);
  CHECK(t.outstanding());
  CHECK(t.on_pong(second, t0 + 1200ms) == Pong::Answer);
  CHECK(t.rtt() == 200ms);
}

TEST_CASE("RFC 6455 5.5.3: a pong to a later ping from the other side answers ours too") {
  PingTracker t;
  const auto t0 = PingTracker::Clock::time_point{} + 100s;
  t.start();
  t.written(t0);
  const uint8_t app[] = {'x'};
  CHECK(t.on_pong(app, t0) == Pong::NotOurs);  // it may answer an earlier ping
  t.later_ping_forwarded();
  CHECK(t.on_pong(app, t0 + 1ms) == Pong::Implied);
  CHECK_FALSE(t.outstanding());
}

TEST_CASE("a ping forwarded before ours was written does not count as later") {
  PingTracker t;
  t.start();
  t.later_ping_forwarded();  // ours still waits for a frame boundary
  t.written(PingTracker::Clock::time_point{} + 1s);
  const uint8_t app[] = {'x'};
  CHECK(t.on_pong(app, PingTracker::Clock::time_point{} + 2s) == Pong::NotOurs);
}
