// One direction of a relay: moves bytes from a source Endpoint's input to a sink
// Endpoint's output without copying payloads (evbuffer chain moves), with backpressure.
// The Pipe does not read the bytes: what may move, and when, is decided by whoever
// watches them (a FrameObserver for WebSockets, the TunnelRelay for CONNECT tunnels).
//
// Backpressure: when the sink's output passes the high watermark (the route's
// buffer_size) the source is no longer read; below half of it (the sink's on_drained)
// reading resumes. Reading resumes only when no PauseReason is left (STYLE.md 4).
//
// Large payloads go around the buffers: start_splice() hands the next bytes of the source
// to a SplicePump (proxy/relay/splice_pump.h), which moves them socket to socket through
// a kernel pipe the size of the high watermark, never reading them (issue 13).
//
// Ownership: the Relay owns both Endpoints and both Pipes; a Pipe only borrows them.
// Threading: everything runs on the owning worker's event loop.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "proxy/relay/endpoint.h"
#include "proxy/relay/splice_pump.h"

namespace wsgate::proxy {

// Why the source is not being read; reading resumes only when no reason is left.
enum class PauseReason : uint8_t {
  SinkFull = 1,    // the sink's output is above the high watermark (backpressure)
  SourceDone = 2,  // the source has nothing more to say (Close, EOF, a broken rule)
  Spliced = 4,     // a SplicePump reads the source (start_splice)
};

class Pipe {
 public:
  Pipe(Endpoint& source, Endpoint& sink, std::size_t high_watermark);
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  // The source's input: bytes not taken yet.
  evbuffer* input() const { return source_.input(); }
  std::size_t input_length() const { return evbuffer_get_length(input()); }

  // Move the first `n` bytes of the input to the sink (whole chains by pointer; only a
  // partial last chain is copied) and start writing them. The source stops being read
  // once the sink holds more than the high watermark.
  void move(std::size_t n);
  // Drop the first `n` bytes of the input.
  void discard(std::size_t n) { evbuffer_drain(input(), n); }
  // The gateway's own bytes (a Close, a Ping) to the sink.
  void write(const void* data, std::size_t n);

  // The next `n` bytes of the source go to the sink by splice(2), unread. Only between
  // two plain sockets (Endpoint::splice_fd), and only when nothing waits in the input or
  // the sink's output, so the order holds; not while paused. The source is not read
  // meanwhile. The pump starts at the source's next readiness, so `events` never come
  // from inside this call; `done` and `failed` must call end_splice(). False: not now
  // (the bytes move as usual).
  bool start_splice(event_base* base, uint64_t n, SplicePump::Events events);
  bool splicing() const { return splice_ != nullptr; }
  // The pump's `moved`: `n` more bytes reached the sink.
  void spliced(std::size_t n) { sink_bytes_queued_ += n; }
  // The splice is over (done, failed, or given up: no more events from it); reading the
  // source resumes unless something else holds it. Returns what the pump took from the
  // source that never reached the sink. `for_good`: this Pipe splices no more (a socket
  // under it failed). Safe from inside the pump's `done` and `failed`.
  std::size_t end_splice(bool for_good);

  // Start reading the source (when the relay starts).
  void start_reading() { apply_read_state(); }
  // The source is done: stop reading it for good. A splice in progress takes nothing
  // more from it; what its pipe holds still reaches the sink.
  void stop_source();
  bool source_stopped() const { return (paused_ & bit(PauseReason::SourceDone)) != 0; }
  // The sink's output was written down to the low watermark. True when that resumed
  // reading and the input holds bytes: the caller moves them now (an endpoint that kept
  // bytes while paused, like an HTTP/2 stream, does not signal them again).
  bool on_sink_drained();
  // Reading the source is paused for backpressure (the sink is full).
  bool reading_paused() const { return (paused_ & bit(PauseReason::SinkFull)) != 0; }
  // The source may not be able to answer now: reading it is paused for backpressure, or
  // it is inside a large payload that a SplicePump is moving (for keepalive deadlines).
  bool source_held() const {
    return (paused_ & (bit(PauseReason::SinkFull) | bit(PauseReason::Spliced))) != 0;
  }
  // How much more may be read from the source before the sink passes the high
  // watermark (input and sink output together): for Endpoint::read_more().
  std::size_t read_room() const;

  std::size_t high_watermark() const { return high_watermark_; }
  Endpoint& source() const { return source_; }
  Endpoint& sink() const { return sink_; }
  // Bytes on their way to the sink: its output, and a splice's pipe.
  std::size_t sink_buffered() const {
    return sink_.output_length() + (splice_ ? splice_->in_pipe() : 0);
  }
  // Bytes this Pipe has queued to the sink so far (moved and its own).
  uint64_t sink_bytes_queued() const { return sink_bytes_queued_; }
  // How many of them have left the gateway (queued minus Endpoint::unsent_bytes()).
  // May cost a syscall: for keepalive deadlines only.
  uint64_t sink_bytes_delivered() const;

 private:
  static constexpr uint8_t bit(PauseReason r) { return static_cast<uint8_t>(r); }
  void pause(PauseReason r);
  void resume(PauseReason r);
  void apply_read_state();

  Endpoint& source_;
  Endpoint& sink_;
  std::size_t high_watermark_;
  uint64_t sink_bytes_queued_ = 0;
  std::unique_ptr<SplicePump> splice_;  // while a large payload is spliced
  uint8_t paused_ = 0;                  // PauseReason bits
  bool no_splice_ = false;              // end_splice(for_good)
};

}  // namespace wsgate::proxy
