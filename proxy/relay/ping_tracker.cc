#include "proxy/relay/ping_tracker.h"

#include <algorithm>

namespace wsgate::proxy {
namespace {

constexpr std::array<uint8_t, 4> kTag = {'w', 's', 'g', 'p'};

}  // namespace

PingPayload ping_payload(uint64_t seq) {
  PingPayload p{};
  std::copy(kTag.begin(), kTag.end(), p.begin());
  for (std::size_t i = 0; i < 8; ++i) p[4 + i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
  return p;
}

std::optional<uint64_t> gateway_ping_seq(std::span<const uint8_t> payload) {
  if (payload.size() != kPingPayloadSize || !std::equal(kTag.begin(), kTag.end(), payload.begin()))
    return std::nullopt;
  uint64_t seq = 0;
  for (std::size_t i = 4; i < kPingPayloadSize; ++i) seq = (seq << 8) | payload[i];
  return seq;
}

PingPayload PingTracker::start() {
  ++seq_;
  outstanding_ = true;
  written_ = false;
  later_ping_ = false;
  return ping_payload(seq_);
}

void PingTracker::written(Clock::time_point now) {
  written_ = true;
  sent_at_ = now;
}

PingTracker::Pong PingTracker::on_pong(std::span<const uint8_t> payload, Clock::time_point now) {
  const std::optional<uint64_t> seq = gateway_ping_seq(payload);
  if (seq && *seq == seq_ && outstanding_ && written_) {
    outstanding_ = false;
    rtt_ = now - sent_at_;
    return Pong::Answer;
  }
  // A sequence number we never sent is not ours: it passes like any other Pong.
  if (seq && *seq >= 1 && *seq <= seq_) return Pong::Stale;
  if (outstanding_ && later_ping_) {
    outstanding_ = false;
    return Pong::Implied;
  }
  return Pong::NotOurs;
}

}  // namespace wsgate::proxy
