// One direction of a relay: moves WebSocket bytes from a source bufferevent's input to a
// sink bufferevent's output without copying payloads (evbuffer chain moves), checking
// every frame header on the way (RFC 6455 5) and counting frames and messages.
//
// Ownership: the Relay owns both bufferevents and both Pipes; a Pipe only borrows them.
// Threading: everything runs on the owning worker's event loop.
#pragma once

#include <event2/bufferevent.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "metrics/connection_stats.h"
#include "proxy/codec/frame_codec.h"

namespace wsgate::proxy {

class Pipe;
class Keepalive;
class MessageRateLimiter;

// What a Pipe tells its Relay. Called from inside Pipe::pump(); the Relay must not
// destroy the Pipe from these callbacks (it defers teardown to the end of the iteration).
class PipeEvents {
 public:
  // A Close frame from the source (forwarded, or consumed after the gateway's own Close).
  virtual void on_close_frame(Pipe& pipe, uint16_t code) = 0;
  // The source broke a framing rule; `code` is what its sender must be told (1002, 1009).
  virtual void on_violation(Pipe& pipe, uint16_t code, std::string_view why) = 0;
  // Raw mode: a read of the source socket failed (e.g. ECONNRESET). The error is reported
  // once by the kernel, so the Pipe, having taken it, passes it on (after the bytes read
  // before it have moved).
  virtual void on_source_failed(Pipe& /*pipe*/) {}

 protected:
  ~PipeEvents() = default;
};

// Why the source is not being read; reading resumes only when no reason is left.
enum class PauseReason : uint8_t {
  SinkFull = 1,    // the sink's output is above the high watermark (backpressure)
  SourceDone = 2,  // the source sent its Close, or broke the rules
};

class Pipe {
 public:
  static constexpr std::size_t kMaxPingPayload = 16;  // the gateway's own Pings
  enum class State {
    Forwarding,  // frames pass from source to sink
    Dropping,    // the gateway sent the sink its own Close: source frames are discarded
                 // until the source's Close arrives
    Finished,    // the source sent its Close, hit EOF or broke the rules
  };

  // `sink_is_plain_socket`: the sink is a socket bufferevent (not TLS), so bytes may be
  // written to its fd directly; its EV_WRITE is then enabled only while bytes wait.
  Pipe(bufferevent* source, bufferevent* sink, bool sink_is_plain_socket,
       const ws::FrameRules& rules, bool mask_to_sink, std::size_t high_watermark,
       metrics::DirectionStats& stats, PipeEvents& events);
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  // The source has bytes: check and move every complete frame header and the payload
  // bytes that follow it. An incomplete header (< 14 bytes) or control frame (< 127
  // bytes) waits in the source's input for the rest.
  void pump();

  // The sink's bufferevent wrote and its output is at or below the low watermark.
  void on_sink_written();
  // The sink's output fell below the low watermark: resume reading the source.
  void on_sink_drained();
  // Sets the sink's EV_WRITE to match its output (call once when the relay starts).
  void sync_sink_write_state();
  // A CONNECT tunnel (set before the first pump): bytes pass without frame parsing; the
  // same chain moves, direct writes and watermarks apply, only bytes are counted.
  // `source_is_plain_socket`: the source may be read directly in larger reads.
  void set_raw(bool source_is_plain_socket) {
    raw_ = true;
    read_source_directly_ = source_is_plain_socket;
  }

  // Write the gateway's own Close to the sink at the next frame boundary (RFC 6455 5.4:
  // control frames may sit between fragments, never inside a frame). From then on the
  // source's frames are dropped. Does nothing if the sink already got a Close.
  void send_close(uint16_t code, std::string_view reason);

  // The source is finished (EOF, reset, or after a violation): stop reading it.
  void finish_source();
  // The sink is gone for good (it missed a keepalive deadline): nothing more is written
  // to it; the source's frames are checked and dropped until its Close, as in Dropping.
  void drop_sink();

