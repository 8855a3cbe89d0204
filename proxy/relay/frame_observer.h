// The WebSocket rules of one relay direction (RFC 6455 5): walks the frames passing
// through a Pipe, checks every header, counts frames and messages, and tells the Pipe
// how many bytes may move. It also puts the gateway's own frames (a Close, a keepalive
// Ping) into the stream at frame boundaries, and takes out the Pongs that answer the
// gateway's Pings.
//
// Payload bytes are never read: at a frame boundary at most 14 header bytes are copied
// out; a control frame (<= 127 bytes) waits until it is whole, so a Close's code can be
// read and nothing is injected inside it. So the rest of a large data frame may even go
// around the relay's buffers (opaque_ahead(), spliced by the Relay).
//
// Ownership: the Relay owns the Pipe, this observer and the Keepalives; the observer
// borrows them. Threading: the owning worker's event loop.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "metrics/connection_stats.h"
#include "proxy/codec/frame_codec.h"
#include "proxy/relay/pipe.h"

namespace wsgate::proxy {

class FrameObserver;
class Keepalive;
class MessageRateLimiter;

// What a FrameObserver tells its relay. Called from inside pump() or send_close(); the
// relay must not destroy the observer from these callbacks.
class FrameEvents {
 public:
  // A Close frame from the source (forwarded, or consumed after the gateway's own Close).
  virtual void on_close_frame(FrameObserver& dir, uint16_t code) = 0;
  // The source broke a rule; `code` is what its sender must be told (1002, 1008, 1009).
  virtual void on_violation(FrameObserver& dir, uint16_t code, std::string_view why) = 0;

 protected:
  ~FrameEvents() = default;
};

class FrameObserver {
 public:
  static constexpr std::size_t kMaxPingPayload = 16;  // the gateway's own Pings
  enum class State {
    Forwarding,  // frames pass from source to sink
    Dropping,    // the gateway sent the sink its own Close: source frames are discarded
                 // until the source's Close arrives
    Finished,    // the source sent its Close, hit EOF or broke the rules
  };

  // `mask_to_sink`: the sink is a server, so the gateway's own frames are masked (5.3).
  FrameObserver(Pipe& pipe, const ws::FrameRules& rules, bool mask_to_sink,
                metrics::DirectionStats& stats, FrameEvents& events);
  FrameObserver(const FrameObserver&) = delete;
  FrameObserver& operator=(const FrameObserver&) = delete;

  // The source has bytes: check and move every complete frame header and the payload
  // bytes that follow it. An incomplete header or control frame waits for the rest.
  void pump();

  // Write the gateway's own Close to the sink at the next frame boundary (RFC 6455 5.4:
  // control frames may sit between fragments, never inside a frame). From then on the
  // source's frames are dropped. Does nothing if the sink already got a Close.
  void send_close(uint16_t code, std::string_view reason);
  // Write the gateway's Ping with `payload` (<= kMaxPingPayload bytes) to the sink at the
  // next frame boundary (5.4), masked toward a server (5.3); calls the sink's Keepalive
  // ping_written() once it is in the sink's output. False when the sink already got a
  // Close (nothing may follow it, 5.5.1). A second call before the first Ping is written
  // replaces it.
  bool send_ping(std::span<const uint8_t> payload);

  // The source is finished (EOF, reset, ping timeout, or after a violation): stop
  // reading it. When that leaves a data frame partly forwarded, the sink's frame is cut
  // (sink_cut()): nothing more may be written to it, not even a Close (RFC 6455 5.4).
  void finish_source();
  // The sink is gone for good (it missed a keepalive deadline): nothing more is written
  // to it; the source's frames are checked and dropped until its Close, as in Dropping.
  void drop_sink();

