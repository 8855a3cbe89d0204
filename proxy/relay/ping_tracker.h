// The state of the gateway's keepalive pings to one peer, without I/O or timers (those
// are proxy/relay/keepalive.h's): what the next Ping carries, whether one is outstanding, and
// whether a Pong from the peer answers it.
//
// A gateway Ping's payload is a fixed 4-byte tag ("wsgp") and a 64-bit big-endian
// sequence number, so its Pong (RFC 6455 5.5.3: "the same Application data") is
// recognised and never reaches the other side. At most one Ping is outstanding.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace wsgate::proxy {

inline constexpr std::size_t kPingPayloadSize = 12;
using PingPayload = std::array<uint8_t, kPingPayloadSize>;

// The payload of gateway ping number `seq`.
PingPayload ping_payload(uint64_t seq);
// The sequence number if `payload` is a gateway ping's payload (tag and size match).
std::optional<uint64_t> gateway_ping_seq(std::span<const uint8_t> payload);

class PingTracker {
 public:
  using Clock = std::chrono::steady_clock;

  // What a Pong from the peer means for our ping.
  enum class Pong {
    NotOurs,  // forward it: it answers a Ping from the other side
    Answer,   // it answers our outstanding Ping: consume it; rtt() is its round trip
    Stale,    // it answers an earlier gateway Ping (a duplicate): consume it
    Implied,  // not ours, but it answers a Ping sent after ours, which the peer may
              // answer instead of ours (RFC 6455 5.5.3): forward it; ours counts as
              // answered, without a round-trip time
  };

  // Starts the next Ping: its payload. The Ping is outstanding until answered.
  PingPayload start();
  // Our Ping entered the peer's output at `now` (it may wait for a frame boundary).
  void written(Clock::time_point now);
  // A Ping from the other side went to the peer after our outstanding one.
  void later_ping_forwarded() {
    if (outstanding_ && written_) later_ping_ = true;
  }
  // A Pong from the peer with this (unmasked) payload, read at `now`.
  Pong on_pong(std::span<const uint8_t> payload, Clock::time_point now);

  bool outstanding() const { return outstanding_; }
  bool was_written() const { return written_; }
  uint64_t sequence() const { return seq_; }
  Clock::time_point sent_at() const { return sent_at_; }
  // Round trip of the last Answer.
  Clock::duration rtt() const { return rtt_; }

 private:
  uint64_t seq_ = 0;  // of the latest Ping started; the first is 1
  bool outstanding_ = false;
  bool written_ = false;
  bool later_ping_ = false;
  Clock::time_point sent_at_{};
  Clock::duration rtt_{};
};

}  // namespace wsgate::proxy
