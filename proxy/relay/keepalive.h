// The gateway's keepalive pings to one peer of a relay (the client or the upstream), per
// the route's ping_interval and ping_timeout. Every interval a Ping goes to the peer at
// the next frame boundary of the direction that writes to it (its FrameObserver); the
// matching Pong, read by the FrameObserver of the direction that reads from the peer, is
// consumed there and gives the round-trip time. A peer that does not answer within
// ping_timeout is reported dead (on_dead), once; so is one that, while its Ping waits
// for the end of a frame, takes none of the bytes waiting for it in a whole ping_timeout.
//
// Ownership: the WebSocketRelay owns one Keepalive per pinged side, and both
// FrameObservers; the observers hold plain pointers to it. Timers run on the relay's
// event loop. One timer per side: it fires at the next Ping, then at that Ping's
// deadline, one ping_timeout after the Ping is written to the peer's output (a Ping due
// inside a frame waits for the frame's end).
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <span>

#include "conf/config.h"
#include "metrics/connection_stats.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay/ping_tracker.h"

namespace wsgate::proxy {

class FrameObserver;
class Pipe;

class Keepalive {
 public:
  // `to_peer` writes to the peer; `from_peer` is the Pipe that reads from it (whether
  // it is paused).
  Keepalive(event_base* base, FrameObserver& to_peer, const Pipe& from_peer,
            conf::Duration interval, conf::Duration timeout, metrics::PingStats& stats,
            std::function<void()> on_dead);
  Keepalive(const Keepalive&) = delete;
  Keepalive& operator=(const Keepalive&) = delete;

  void start();  // the first Ping after one interval
  // No more Pings or deadlines (the relay is closing). Pongs to a Ping already sent are
  // still recognised and consumed.
  void stop();

  // From the FrameObserver that writes to the peer: our Ping (`frame_len` bytes) is in the
  // peer's output now.
  void ping_written(std::size_t frame_len);
  // From the same Pipe: it forwarded a Ping from the other side to the peer.
  void later_ping_forwarded() { tracker_.later_ping_forwarded(); }
  // For the FrameObserver that reads the peer: only then do its Pongs need a look.
  bool expects_pongs() const { return tracker_.sequence() > 0; }
  // A Pong from the peer (payload unmasked). True: it answers a gateway Ping and must
  // not be forwarded.
  bool take_pong(std::span<const uint8_t> payload);

 private:
  void on_timer();
  void send_ping();
  void dead();  // no answer in time: reported once
  void schedule_next_ping();

  FrameObserver& to_peer_;
  const Pipe& from_peer_;
  conf::Duration interval_;
  conf::Duration timeout_;
  metrics::PingStats& stats_;
  std::function<void()> on_dead_;
  PingTracker tracker_;
  // Where the outstanding Ping ends in the byte stream to the peer, and how much of that
  // stream had left the gateway at the last deadline check (Pipe::sink_bytes_delivered).
  uint64_t ping_end_ = 0;
  uint64_t delivered_at_check_ = 0;
  bool ping_delivered_at_check_ = false;
  bool checked_once_ = false;
  bool behind_data_ = false;   // bytes were still queued ahead of the Ping when written
  bool held_checked_ = false;  // a deadline passed while the Ping waited for a frame's end
  Timer timer_;
  bool stopped_ = true;
};

}  // namespace wsgate::proxy