  // Keepalive (proxy/keepalive.h): `to_sink` pings the sink, so this Pipe writes its
  // Pings; `to_source` pings the source, so this Pipe consumes the Pongs that answer
  // them. Either may be null. Set before start; they must outlive the Pipe's use.
  void set_keepalive(Keepalive* to_sink, Keepalive* to_source) {
    pings_to_sink_ = to_sink;
    pings_to_source_ = to_source;
  }
  // Write the gateway's Ping with `payload` (<= kMaxPingPayload bytes) to the sink at the next
  // frame boundary (RFC 6455 5.4), masked toward a server (5.3); calls to_sink's ping_written()
  // when it is in the sink's output. False when the sink already got a Close (nothing may follow
  // it, 5.5.1). A second call before the first Ping is written replaces it.
  bool send_ping(std::span<const uint8_t> payload);
  // Counts every data message from the source at its first frame; one over the rate is
  // a violation (1008). `now` is the loop's cached time of the current read, which the
  // Relay keeps. Null: no limit.
  void set_message_limiter(MessageRateLimiter* limiter, const timeval* now) {
    message_limiter_ = limiter;
    loop_now_ = now;
  }
  // Reading the source is paused for backpressure (the sink is full).
  bool reading_paused() const {
    return (paused_ & static_cast<uint8_t>(PauseReason::SinkFull)) != 0;
  }

  State state() const { return state_; }
  bool sink_got_close() const { return sink_got_close_; }
  bool source_done() const { return state_ == State::Finished; }
  std::size_t sink_buffered() const;
  // Bytes this Pipe has queued to the sink so far (relayed frames and its own Pings).
  uint64_t sink_bytes_queued() const { return sink_bytes_queued_; }
  // How many of them have left the gateway: queued minus what the sink's output buffer
  // and, on a plain socket, the kernel's send queue (unsent or unacknowledged, SIOCOUTQ)
  // still hold. Costs a syscall: for keepalive deadlines only.
  uint64_t sink_bytes_delivered() const;
  bufferevent* source() const { return source_; }
  bufferevent* sink() const { return sink_; }
  bool sink_is_plain_socket() const { return direct_write_; }

 private:
  void pump_raw();
  void read_more_from_source();
  void move_checked_bytes(std::size_t n);
  void write_close_now(uint16_t code, std::string_view reason);
  void write_ping_now();
  bool take_gateway_pong(evbuffer* in, std::size_t at, const ws::FrameHeader& h);
  bool message_allowed();
  void write_to_sink_now();
  void pause(PauseReason r);
  void resume(PauseReason r);
  void apply_read_state();
  void check_sink_watermark();

  bufferevent* source_;
  bufferevent* sink_;
  bool direct_write_;
  ws::FrameValidator validator_;
  bool mask_to_sink_;  // the sink is a server: our own frames must be masked (5.3)
  std::size_t high_watermark_;
  metrics::DirectionStats& stats_;
  PipeEvents& events_;

  State state_ = State::Forwarding;
  uint64_t payload_left_ = 0;   // payload bytes of the current data frame still to pass
  uint8_t message_opcode_ = 0;  // opcode of the open message's first frame
  uint8_t frame_opcode_ = 0;    // opcode of the data frame whose payload is passing
  bool sink_got_close_ = false;
  bool close_pending_ = false;  // send_close() waits for the current frame to end
  uint16_t pending_code_ = 0;
  std::string pending_reason_;
  uint8_t paused_ = 0;  // PauseReason bits
  bool raw_ = false;    // set_raw(): no frames, just bytes
  bool read_source_directly_ = false;
  bool source_failed_ = false;  // read_more_from_source() took an error from the socket
  // Keepalive and rate limit (see the setters); all null when the route has neither.
  Keepalive* pings_to_sink_ = nullptr;
  Keepalive* pings_to_source_ = nullptr;
  MessageRateLimiter* message_limiter_ = nullptr;
  const timeval* loop_now_ = nullptr;
  uint64_t sink_bytes_queued_ = 0;
  bool ping_pending_ = false;  // send_ping() waits for the current frame to end
  uint8_t ping_frame_len_ = 0;
  std::array<uint8_t, 6 + kMaxPingPayload> ping_frame_{};  // 2-byte header, mask, payload
};

}  // namespace wsgate::proxy
