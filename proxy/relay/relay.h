// The relay of one connection after its opening handshake (a WebSocket's 101, a CONNECT
// tunnel's 200): two Pipes, one per direction, between the client's and the upstream's
// Endpoints, the idle timeout, and the rules of its kind: a WebSocketRelay (frames,
// close handshake, keepalive pings, message rate) or a TunnelRelay (bytes, half-close,
// reset propagation).
//
// Ownership: the Relay owns both Endpoints (and so both transports) and frees them when
// it is destroyed. When the relay is over it calls `on_finished` exactly once; the owner
// must then destroy the Relay later (deferred deletion), never from inside that call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "metrics/connection_stats.h"
#include "proxy/idle_timeouts.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay/bufferevent_endpoint.h"
#include "proxy/relay/endpoint.h"
#include "proxy/relay/relay_core.h"
#include "proxy/relay/relay_settings.h"

namespace wsgate::proxy {

class TunnelRelay;
using metrics::TunnelEnd;

class Relay final : private EndpointEvents, private IdleTimeouts::Entry {
 public:
  Relay(event_base* base, std::unique_ptr<Endpoint> client, std::unique_ptr<Endpoint> upstream,
        const RelaySettings& settings, metrics::ConnectionStats& stats,
        std::function<void()> on_finished);
  // The convenience path for two bufferevents (make_endpoint); `*_is_plain`: that side
  // is a plain socket bufferevent (not TLS).
  Relay(event_base* base, BufferEventPtr client, bool client_is_plain, BufferEventPtr upstream,
        bool upstream_is_plain, const RelaySettings& settings, metrics::ConnectionStats& stats,
        std::function<void()> on_finished)
      : Relay(base, make_endpoint(std::move(client), client_is_plain),
              make_endpoint(std::move(upstream), upstream_is_plain), settings, stats,
              std::move(on_finished)) {}
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Attaches both Endpoints and forwards whatever both sides already sent.
  void start();

  // The gateway ends the connection (drain, admin close): a WebSocket gets Close `code`
  // on both sides at their next frame boundary, then up to close_timeout for the
  // replies; a tunnel stops reading and closes once what is buffered is flushed.
  void close(uint16_t code, std::string_view reason);

  bool finished() const { return core_.finished; }
  // The connection is ending (a Close was sent or received; a tunnel side ended).
  bool closing() const { return core_.finished || policy_->closing(); }
  // Bytes waiting in the two output buffers (for the connection table).
  std::size_t buffered_bytes() const;
  // When bytes last arrived from either side (the loop's cached wall clock).
  timeval last_activity() const { return core_.last_activity; }
  // A tunnel: how it ended (or is ending); empty for WebSockets and open tunnels.
  std::optional<TunnelEnd> tunnel_end() const;

 private:
  void on_readable(Endpoint& from) override;
  void on_drained(Endpoint& to) override;
  void on_eof(Endpoint& from) override;
  void on_error(Endpoint& from) override;
  // IdleTimeouts::Entry: nothing arrived from either side for idle_timeout; nothing
  // for a few seconds (no buffers while idle).
  void on_idle_timeout() override;
  void on_quiet() override { release_idle_buffers(); }
  void release_idle_buffers();  // Endpoint::release_idle_buffers on both sides
  void note_activity();         // bytes arrived: last_activity, the idle timeout

  // After `pipe` moved what it could: when its source's next bytes are a long run the
  // policy need not look at (RelayPolicy::opaque_ahead), a SplicePump moves them.
  void maybe_splice(Pipe& pipe);
  void on_spliced(Pipe& pipe, std::size_t n);
  void on_splice_done(Pipe& pipe);
  void on_splice_failed(Pipe& pipe, bool source, int error);

  RelayCore core_;
  TunnelRelay* tunnel_ = nullptr;  // the policy, when it is a tunnel
  std::unique_ptr<RelayPolicy> policy_;
  std::unique_ptr<IdleTimeouts> own_idle_;  // only without settings.idle_timeouts
  IdleTimeouts* idle_;                      // the worker's, or own_idle_
};

}  // namespace wsgate::proxy
