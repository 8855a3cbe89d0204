#include "proxy/relay.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

namespace wsgate::proxy {
namespace {

ws::FrameRules rules_for(ws::Direction dir, const RelaySettings& s) {
  ws::FrameRules r;
  r.direction = dir;
  r.rsv1_allowed = s.rsv1_allowed;
  r.max_message_size = s.max_message_size;
  return r;
}

long long to_ms(conf::Duration d) {
  return d.count();
}

}  // namespace

void send_close_notify(bufferevent* bev) {
  SSL* ssl = bufferevent_openssl_get_ssl(bev);  // null for plain sockets
  if (ssl == nullptr || !SSL_is_init_finished(ssl)) return;
  SSL_shutdown(ssl);  // writes the alert straight to the socket; one attempt is enough
  ERR_clear_error();
}

Relay::Relay(event_base* base, BufferEventPtr client, bool client_is_plain, BufferEventPtr upstream,
             bool upstream_is_plain, const RelaySettings& settings, metrics::ConnectionStats& stats,
             std::function<void()> on_finished)
    : base_(base),
      client_(std::move(client)),
      upstream_(std::move(upstream)),
      settings_(settings),
      stats_(stats),
      on_finished_(std::move(on_finished)),
      // RFC 6455 5.1: client frames are masked, server frames are not; frames the
      // gateway itself sends to the upstream must be masked (5.3).
      to_upstream_(client_.get(), upstream_.get(), upstream_is_plain,
                   rules_for(ws::Direction::ClientToServer, settings),
                   /*mask_to_sink=*/true, settings.buffer_size, stats.client_to_upstream, *this),
      to_client_(upstream_.get(), client_.get(), client_is_plain,
                 rules_for(ws::Direction::ServerToClient, settings),
                 /*mask_to_sink=*/false, settings.buffer_size, stats.upstream_to_client, *this),
      idle_timer_(base, [this] { on_idle_check(); }),
      close_timer_(base, [this] { finish(); }) {
  if (settings_.raw) {
    to_upstream_.set_raw(/*source_is_plain_socket=*/client_is_plain);
    to_client_.set_raw(/*source_is_plain_socket=*/upstream_is_plain);
  }
}

Relay::~Relay() = default;

void Relay::start() {
  bufferevent_setcb(client_.get(), &Relay::on_read, &Relay::on_write, &Relay::on_event, this);
  bufferevent_setcb(upstream_.get(), &Relay::on_read, &Relay::on_write, &Relay::on_event, this);
  bufferevent_enable(client_.get(), EV_READ);
  bufferevent_enable(upstream_.get(), EV_READ);
  to_client_.sync_sink_write_state();
  to_upstream_.sync_sink_write_state();
  event_base_gettimeofday_cached(base_, &last_activity_);
  idle_timer_.arm_ms(to_ms(settings_.idle_timeout));
  start_keepalive();
  // Bytes that arrived with the handshake (a server's first message right behind its 101).
  to_client_.pump();
  to_upstream_.pump();
  maybe_finish();
}

std::size_t Relay::buffered_bytes() const {
  return to_client_.sink_buffered() + to_upstream_.sink_buffered();
}

void Relay::on_read(bufferevent* bev, void* self) {
  auto* r = static_cast<Relay*>(self);
  if (r->finished_) return;
  event_base_gettimeofday_cached(r->base_, &r->last_activity_);
  if (bev == r->client_.get()) {
    r->to_upstream_.pump();
  } else {
    r->to_client_.pump();
  }
  r->maybe_finish();
}

void Relay::on_write(bufferevent* bev, void* self) {
  auto* r = static_cast<Relay*>(self);
  if (r->finished_) return;
  if (bev == r->client_.get()) {
    r->to_client_.on_sink_written();
  } else {
    r->to_upstream_.on_sink_written();
  }
  r->maybe_finish();
}

void Relay::on_event(bufferevent* bev, short what, void* self) {
  auto* r = static_cast<Relay*>(self);
  if (r->finished_) return;
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0) {
    r->on_side_gone(bev == r->client_.get(), (what & BEV_EVENT_ERROR) != 0);
  }
  r->maybe_finish();
}

void Relay::on_close_frame(Pipe& pipe, uint16_t code) {
  const bool from_client = &pipe == &to_upstream_;
  record_first_close(from_client ? metrics::Side::Client : metrics::Side::Upstream, code, {});
}

void Relay::on_violation(Pipe& pipe, uint16_t code, std::string_view why) {
  const bool by_client = &pipe == &to_upstream_;
  record_first_close(metrics::Side::Gateway, code, why);
  if (by_client) {
    to_client_.send_close(code, why);  // the offender learns why
    to_upstream_.send_close(ws::close_code::kGoingAway, code == ws::close_code::kPolicyViolation
                                                            ? "client message rate exceeded"
                                                            : "client protocol error");
  } else {
    to_upstream_.send_close(code, why);
    // The backend failed: the client is told so (1011), not blamed.
    to_client_.send_close(ws::close_code::kInternalError, "upstream protocol error");
  }
}

void Relay::on_side_gone(bool client_side, bool error) {
  if (settings_.raw) {
    raw_side_gone(client_side, error);
    return;
  }
  if (client_side) {
    if (client_gone_) return;
    client_gone_ = true;
    record_first_close(metrics::Side::Client, ws::close_code::kAbnormal,
                       "client closed the TCP connection");
    to_upstream_.finish_source();
    to_upstream_.send_close(ws::close_code::kGoingAway, "client went away");
  } else {
    if (upstream_gone_) return;
    upstream_gone_ = true;
    record_first_close(metrics::Side::Upstream, ws::close_code::kAbnormal,
                       "upstream closed the TCP connection");
    to_client_.finish_source();
    to_client_.send_close(ws::close_code::kInternalError, "upstream connection lost");
  }
}

