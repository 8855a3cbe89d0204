#include "proxy/relay/relay.h"

#include "proxy/relay/tunnel_relay.h"
#include "proxy/relay/websocket_relay.h"

namespace wsgate::proxy {

RelayCore::RelayCore(event_base* event_base, std::unique_ptr<Endpoint> client_side,
                     std::unique_ptr<Endpoint> upstream_side, const RelaySettings& relay_settings,
                     metrics::ConnectionStats& connection_stats, std::function<void()> finished_cb)
    : base(event_base),
      client(std::move(client_side)),
      upstream(std::move(upstream_side)),
      settings(std::make_unique<const RelaySettings>(relay_settings)),
      close_timeout(relay_settings.close_timeout),
      stats(connection_stats),
      on_finished(std::move(finished_cb)),
      to_upstream(*client, *upstream, relay_settings.buffer_size),
      to_client(*upstream, *client, relay_settings.buffer_size) {}

void RelayCore::finish(bool client_alive, bool upstream_alive) {
  if (finished) return;
  finished = true;
  client->detach();
  upstream->detach();
  // A TLS peer that is still there is told the stream ends (RFC 8446 6.1 close_notify);
  // without it OpenSSL also drops the session from the resumption cache.
  if (client_alive) client->finish();
  if (upstream_alive) upstream->finish();
  on_finished();
}

Relay::Relay(event_base* base, std::unique_ptr<Endpoint> client, std::unique_ptr<Endpoint> upstream,
             const RelaySettings& settings, metrics::ConnectionStats& stats,
             std::function<void()> on_finished)
    : core_(base, std::move(client), std::move(upstream), settings, stats, std::move(on_finished)),
      own_idle_(settings.idle_timeouts == nullptr ? std::make_unique<IdleTimeouts>(base) : nullptr),
      idle_(settings.idle_timeouts != nullptr ? settings.idle_timeouts : own_idle_.get()) {
  if (settings.tunnel) {
    auto tunnel = std::make_unique<TunnelRelay>(core_);
    tunnel_ = tunnel.get();
    policy_ = std::move(tunnel);
  } else {
    policy_ = std::make_unique<WebSocketRelay>(core_);
  }
}

Relay::~Relay() {
  // Before own_idle_ goes. (A relay freed after the worker's list was unlinked by it.)
  if (listed()) idle_->remove(*this);
}

void Relay::start() {
  // An output's on_drained comes at half the high watermark (STYLE.md 5: low ~ high/2).
  const std::size_t low = core_.settings->buffer_size / 2;
  core_.client->attach(*this, low);
  core_.upstream->attach(*this, low);
  core_.to_upstream.start_reading();
  core_.to_client.start_reading();
  event_base_gettimeofday_cached(core_.base, &core_.last_activity);
  idle_->add(*this, core_.settings->idle_timeout.count());
  policy_->start();
  policy_->maybe_finish();
  core_.settings.reset();  // applied
  // A new WebSocket is usually idle: its buffers are made when its first bytes come.
  if (!core_.finished) release_idle_buffers();
}

void Relay::release_idle_buffers() {
  core_.client->release_idle_buffers();
  core_.upstream->release_idle_buffers();
}

std::size_t Relay::buffered_bytes() const {
  return core_.to_client.sink_buffered() + core_.to_upstream.sink_buffered();
}

std::optional<TunnelEnd> Relay::tunnel_end() const {
  return tunnel_ != nullptr ? tunnel_->end() : std::nullopt;
}

void Relay::close(uint16_t code, std::string_view reason) {
  if (core_.finished) return;
  policy_->close(code, reason);
  policy_->maybe_finish();
}

void Relay::on_readable(Endpoint& from) {
  if (core_.finished) return;
  event_base_gettimeofday_cached(core_.base, &core_.last_activity);
  idle_->touch(*this, IdleTimeouts::to_ms(core_.last_activity));
  policy_->pump(&from == core_.client.get() ? core_.to_upstream : core_.to_client);
  policy_->maybe_finish();
}

void Relay::on_drained(Endpoint& to) {
  if (core_.finished) return;
  Pipe& pipe = &to == core_.client.get() ? core_.to_client : core_.to_upstream;
  if (pipe.on_sink_drained()) policy_->pump(pipe);  // bytes kept while paused
  policy_->maybe_finish();
}

void Relay::on_eof(Endpoint& from) {
  if (core_.finished) return;
  policy_->on_side_ended(&from == core_.client.get(), /*error=*/false);
  policy_->maybe_finish();
}

void Relay::on_error(Endpoint& from) {
  if (core_.finished) return;
  policy_->on_side_ended(&from == core_.client.get(), /*error=*/true);
  policy_->maybe_finish();
}

void Relay::on_idle_timeout() {
  if (core_.finished) return;
  policy_->on_idle_timeout();
  policy_->maybe_finish();
}

}  // namespace wsgate::proxy
