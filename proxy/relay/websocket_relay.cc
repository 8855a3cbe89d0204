#include "proxy/relay/websocket_relay.h"

#include <algorithm>
#include <cstdint>

namespace wsgate::proxy {
namespace {

ws::FrameRules rules_for(ws::Direction dir, const RelaySettings& s) {
  ws::FrameRules r;
  r.direction = dir;
  r.rsv1_allowed = s.rsv1_allowed;
  r.max_message_size = s.max_message_size;
  return r;
}

// The client's Pings and Pongs under max_message_rate: a bucket of their own, with
// kControlFactor times the data rate and burst, and at least kControlFloor of each.
//  - Counted at all, because each one is forwarded to the upstream (a Ping also makes
//    the upstream answer, RFC 6455 5.5.2): uncounted, a Ping flood passes any limit.
//  - Their own bucket, because legitimate control traffic is unrelated to the data
//    rate: a client's keepalive Ping must not be the "message over the rate" of a
//    client that uses its data budget, and Pings must not spend that budget.
//  - Generous, because legitimate control traffic is small and slow (a keepalive Ping
//    every few seconds; Pongs paced by the upstream's own Pings) while a flood is
//    thousands a second: 10x, and 10/s even for a route allowing 1 message/s.
//  - Closed with 1008 like a data message over the rate, not answered or dropped: the
//    client's Ping asks the upstream (the gateway answering would hide a dead upstream),
//    dropping it leaves a Ping without its Pong, and either way the client stays
//    connected while flooding. The route asked for a rate; over it is a policy violation.
constexpr uint64_t kControlFactor = 10;
constexpr uint64_t kControlFloor = 10;

uint32_t control_allowance(uint32_t data_allowance) {
  const uint64_t n = std::max<uint64_t>(kControlFactor * data_allowance, kControlFloor);
  return static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
}

}  // namespace

WebSocketRelay::WebSocketRelay(RelayCore& core)
    : core_(core),
      // RFC 6455 5.1: client frames are masked, server frames are not; frames the
      // gateway itself sends to the upstream must be masked (5.3).
      to_upstream_(core.to_upstream, rules_for(ws::Direction::ClientToServer, *core.settings),
                   /*mask_to_sink=*/true, core.stats.client_to_upstream, *this),
      to_client_(core.to_client, rules_for(ws::Direction::ServerToClient, *core.settings),
                 /*mask_to_sink=*/false, core.stats.upstream_to_client, *this) {}

void WebSocketRelay::start() {
  start_keepalive();
  // Bytes that arrived with the handshake (a server's first message right behind its 101).
  to_client_.pump();
  to_upstream_.pump();
}

void WebSocketRelay::pump(Pipe& pipe) {
  (core_.from_client(pipe) ? to_upstream_ : to_client_).pump();
}

uint64_t WebSocketRelay::opaque_ahead(const Pipe& pipe) const {
  return observer_of(pipe).opaque_ahead();
}

void WebSocketRelay::passed_opaque(Pipe& pipe, uint64_t n, bool delivered) {
  (core_.from_client(pipe) ? to_upstream_ : to_client_).passed_opaque(n, delivered);
}

void WebSocketRelay::on_close_frame(FrameObserver& dir, uint16_t code) {
  const bool from_client = &dir == &to_upstream_;
  record_first_close(from_client ? metrics::Side::Client : metrics::Side::Upstream, code, {});
}

void WebSocketRelay::on_violation(FrameObserver& dir, uint16_t code, std::string_view why) {
  const bool by_client = &dir == &to_upstream_;
  record_first_close(metrics::Side::Gateway, code, why);
  if (by_client) {
    to_client_.send_close(code, why);  // the offender learns why
    to_upstream_.send_close(ws::close_code::kGoingAway, code == ws::close_code::kPolicyViolation
                                                            ? "client message rate exceeded"
                                                            : "client protocol error");
  } else {
    to_upstream_.send_close(code, why);
    // The upstream failed: the client is told so (1011), not blamed.
    to_client_.send_close(ws::close_code::kInternalError, "upstream protocol error");
  }
}

void WebSocketRelay::on_side_ended(bool client_side, bool error) {
  // Frames that side sent before its EOF and that are still in its input (an endpoint
  // that kept bytes while the relay was not reading, like an HTTP/2 stream) go first.
  if (!error && !(client_side ? client_gone_ : upstream_gone_))
    (client_side ? to_upstream_ : to_client_).pump();
  // RFC 6455 7.1.5: a TCP end without a Close is "closed abnormally" (1006); the other
  // side is told with a Close of its own (7.4.1).
  if (client_side) {
    if (client_gone_) return;
    client_gone_ = true;
    record_first_close(metrics::Side::Client, ws::close_code::kAbnormal,
                       "client closed the TCP connection");
    to_upstream_.finish_source();
    end_if_cut(to_upstream_);
    to_upstream_.send_close(ws::close_code::kGoingAway, "client went away");
  } else {
    if (upstream_gone_) return;
    upstream_gone_ = true;
    record_first_close(metrics::Side::Upstream, ws::close_code::kAbnormal,
                       "upstream closed the TCP connection");
    to_client_.finish_source();
    end_if_cut(to_client_);
    to_client_.send_close(ws::close_code::kInternalError, "upstream connection lost");
  }
}

void WebSocketRelay::close(uint16_t code, std::string_view reason) {
  record_first_close(metrics::Side::Gateway, code, reason);
  to_client_.send_close(code, reason);
  to_upstream_.send_close(code, reason);
}

void WebSocketRelay::on_idle_timeout() {
  close(ws::close_code::kGoingAway, "idle timeout");
}

void WebSocketRelay::start_keepalive() {
  const RelaySettings& s = *core_.settings;  // start() only
  if (s.max_message_rate > 0) {
    message_rate_ = std::make_unique<MessageRateLimiter>(s.max_message_rate, s.max_message_burst);
    control_rate_ = std::make_unique<MessageRateLimiter>(
        control_allowance(s.max_message_rate),
        control_allowance(s.max_message_burst == 0 ? s.max_message_rate : s.max_message_burst));
    // The buckets refill from the time the Relay caches for each read: no clock reads.
    to_upstream_.set_message_limiter(message_rate_.get(), control_rate_.get(),
                                     &core_.last_activity);
  }
  if (s.ping_interval.count() == 0) return;
  if (s.ping_client) {
    client_pings_ = std::make_unique<Keepalive>(
        core_.base, to_client_, core_.to_upstream, s.ping_interval, s.ping_timeout,
        core_.stats.client_pings, [this] { on_ping_timeout(true); });
    client_pings_->start();
  }
  if (s.ping_upstream) {
    upstream_pings_ = std::make_unique<Keepalive>(
        core_.base, to_upstream_, core_.to_client, s.ping_interval, s.ping_timeout,
        core_.stats.upstream_pings, [this] { on_ping_timeout(false); });
    upstream_pings_->start();
  }
  to_client_.set_keepalive(client_pings_.get(), upstream_pings_.get());
  to_upstream_.set_keepalive(upstream_pings_.get(), client_pings_.get());
}

void WebSocketRelay::on_ping_timeout(bool client_side) {
  if (core_.finished) return;
  // A peer that does not answer is taken for dead: no close handshake with it (RFC 6455
  // 7.1.5 "closed abnormally", 1006, never sent on the wire); its connection is shut
  // down and the other side is told the connection is going away (1001, 7.4.1).
  Endpoint& dead = client_side ? *core_.client : *core_.upstream;
  FrameObserver& from_dead = client_side ? to_upstream_ : to_client_;  // sink: the live side
  FrameObserver& to_dead = client_side ? to_client_ : to_upstream_;
  (client_side ? client_gone_ : upstream_gone_) = true;
  const std::string_view why = client_side ? "client ping timeout" : "upstream ping timeout";
  record_first_close(client_side ? metrics::Side::Client : metrics::Side::Upstream,
                     ws::close_code::kAbnormal, why);
  from_dead.finish_source();
  to_dead.drop_sink();  // the live side's frames, its Close included, stop here
  dead.abandon();
  end_if_cut(from_dead);
  from_dead.send_close(ws::close_code::kGoingAway, why);
  maybe_finish();
}

void WebSocketRelay::end_if_cut(FrameObserver& from_gone) {
  if (!from_gone.sink_cut()) return;
  // RFC 6455 5.4: a Close may not go inside a frame, and the frame toward this side can
  // never end, so no Close can reach it: its TCP connection (or stream) ends instead,
  // once what it was sent is flushed. For that side the connection is closed abnormally
  // (1006, 7.1.5), and with no close handshake its further frames have nowhere to go.
  const bool to_client = &from_gone == &to_client_;
  (to_client ? client_cut_ : upstream_cut_) = true;
  (to_client ? to_upstream_ : to_client_).finish_source();
}

void WebSocketRelay::record_first_close(metrics::Side by, uint16_t code, std::string_view reason) {
  if (closing_) return;
  closing_ = true;
  // Closing: no more keepalive Pings (Pongs to one already sent are still consumed).
  if (client_pings_) client_pings_->stop();
  if (upstream_pings_) upstream_pings_->stop();
  core_.stats.closed_by = by;
  core_.stats.close_code = code;
  core_.stats.close_reason.assign(reason);
  close_timer_ = std::make_unique<Timer>(core_.base, [this] { finish(); });
  close_timer_->arm_ms(core_.close_timeout.count());
}

void WebSocketRelay::maybe_finish() {
  if (core_.finished || !closing_) return;
  // Each side is done when it has nothing more to say (its Close arrived, it broke the
  // rules, or its TCP connection ended) and has been told everything (a Close is in its
  // output and the output is flushed), or it is gone.
  // A side whose frame was cut is done once its output is flushed (end_if_cut).
  const bool client_done = client_gone_ || (client_cut_ && core_.to_client.sink_buffered() == 0) ||
                           (to_upstream_.source_done() && to_client_.sink_got_close() &&
                            core_.to_client.sink_buffered() == 0);
  const bool upstream_done = upstream_gone_ ||
                             (upstream_cut_ && core_.to_upstream.sink_buffered() == 0) ||
                             (to_client_.source_done() && to_upstream_.sink_got_close() &&
                              core_.to_upstream.sink_buffered() == 0);
  if (client_done && upstream_done) finish();
}

void WebSocketRelay::finish() {
  if (core_.finished) return;
  if (close_timer_) close_timer_->cancel();
  // A side whose frame was cut, or is cut now because the relay gives up (close_timeout)
  // in the middle of one, is not finished cleanly: no TLS close_notify (RFC 8446 6.1),
  // which would tell it the stream ended as meant, but an abandoned transport (TCP
  // shutdown, an HTTP/2 stream reset). What it was sent has left the gateway's buffers,
  // unless the relay gave up waiting for that too.
  const bool client_cut = !client_gone_ && (client_cut_ || to_client_.sink_in_frame());
  const bool upstream_cut = !upstream_gone_ && (upstream_cut_ || to_upstream_.sink_in_frame());
  if (client_cut) core_.client->abandon();
  if (upstream_cut) core_.upstream->abandon();
  core_.finish(!client_gone_ && !client_cut, !upstream_gone_ && !upstream_cut);
}

}  // namespace wsgate::proxy
