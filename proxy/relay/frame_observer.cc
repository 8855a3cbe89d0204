#include "proxy/relay/frame_observer.h"

#include <event2/buffer.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "proxy/relay/keepalive.h"
#include "proxy/relay/message_rate_limiter.h"

namespace wsgate::proxy {

FrameObserver::FrameObserver(Pipe& pipe, const ws::FrameRules& rules, bool mask_to_sink,
                             metrics::DirectionStats& stats, FrameEvents& events)
    : pipe_(pipe), validator_(rules), mask_to_sink_(mask_to_sink), stats_(stats), events_(events) {}

void FrameObserver::pump() {
  evbuffer* in = pipe_.input();
  std::size_t available = evbuffer_get_length(in);
  std::size_t checked = 0;  // bytes at the front of `in` that may leave now

  while (checked < available) {
    if (state_ == State::Finished) {
      // Nothing may follow a Close (RFC 6455 5.5.1) or a violation: discard it.
      pipe_.discard(available);
      return;
    }
    if (payload_left_ > 0) {
      // Inside a data frame's payload: it passes as is, masked or not.
      const uint64_t take = std::min<uint64_t>(payload_left_, available - checked);
      checked += take;
      payload_left_ -= take;
      if (state_ == State::Forwarding) stats_.count_payload(frame_opcode_, take);
      continue;
    }
    // At a frame boundary.
    if (close_pending_) {
      pass(checked);
      checked = 0;
      write_close_now(pending_code_, *pending_reason_);
      return pump();  // the rest of the input is now dropped frame by frame
    }
    if (ping_pending_) {
      // The gateway's Ping goes between frames (RFC 6455 5.4), after what was checked.
      pass(checked);
      available -= checked;
      checked = 0;
      write_ping_now();
    }

    std::array<uint8_t, ws::kMaxHeaderSize> raw{};
    evbuffer_ptr pos;
    evbuffer_ptr_set(in, &pos, checked, EVBUFFER_PTR_SET);
    const ev_ssize_t got = evbuffer_copyout_from(in, &pos, raw.data(), raw.size());
    ws::FrameHeader h;
    const ws::HeaderStatus hs = parse_frame_header(raw.data(), static_cast<std::size_t>(got), h);
    if (hs == ws::HeaderStatus::NeedMore) break;

    uint16_t code = 0;
    std::string_view why;
    if (hs == ws::HeaderStatus::Malformed) {
      code = ws::close_code::kProtocolError;
      why = "malformed frame length";
    } else if ((code = validator_.check(h)) != 0) {
      why = validator_.last_error();
    } else if (message_limiter_ != nullptr && !h.is_control() &&
               h.opcode != static_cast<uint8_t>(ws::Opcode::Continuation) &&
               state_ == State::Forwarding && !allowed(*message_limiter_)) {
      // RFC 6455 7.4.1: 1008, the endpoint broke a policy (the route's message rate).
      code = ws::close_code::kPolicyViolation;
      why = "message rate exceeded";
    }
    if (code != 0) {
      // The offending frame is never forwarded; what came before it is.
      pass(checked);
      finish_source();
      events_.on_violation(*this, code, why);
      return;
    }

    if (h.is_control()) {
      // RFC 6455 5.5: control frames are <= 125 bytes; wait until one is whole, so a
      // Close's code can be read and nothing is injected inside it.
      const std::size_t frame_len = h.header_length + h.payload_length;
      if (available - checked < frame_len) break;
      const auto op = static_cast<ws::Opcode>(h.opcode);
      if (op == ws::Opcode::Close) {
        std::array<uint8_t, ws::kMaxHeaderSize + ws::kMaxControlPayload> frame{};
        evbuffer_ptr_set(in, &pos, checked, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &pos, frame.data(), frame_len);
        // RFC 6455 5.5.1: a Close body is a 2-byte code and UTF-8 reason, or nothing.
        const ws::ClosePayload close = ws::parse_close_payload(
            frame.data() + h.header_length, h.payload_length, h.masked ? h.mask.data() : nullptr);
        if (!close.valid) {
          pass(checked);
          finish_source();
          events_.on_violation(*this, ws::close_code::kProtocolError, "invalid close payload");
          return;
        }
        checked += frame_len;
        const bool forward = state_ == State::Forwarding;
        if (forward) {
          stats_.count_frame(h.opcode, frame_len);
          sink_got_close_ = true;
        }
        // Forward it (or, in Dropping, consume it as the reply to our own Close).
        pass(checked);
        checked = 0;
        state_ = State::Finished;
        events_.on_close_frame(*this, close.code);
        pipe_.discard(pipe_.input_length());
        return;
      }
      if (op == ws::Opcode::Pong && pings_to_source_ != nullptr &&
          pings_to_source_->expects_pongs() && take_gateway_pong(in, checked, h)) {
        // It answers the gateway's own Ping: consumed, never forwarded.
        pass(checked);
        pipe_.discard(frame_len);
        available -= checked + frame_len;
        checked = 0;
        continue;
      }
      if (control_limiter_ != nullptr && state_ == State::Forwarding &&
          !allowed(*control_limiter_)) {
        // A Ping or Pong flood, which would reach the upstream (and have it answer
        // every Ping, RFC 6455 5.5.2): the same policy as for data messages, 1008.
        pass(checked);
        finish_source();
        events_.on_violation(*this, ws::close_code::kPolicyViolation,
                             "control frame rate exceeded");
        return;
      }
      if (state_ == State::Forwarding) {
        stats_.count_frame(h.opcode, frame_len);
        // RFC 6455 5.5.3: the peer may answer only this later Ping, not the gateway's.
        if (op == ws::Opcode::Ping && pings_to_sink_ != nullptr)
          pings_to_sink_->later_ping_forwarded();
      }
      checked += frame_len;
      continue;
    }

    // A data frame: its header now, its payload as it comes.
    checked += h.header_length;
    payload_left_ = h.payload_length;
    frame_opcode_ = h.opcode;
    if (h.opcode != static_cast<uint8_t>(ws::Opcode::Continuation)) message_opcode_ = h.opcode;
    if (state_ == State::Forwarding) {
      stats_.count_frame(h.opcode, h.header_length);
      if (h.fin) stats_.count_message(message_opcode_);
    }
  }
  pass(checked);
  if (payload_left_ == 0 && state_ != State::Finished) {
    if (ping_pending_) write_ping_now();
    if (close_pending_) write_close_now(pending_code_, *pending_reason_);
  }
}

void FrameObserver::passed_opaque(uint64_t n, bool delivered) {
  n = std::min(n, payload_left_);  // none left once the source is finished
  payload_left_ -= n;
  if (delivered && state_ == State::Forwarding) stats_.count_payload(frame_opcode_, n);
}

void FrameObserver::pass(std::size_t n) {
  if (n == 0) return;
  if (state_ == State::Forwarding) {
    pipe_.move(n);
  } else {
    pipe_.discard(n);
  }
}

void FrameObserver::drop_sink() {
  sink_got_close_ = true;
  close_pending_ = false;
  ping_pending_ = false;
  if (state_ == State::Forwarding) state_ = State::Dropping;
}

bool FrameObserver::take_gateway_pong(evbuffer* in, std::size_t at, const ws::FrameHeader& h) {
  if (h.payload_length > kMaxPingPayload) return false;  // longer than any gateway Ping
  std::array<uint8_t, ws::kMaxHeaderSize + kMaxPingPayload> frame{};
  evbuffer_ptr pos;
  evbuffer_ptr_set(in, &pos, at, EVBUFFER_PTR_SET);
  const std::size_t n = h.header_length + h.payload_length;
  evbuffer_copyout_from(in, &pos, frame.data(), n);
  uint8_t* payload = frame.data() + h.header_length;
  if (h.masked) ws::apply_mask(payload, h.payload_length, h.mask.data(), 0);
  return pings_to_source_->take_pong({payload, h.payload_length});
}

bool FrameObserver::allowed(MessageRateLimiter& limiter) const {
  const int64_t now_ns = static_cast<int64_t>(loop_now_->tv_sec) * 1'000'000'000 +
                         static_cast<int64_t>(loop_now_->tv_usec) * 1'000;
  return limiter.allow(now_ns);
}

bool FrameObserver::send_ping(std::span<const uint8_t> payload) {
  if (sink_got_close_ || sink_cut_ || payload.size() > kMaxPingPayload) return false;
  std::array<uint8_t, 4> mask{};
  if (mask_to_sink_) RAND_bytes(mask.data(), static_cast<int>(mask.size()));  // RFC 6455 5.3
  ping_frame_len_ = static_cast<uint8_t>(
      ws::build_control_frame(ping_frame_.data(), ws::Opcode::Ping, payload.data(), payload.size(),
                              mask_to_sink_ ? mask.data() : nullptr));
  ping_pending_ = true;
  // Between frames now: write it at once (else pump() does at the boundary).
  if (payload_left_ == 0 && !close_pending_) write_ping_now();
  return true;
}

void FrameObserver::write_ping_now() {
  ping_pending_ = false;
  if (sink_got_close_ || sink_cut_) return;
  pipe_.write(ping_frame_.data(), ping_frame_len_);
  if (pings_to_sink_ != nullptr) pings_to_sink_->ping_written(ping_frame_len_);
}

void FrameObserver::send_close(uint16_t code, std::string_view reason) {
  // A cut sink gets no Close: it would sit inside the cut frame's payload (5.4).
  if (sink_got_close_ || close_pending_ || sink_cut_) return;
  if (payload_left_ == 0) {
    write_close_now(code, reason);
    // Whatever is still waiting in the source is now dropped frame by frame.
    pump();
    return;
  }
  close_pending_ = true;
  pending_code_ = code;
  pending_reason_ = std::make_unique<std::string>(reason);
}

void FrameObserver::write_close_now(uint16_t code, std::string_view reason) {
  close_pending_ = false;
  std::array<uint8_t, ws::kMaxHeaderSize + ws::kMaxControlPayload> frame{};
  std::array<uint8_t, 4> mask{};
  // RFC 6455 5.3: frames toward a server are masked with a fresh random key.
  if (mask_to_sink_) RAND_bytes(mask.data(), static_cast<int>(mask.size()));
  const std::size_t n =
      ws::build_close_frame(frame.data(), code, reason, mask_to_sink_ ? mask.data() : nullptr);
  pipe_.write(frame.data(), n);
  sink_got_close_ = true;
  if (state_ == State::Forwarding) state_ = State::Dropping;
}

void FrameObserver::finish_source() {
  if (payload_left_ > 0 && state_ == State::Forwarding) {
    // The sink has this frame's header and part of its payload, and the rest will never
    // come: the frame is cut. Whatever the gateway meant to write at its end (a Close
    // waiting for the boundary, a Ping) cannot be written anywhere now (RFC 6455 5.4).
    sink_cut_ = true;
    close_pending_ = false;
    ping_pending_ = false;
  }
  state_ = State::Finished;
  payload_left_ = 0;
  pipe_.stop_source();
}

}  // namespace wsgate::proxy