  // Keepalive (proxy/relay/keepalive.h): `to_sink` pings the sink, so this direction writes its
  // Pings; `to_source` pings the source, so this direction consumes the Pongs that answer
  // them. Either may be null. Set before start; they must outlive the observer's use.
  void set_keepalive(Keepalive* to_sink, Keepalive* to_source) {
    pings_to_sink_ = to_sink;
    pings_to_source_ = to_source;
  }
  // Counts every data message from the source at its first frame in `messages`, and
  // every Ping and Pong it sends in `control` (not the Pongs that answer the gateway's
  // own Pings, which the gateway paces; not a Close, of which only one passes), when the
  // frame is whole; one over either rate is a violation (1008). Only frames that are
  // forwarded count. `now` is the loop's cached time of the current read, which the
  // Relay keeps. Null: no limit.
  void set_message_limiter(MessageRateLimiter* messages, MessageRateLimiter* control,
                           const timeval* now) {
    message_limiter_ = messages;
    control_limiter_ = control;
    loop_now_ = now;
  }

  // The payload bytes of the data frame in flight still to come, when they may pass
  // unseen: the frame is forwarded and everything before them has moved (the input is
  // empty); else 0.
  uint64_t opaque_ahead() const {
    if (payload_left_ == 0 || state_ != State::Forwarding) return 0;  // most messages
    return pipe_.input_length() == 0 ? payload_left_ : 0;
  }
  // `n` of those bytes left the source without pump(): `delivered` to the sink (counted),
  // or lost on the way (the frame is cut; the relay is ending that side).
  void passed_opaque(uint64_t n, bool delivered);

  State state() const { return state_; }
  bool sink_got_close() const { return sink_got_close_; }
  // The source ended inside a data frame whose header and some payload already went to
  // the sink: the sink's stream ends mid-frame, so no Close or Ping can follow (they
  // would land inside the payload). The relay ends the sink's connection instead, once
  // its output is flushed: no close handshake with it (1006 on that side, 7.1.5).
  bool sink_cut() const { return sink_cut_; }
  // The sink has part of a data frame and the rest is still to come (a relay that gives
  // up now, at close_timeout, cuts it).
  bool sink_in_frame() const { return payload_left_ > 0 && state_ == State::Forwarding; }
  bool source_done() const { return state_ == State::Finished; }
  Pipe& pipe() const { return pipe_; }

 private:
  // Moves (Forwarding) or drops (otherwise) the first `n` bytes of the input.
  void pass(std::size_t n);
  void write_close_now(uint16_t code, std::string_view reason);
  void write_ping_now();
  bool take_gateway_pong(evbuffer* in, std::size_t at, const ws::FrameHeader& h);
  bool allowed(MessageRateLimiter& limiter) const;

  Pipe& pipe_;
  ws::FrameValidator validator_;
  bool mask_to_sink_;
  metrics::DirectionStats& stats_;
  FrameEvents& events_;

  State state_ = State::Forwarding;
  uint64_t payload_left_ = 0;   // payload bytes of the current data frame still to pass
  uint8_t message_opcode_ = 0;  // opcode of the open message's first frame
  uint8_t frame_opcode_ = 0;    // opcode of the data frame whose payload is passing
  bool sink_got_close_ = false;
  bool sink_cut_ = false;       // see sink_cut()
  bool close_pending_ = false;  // send_close() waits for the current frame to end
  uint16_t pending_code_ = 0;
  std::unique_ptr<std::string> pending_reason_;  // made by send_close(): rarely, and late
  // Keepalive and rate limit (see the setters); all null when the route has neither.
  Keepalive* pings_to_sink_ = nullptr;
  Keepalive* pings_to_source_ = nullptr;
  MessageRateLimiter* message_limiter_ = nullptr;
  MessageRateLimiter* control_limiter_ = nullptr;
  const timeval* loop_now_ = nullptr;
  bool ping_pending_ = false;  // send_ping() waits for the current frame to end
  uint8_t ping_frame_len_ = 0;
  std::array<uint8_t, 6 + kMaxPingPayload> ping_frame_{};  // 2-byte header, mask, payload
};

}  // namespace wsgate::proxy