void Relay::close(uint16_t code, std::string_view reason) {
  if (finished_) return;
  if (settings_.raw) {
    raw_close(reason);
    return;
  }
  record_first_close(metrics::Side::Gateway, code, reason);
  to_client_.send_close(code, reason);
  to_upstream_.send_close(code, reason);
  maybe_finish();
}

void Relay::start_keepalive() {
  if (settings_.max_message_rate > 0) {
    message_rate_ = std::make_unique<MessageRateLimiter>(settings_.max_message_rate,
                                                         settings_.max_message_burst);
    // The bucket refills from the time on_read() caches for each read: no clock reads.
    to_upstream_.set_message_limiter(message_rate_.get(), &last_activity_);
  }
  if (settings_.ping_interval.count() == 0) return;
  if (settings_.ping_client) {
    client_pings_ = std::make_unique<Keepalive>(
        base_, to_client_, to_upstream_, settings_.ping_interval, settings_.ping_timeout,
        stats_.client_pings, [this] { on_ping_timeout(true); });
    client_pings_->start();
  }
  if (settings_.ping_upstream) {
    upstream_pings_ = std::make_unique<Keepalive>(
        base_, to_upstream_, to_client_, settings_.ping_interval, settings_.ping_timeout,
        stats_.upstream_pings, [this] { on_ping_timeout(false); });
    upstream_pings_->start();
  }
  to_client_.set_keepalive(client_pings_.get(), upstream_pings_.get());
  to_upstream_.set_keepalive(upstream_pings_.get(), client_pings_.get());
}

void Relay::on_ping_timeout(bool client_side) {
  if (finished_) return;
  // A peer that does not answer is taken for dead: no close handshake with it (RFC 6455
  // 7.1.5 "closed abnormally", 1006, never sent on the wire); its TCP connection is shut
  // down and the other side is told the connection is going away (1001, 7.4.1).
  bufferevent* dead = client_side ? client_.get() : upstream_.get();
  Pipe& from_dead = client_side ? to_upstream_ : to_client_;  // its sink is the live side
  Pipe& to_dead = client_side ? to_client_ : to_upstream_;
  if (client_side) {
    client_gone_ = true;
  } else {
    upstream_gone_ = true;
  }
  const std::string_view why = client_side ? "client ping timeout" : "upstream ping timeout";
  record_first_close(client_side ? metrics::Side::Client : metrics::Side::Upstream,
                     ws::close_code::kAbnormal, why);
  from_dead.finish_source();
  to_dead.drop_sink();  // the live side's frames, its Close included, stop here
  bufferevent_disable(dead, EV_READ | EV_WRITE);
  if (const evutil_socket_t fd = bufferevent_getfd(dead); fd >= 0) shutdown(fd, SHUT_RDWR);
  from_dead.send_close(ws::close_code::kGoingAway, why);
  maybe_finish();
}

void Relay::on_idle_check() {
  timeval now{};
  event_base_gettimeofday_cached(base_, &now);
  const long long idle_ms =
      (now.tv_sec - last_activity_.tv_sec) * 1000LL + (now.tv_usec - last_activity_.tv_usec) / 1000;
  const long long limit = to_ms(settings_.idle_timeout);
  if (idle_ms + 1 >= limit) {
    close(ws::close_code::kGoingAway, "idle timeout");
    return;
  }
  idle_timer_.arm_ms(limit - idle_ms);
}

void Relay::record_first_close(metrics::Side by, uint16_t code, std::string_view reason) {
  if (!closing_) {
    closing_ = true;
    // Closing: no more keepalive Pings (Pongs to one already sent are still consumed).
    if (client_pings_) client_pings_->stop();
    if (upstream_pings_) upstream_pings_->stop();
    stats_.closed_by = by;
    stats_.close_code = code;
    stats_.close_reason.assign(reason);
    close_timer_.arm_ms(to_ms(settings_.close_timeout));
  }
}

void Relay::maybe_finish() {
  if (settings_.raw) {
    raw_maybe_finish();
    return;
  }
  if (finished_ || !closing_) return;
  // Each side is done when it has nothing more to say (its Close arrived, it broke the
  // rules, or its TCP connection ended) and has been told everything (a Close is in its
  // output and the output is flushed), or it is gone.
  const bool client_done =
      client_gone_ || (to_upstream_.source_done() && to_client_.sink_got_close() &&
                       to_client_.sink_buffered() == 0);
  const bool upstream_done =
      upstream_gone_ || (to_client_.source_done() && to_upstream_.sink_got_close() &&
                         to_upstream_.sink_buffered() == 0);
  if (client_done && upstream_done) finish();
}

void Relay::finish() {
  if (finished_) return;
  finished_ = true;
  idle_timer_.cancel();
  close_timer_.cancel();
  bufferevent_disable(client_.get(), EV_READ | EV_WRITE);
  bufferevent_disable(upstream_.get(), EV_READ | EV_WRITE);
  bufferevent_setcb(client_.get(), nullptr, nullptr, nullptr, nullptr);
  bufferevent_setcb(upstream_.get(), nullptr, nullptr, nullptr, nullptr);
  // A TLS peer that is still there is told the stream ends (RFC 8446 6.1 close_notify);
  // without it OpenSSL also drops the session from the resumption cache.
  if (!client_gone_) send_close_notify(client_.get());
  if (!upstream_gone_) send_close_notify(upstream_.get());
  on_finished_();
}

}  // namespace wsgate::proxy
