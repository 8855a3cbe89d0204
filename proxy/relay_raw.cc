// The Relay's raw mode, for CONNECT tunnels: the Pipes move bytes without frame parsing
// (Pipe::set_raw), with the same backpressure and idle timeout as WebSocket relays.
// What differs is how a tunnel ends, since there is no Close frame:
//  - a side's EOF is passed on as a TCP half-close (shutdown(SHUT_WR)) once the bytes it
//    sent are flushed, if the other side is a plain socket; the other direction keeps
//    flowing until that side ends too (RFC 9110 9.3.6: the tunnel closes when either
//    side closes, after what it sent is delivered);
//  - where the other side cannot be half-closed (TLS, an HTTP/2 stream's pair), on an
//    error, an idle timeout or close() (drain): nothing more is read, what is buffered is
//    flushed within close_timeout, then both sides close;
//  - when a side fails (a TCP reset, an HTTP/2 stream reset), the other side is reset
//    too (SO_LINGER 0, so its close sends RST) rather than closed as if all went well
//    (RFC 9113 8.5 for HTTP/2; what a TCP proxy does for HTTP/1.1).
// Close codes are only bookkeeping here: 1000 both sides ended, 1006 a side failed,
// 1001 the gateway ended it.
#include <event2/buffer.h>
#include <sys/socket.h>

#include "proxy/codec/frame_codec.h"
#include "proxy/relay.h"

namespace wsgate::proxy {

void Relay::raw_record_end(metrics::Side by, uint16_t code, std::string_view reason, bool full) {
  if (!closing_) {
    closing_ = true;
    stats_.closed_by = by;
    stats_.close_code = code;
    stats_.close_reason.assign(reason);
  }
  if (full && !raw_full_close_) {
    raw_full_close_ = true;
    to_upstream_.finish_source();
    to_client_.finish_source();
    close_timer_.arm_ms(settings_.close_timeout.count());
  }
}

void Relay::raw_side_gone(bool client_side, bool error) {
  bool& eof = client_side ? client_eof_ : upstream_eof_;
  if (eof) {
    if (error) (client_side ? client_gone_ : upstream_gone_) = true;
    return;
  }
  eof = true;
  Pipe& from = client_side ? to_upstream_ : to_client_;
  from.pump();  // whatever arrived with the EOF
  from.finish_source();
  const metrics::Side by = client_side ? metrics::Side::Client : metrics::Side::Upstream;
  if (error) {
    (client_side ? client_gone_ : upstream_gone_) = true;
    if (const evutil_socket_t fd = bufferevent_getfd(client_side ? upstream_.get() : client_.get());
        fd >= 0) {
      const linger reset{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    }
    raw_record_end(by, ws::close_code::kAbnormal,
                   client_side ? "client connection failed" : "upstream connection failed", true);
    return;
  }
  // The other side hears the EOF as a half-close if it can (raw_maybe_finish).
  raw_record_end(by, ws::close_code::kNormal, {}, !from.sink_is_plain_socket());
}

void Relay::on_source_failed(Pipe& pipe) {
  raw_side_gone(&pipe == &to_upstream_, true);
}

void Relay::raw_close(std::string_view reason) {
  raw_record_end(metrics::Side::Gateway, ws::close_code::kGoingAway, reason, true);
  raw_maybe_finish();
}

void Relay::raw_maybe_finish() {
  if (finished_) return;
  const bool to_client_flushed = client_gone_ || to_client_.sink_buffered() == 0;
  const bool to_upstream_flushed = upstream_gone_ || to_upstream_.sink_buffered() == 0;
  if (raw_full_close_) {
    if (to_client_flushed && to_upstream_flushed) finish();
    return;
  }
  // Pass an EOF on once everything before it has been written.
  if (client_eof_ && !upstream_shut_ && to_upstream_flushed) {
    upstream_shut_ = true;
    shutdown(bufferevent_getfd(upstream_.get()), SHUT_WR);
  }
  if (upstream_eof_ && !client_shut_ && to_client_flushed) {
    client_shut_ = true;
    shutdown(bufferevent_getfd(client_.get()), SHUT_WR);
  }
  if (client_eof_ && upstream_eof_ && to_client_flushed && to_upstream_flushed) finish();
}

}  // namespace wsgate::proxy
