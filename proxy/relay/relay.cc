#include "proxy/relay/relay.h"

#include "proxy/relay/tunnel_relay.h"
#include "proxy/relay/websocket_relay.h"

namespace wsgate::proxy {
namespace {

// Below this much, reading and writing cost less than setting up a pipe (a pipe2, a
// fcntl, an epoll_ctl and two closes): a 64 KiB run is four 16 KiB reads and writes.
constexpr uint64_t kMinSplice = 64 * 1024;

}  // namespace

RelayCore::RelayCore(event_base* event_base, std::unique_ptr<Endpoint> client_side,
                     std::unique_ptr<Endpoint> upstream_side, const RelaySettings& relay_settings,
                     metrics::ConnectionStats& connection_stats, std::function<void()> finished_cb)
    : base(event_base),
      client(std::move(client_side)),
      upstream(std::move(upstream_side)),
      settings(std::make_unique<const RelaySettings>(relay_settings)),
      close_timeout(relay_settings.close_timeout),
      stats(connection_stats),
      spliced(relay_settings.spliced),
      on_finished(std::move(finished_cb)),
      to_upstream(*client, *upstream, relay_settings.buffer_size),
      to_client(*upstream, *client, relay_settings.buffer_size) {}

void RelayCore::finish(bool client_alive, bool upstream_alive) {
  if (finished) return;
  finished = true;
  client->detach();
  upstream->detach();
  // A splice in progress stops here (what its pipe holds is dropped with the relay).
  to_upstream.end_splice(true);
  to_client.end_splice(true);
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
  maybe_splice(core_.to_client);
  maybe_splice(core_.to_upstream);
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

void Relay::note_activity() {
  event_base_gettimeofday_cached(core_.base, &core_.last_activity);
  idle_->touch(*this, IdleTimeouts::to_ms(core_.last_activity));
}

void Relay::on_readable(Endpoint& from) {
  if (core_.finished) return;
  note_activity();
  Pipe& pipe = &from == core_.client.get() ? core_.to_upstream : core_.to_client;
  policy_->pump(pipe);
  maybe_splice(pipe);
  policy_->maybe_finish();
}

void Relay::on_drained(Endpoint& to) {
  if (core_.finished) return;
  Pipe& pipe = &to == core_.client.get() ? core_.to_client : core_.to_upstream;
  if (pipe.on_sink_drained()) policy_->pump(pipe);  // bytes kept while paused
  maybe_splice(pipe);  // the output may just have emptied: the condition for a splice
  policy_->maybe_finish();
}

void Relay::maybe_splice(Pipe& pipe) {
  if (core_.finished || pipe.splicing()) return;
  const uint64_t n = policy_->opaque_ahead(pipe);
  if (n < kMinSplice) return;
  SplicePump::Events events;  // each captures two pointers: no allocation
  events.moved = [this, &pipe](std::size_t k) { on_spliced(pipe, k); };
  events.done = [this, &pipe] { on_splice_done(pipe); };
  events.failed = [this, &pipe](bool source, int error) { on_splice_failed(pipe, source, error); };
  pipe.start_splice(core_.base, n, std::move(events));
}

void Relay::on_spliced(Pipe& pipe, std::size_t n) {
  pipe.spliced(n);
  policy_->passed_opaque(pipe, n, /*delivered=*/true);
  if (core_.spliced != nullptr)
    (core_.from_client(pipe) ? core_.spliced->client_to_upstream
                             : core_.spliced->upstream_to_client) += n;
  note_activity();
}

void Relay::on_splice_done(Pipe& pipe) {
  pipe.end_splice(false);
  // The run ended where the policy said: the frame's end (a Close or Ping that waited
  // for it goes now), then whatever follows, read as usual.
  policy_->pump(pipe);
  policy_->maybe_finish();
}

void Relay::on_splice_failed(Pipe& pipe, bool source, int error) {
  const std::size_t lost = pipe.end_splice(true);
  if (lost > 0) policy_->passed_opaque(pipe, lost, /*delivered=*/false);
  // As if that side's endpoint had reported it: the source's EOF (error 0) or a failure.
  Endpoint& side = source ? pipe.source() : pipe.sink();
  policy_->on_side_ended(&side == core_.client.get(), error != 0 || !source);
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
