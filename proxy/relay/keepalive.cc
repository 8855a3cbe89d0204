#include "proxy/relay/keepalive.h"

#include <algorithm>
#include <chrono>

#include "proxy/relay/frame_observer.h"

namespace wsgate::proxy {

Keepalive::Keepalive(event_base* base, FrameObserver& to_peer, const Pipe& from_peer,
                     conf::Duration interval, conf::Duration timeout, metrics::PingStats& stats,
                     std::function<void()> on_dead)
    : to_peer_(to_peer),
      from_peer_(from_peer),
      interval_(interval),
      timeout_(timeout),
      stats_(stats),
      on_dead_(std::move(on_dead)),
      timer_(base, [this] { on_timer(); }) {}

void Keepalive::start() {
  stopped_ = false;
  timer_.arm_ms(interval_.count());
}

void Keepalive::stop() {
  stopped_ = true;
  timer_.cancel();
}

void Keepalive::on_timer() {
  if (stopped_) return;
  if (!tracker_.outstanding()) {
    send_ping();
    return;
  }
  // The deadline of the outstanding Ping. The peer is not at fault if we are not reading
  // it (its Pong may be waiting behind backpressure from the other side) or it is inside
  // a large payload being spliced (its Pong can only follow the frame): give it another
  // ping_timeout.
  if (from_peer_.source_held()) {
    timer_.arm_ms(timeout_.count());
    return;
  }
  const uint64_t delivered = to_peer_.pipe().sink_bytes_delivered();
  if (!tracker_.was_written()) {
    // The Ping waits for the end of the frame in flight toward the peer. The peer is
    // alive while it takes that frame's bytes, or when it has all there are (the frame's
    // sender is the slow one); bytes waiting for it and none taken in a whole
    // ping_timeout: dead, as if the Ping had been written.
    const bool waiting = to_peer_.pipe().sink_bytes_queued() > delivered;
    const bool stalled = held_checked_ && waiting && delivered == delivered_at_check_;
    held_checked_ = true;
    delivered_at_check_ = delivered;
    if (stalled) {
      dead();
    } else {
      timer_.arm_ms(timeout_.count());
    }
    return;
  }
  // A slow reader is not a dead one. A Ping queued behind data the peer has not read yet
  // cannot be answered: while the peer keeps taking our bytes it gets more time; once
  // the Ping has reached it, one full ping_timeout to answer. No progress: dead.
  const bool ping_delivered = delivered >= ping_end_;
  const bool progress = delivered > delivered_at_check_;
  // (At the first deadline: the Ping waited behind data, so it may have left just now.)
  const bool delivered_since_last_check =
      ping_delivered && !ping_delivered_at_check_ && (checked_once_ || behind_data_);
  delivered_at_check_ = delivered;
  ping_delivered_at_check_ = ping_delivered;
  checked_once_ = true;
  if ((!ping_delivered && progress) || delivered_since_last_check) {
    timer_.arm_ms(timeout_.count());
    return;
  }
  dead();
}

void Keepalive::dead() {
  stats_.timed_out = true;
  stop();
  on_dead_();
}

void Keepalive::send_ping() {
  held_checked_ = false;
  const PingPayload payload = tracker_.start();
  if (!to_peer_.send_ping(payload)) {
    stop();  // the peer already got a Close: nothing may follow it (RFC 6455 5.5.1)
    return;
  }
  timer_.arm_ms(timeout_.count());
}

void Keepalive::ping_written(std::size_t frame_len) {
  tracker_.written(PingTracker::Clock::now());
  stats_.sent++;
  ping_end_ = to_peer_.pipe().sink_bytes_queued();
  delivered_at_check_ = to_peer_.pipe().sink_bytes_delivered();
  behind_data_ = delivered_at_check_ + frame_len < ping_end_;
  ping_delivered_at_check_ = false;
  checked_once_ = false;
  // The deadline counts from here: a Ping that waited for a frame boundary (behind a
  // large payload toward a slow reader) was not in the peer's reach before.
  if (!stopped_) timer_.arm_ms(timeout_.count());
}

bool Keepalive::take_pong(std::span<const uint8_t> payload) {
  switch (tracker_.on_pong(payload, PingTracker::Clock::now())) {
    case PingTracker::Pong::Answer: {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(tracker_.rtt()).count();
      stats_.record_rtt(static_cast<uint64_t>(std::max<int64_t>(1, us)));
      schedule_next_ping();
      return true;
    }
    case PingTracker::Pong::Stale:
      return true;
    case PingTracker::Pong::Implied:
      stats_.answered++;  // answered, but the round trip is the other Ping's
      schedule_next_ping();
      return false;
    case PingTracker::Pong::NotOurs:
      return false;
  }
  return false;
}

void Keepalive::schedule_next_ping() {
  if (stopped_) return;
  // One interval after the answered Ping was sent (at once if it took longer).
  const auto since = PingTracker::Clock::now() - tracker_.sent_at();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(interval_ - since);
  timer_.arm_ms(std::max<long long>(0, left.count()));
}

}  // namespace wsgate::proxy
