#include "proxy/pipe.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <linux/sockios.h>
#include <openssl/rand.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include <sys/uio.h>

#include "proxy/keepalive.h"
#include "proxy/message_rate_limiter.h"

namespace wsgate::proxy {

Pipe::Pipe(bufferevent* source, bufferevent* sink, bool sink_is_plain_socket,
           const ws::FrameRules& rules, bool mask_to_sink, std::size_t high_watermark,
           metrics::DirectionStats& stats, PipeEvents& events)
    : source_(source),
      sink_(sink),
      direct_write_(sink_is_plain_socket),
      validator_(rules),
      mask_to_sink_(mask_to_sink),
      high_watermark_(high_watermark),
      stats_(stats),
      events_(events) {
  // The sink's write callback fires once its output is at or below half the high
  // watermark; that is where a paused source resumes (STYLE.md: low ~ high/2).
  bufferevent_setwatermark(sink_, EV_WRITE, high_watermark_ / 2, 0);
}

std::size_t Pipe::sink_buffered() const {
  return evbuffer_get_length(bufferevent_get_output(sink_));
}

uint64_t Pipe::sink_bytes_delivered() const {
  uint64_t held = sink_buffered();
  int unsent = 0;
  if (direct_write_ && ioctl(bufferevent_getfd(sink_), SIOCOUTQ, &unsent) == 0 && unsent > 0)
    held += static_cast<uint64_t>(unsent);
  return sink_bytes_queued_ > held ? sink_bytes_queued_ - held : 0;
}

void Pipe::pump() {
  if (raw_) {
    pump_raw();
    return;
  }
  evbuffer* in = bufferevent_get_input(source_);
  std::size_t available = evbuffer_get_length(in);
  std::size_t checked = 0;  // bytes at the front of `in` that may leave now

  while (checked < available) {
    if (state_ == State::Finished) {
      // Nothing may follow a Close (RFC 6455 5.5.1) or a violation: discard it.
      evbuffer_drain(in, available);
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
      move_checked_bytes(checked);
      checked = 0;
      write_close_now(pending_code_, pending_reason_);
      return pump();  // the rest of the input is now dropped frame by frame
    }
    if (ping_pending_) {
      // The gateway's Ping goes between frames (RFC 6455 5.4), after what was checked.
      move_checked_bytes(checked);
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
               state_ == State::Forwarding && !message_allowed()) {
      // RFC 6455 7.4.1: 1008, the endpoint broke a policy (the route's message rate).
      code = ws::close_code::kPolicyViolation;
      why = "message rate exceeded";
    }
    if (code != 0) {
      // The offending frame is never forwarded; what came before it is.
      move_checked_bytes(checked);
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
        const ws::ClosePayload close = ws::parse_close_payload(
            frame.data() + h.header_length, h.payload_length, h.masked ? h.mask.data() : nullptr);
        if (!close.valid) {
          move_checked_bytes(checked);
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
        if (forward) {
          move_checked_bytes(checked);
        } else {
          evbuffer_drain(in, checked);
        }
        checked = 0;
        state_ = State::Finished;
        events_.on_close_frame(*this, close.code);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
      }
      if (op == ws::Opcode::Pong && pings_to_source_ != nullptr &&
          pings_to_source_->expects_pongs() && take_gateway_pong(in, checked, h)) {
        // It answers the gateway's own Ping: consumed, never forwarded.
        move_checked_bytes(checked);
        evbuffer_drain(in, frame_len);
        available -= checked + frame_len;
        checked = 0;
        continue;
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
  move_checked_bytes(checked);
  if (payload_left_ == 0 && state_ != State::Finished) {
    if (ping_pending_) write_ping_now();
    if (close_pending_) write_close_now(pending_code_, pending_reason_);
  }
}

void Pipe::read_more_from_source() {
  // libevent 2.1 reads at most 4096 bytes per readiness event (EVBUFFER_MAX_READ): for a
  // bulk tunnel that is a readv and a writev per 4 KiB. Read what the socket holds into
  // the same input buffer (its chains then move to the sink as usual), bounded by the
  // room left under the sink's high watermark.
  constexpr std::size_t kMaxRead = 256 * 1024;
  evbuffer* in = bufferevent_get_input(source_);
  const std::size_t pending = evbuffer_get_length(in) + sink_buffered();
  if (pending >= high_watermark_) return;
  const std::size_t room = std::min(kMaxRead, high_watermark_ - pending);
  const evutil_socket_t fd = bufferevent_getfd(source_);
  if (fd < 0) return;
  std::array<evbuffer_iovec, 2> vec{};
  // The bufferevent keeps its input's end frozen outside its own read callback; we do
  // what that callback does.
  evbuffer_unfreeze(in, 0);
  const int n = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(room), vec.data(), 2);
  std::array<iovec, 2> iov{};
  for (int i = 0; i < n; ++i)
    iov[static_cast<std::size_t>(i)] = {vec[static_cast<std::size_t>(i)].iov_base,
                                        vec[static_cast<std::size_t>(i)].iov_len};
  const ssize_t got = n > 0 ? readv(fd, iov.data(), n) : -1;
  // EOF and EAGAIN are left to the bufferevent's next read, which reports them; an error
  // is not (the kernel reports it once, the next read would say EOF): pump_raw() passes it on.
  if (n > 0 && got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    source_failed_ = true;
  std::size_t left = got > 0 ? static_cast<std::size_t>(got) : 0;
  int used = 0;
  for (int i = 0; i < n && left > 0; ++i, ++used) {
    auto& v = vec[static_cast<std::size_t>(i)];
    v.iov_len = std::min(v.iov_len, left);
    left -= v.iov_len;
  }
  evbuffer_commit_space(in, vec.data(), used);
  evbuffer_freeze(in, 0);
}

void Pipe::pump_raw() {
  if (read_source_directly_ && state_ != State::Finished) read_more_from_source();
  evbuffer* in = bufferevent_get_input(source_);
  const std::size_t available = evbuffer_get_length(in);
  if (state_ == State::Finished) {
    evbuffer_drain(in, available);
  } else if (available > 0) {
    stats_.count_raw(available);
    move_checked_bytes(available);
  }
  if (source_failed_) {
    source_failed_ = false;
    events_.on_source_failed(*this);
  }
}

void Pipe::drop_sink() {
  sink_got_close_ = true;
  close_pending_ = false;
  ping_pending_ = false;
  if (state_ == State::Forwarding) state_ = State::Dropping;
}

bool Pipe::take_gateway_pong(evbuffer* in, std::size_t at, const ws::FrameHeader& h) {
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

bool Pipe::message_allowed() {
  const int64_t now_ns = static_cast<int64_t>(loop_now_->tv_sec) * 1'000'000'000 +
                         static_cast<int64_t>(loop_now_->tv_usec) * 1'000;
  return message_limiter_->allow(now_ns);
}

bool Pipe::send_ping(std::span<const uint8_t> payload) {
  if (sink_got_close_ || payload.size() > kMaxPingPayload) return false;
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

void Pipe::write_ping_now() {
  ping_pending_ = false;
  if (sink_got_close_) return;
  const bool sink_was_empty = sink_buffered() == 0;
  bufferevent_write(sink_, ping_frame_.data(), ping_frame_len_);
  sink_bytes_queued_ += ping_frame_len_;
  if (sink_was_empty) write_to_sink_now();
  if (pings_to_sink_ != nullptr) pings_to_sink_->ping_written(ping_frame_len_);
}

void Pipe::move_checked_bytes(std::size_t n) {
  if (n == 0) return;
  evbuffer* in = bufferevent_get_input(source_);
  if (state_ == State::Forwarding) {
    evbuffer* out = bufferevent_get_output(sink_);
    const bool sink_was_empty = evbuffer_get_length(out) == 0;
    // Moves whole chains by pointer; only a partial last chain is copied.
    evbuffer_remove_buffer(in, out, n);
    sink_bytes_queued_ += n;
    if (sink_was_empty) write_to_sink_now();
    check_sink_watermark();
  } else {
    evbuffer_drain(in, n);
  }
}

void Pipe::send_close(uint16_t code, std::string_view reason) {
  if (sink_got_close_ || close_pending_) return;
  if (payload_left_ == 0) {
    write_close_now(code, reason);
    // Whatever is still waiting in the source is now dropped frame by frame.
    pump();
    return;
  }
  close_pending_ = true;
  pending_code_ = code;
  pending_reason_.assign(reason);
}

void Pipe::write_close_now(uint16_t code, std::string_view reason) {
  close_pending_ = false;
  std::array<uint8_t, ws::kMaxHeaderSize + ws::kMaxControlPayload> frame{};
  std::array<uint8_t, 4> mask{};
  if (mask_to_sink_) RAND_bytes(mask.data(), static_cast<int>(mask.size()));
  const std::size_t n =
      ws::build_close_frame(frame.data(), code, reason, mask_to_sink_ ? mask.data() : nullptr);
  const bool sink_was_empty = sink_buffered() == 0;
  bufferevent_write(sink_, frame.data(), n);
  if (sink_was_empty) write_to_sink_now();
  sink_got_close_ = true;
  if (state_ == State::Forwarding) state_ = State::Dropping;
}

void Pipe::write_to_sink_now() {
  if (!direct_write_) return;  // TLS: the bufferevent encrypts and writes on its own
  // Write at once instead of waiting for the socket to be reported writable: one
  // syscall instead of two epoll_ctl calls and a loop turn per message (what nginx
  // and HAProxy do too). The bufferevent keeps its output's front frozen except in its
  // own write callback; we do what that callback does.
  evbuffer* out = bufferevent_get_output(sink_);
  const evutil_socket_t fd = bufferevent_getfd(sink_);
  if (fd < 0) {  // not a socket after all (a pair): let the bufferevent move the bytes
    bufferevent_enable(sink_, EV_WRITE);
    return;
  }
  evbuffer_unfreeze(out, 1);
  evbuffer_write(out, fd);
  evbuffer_freeze(out, 1);
  // Whatever did not fit (or an error to report) is left to the bufferevent.
  if (evbuffer_get_length(out) > 0) bufferevent_enable(sink_, EV_WRITE);
}

void Pipe::sync_sink_write_state() {
  if (sink_buffered() > 0 || !direct_write_) {
    bufferevent_enable(sink_, EV_WRITE);
  } else {
    bufferevent_disable(sink_, EV_WRITE);
  }
}

void Pipe::on_sink_written() {
  // The bufferevent flushed everything: stop watching writability until bytes wait again.
  if (direct_write_ && sink_buffered() == 0) bufferevent_disable(sink_, EV_WRITE);
  on_sink_drained();
}

void Pipe::finish_source() {
  state_ = State::Finished;
  payload_left_ = 0;
  pause(PauseReason::SourceDone);
}

void Pipe::on_sink_drained() {
  if (sink_buffered() <= high_watermark_ / 2) resume(PauseReason::SinkFull);
}

void Pipe::check_sink_watermark() {
  if (sink_buffered() > high_watermark_) pause(PauseReason::SinkFull);
}

void Pipe::pause(PauseReason r) {
  paused_ |= static_cast<uint8_t>(r);
  apply_read_state();
}

void Pipe::resume(PauseReason r) {
  paused_ &= static_cast<uint8_t>(~static_cast<uint8_t>(r));
  apply_read_state();
}

void Pipe::apply_read_state() {
  if (paused_ != 0) {
    bufferevent_disable(source_, EV_READ);
  } else {
    bufferevent_enable(source_, EV_READ);
  }
}

}  // namespace wsgate::proxy
