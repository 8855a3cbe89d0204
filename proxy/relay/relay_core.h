// What the two kinds of relay share (internal to proxy/relay/): the two Endpoints, the
// two Pipes between them, and the end of the relay; and the RelayPolicy interface that
// a WebSocketRelay and a TunnelRelay implement. The public face is proxy/relay/relay.h.
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "metrics/connection_stats.h"
#include "proxy/relay/endpoint.h"
#include "proxy/relay/pipe.h"
#include "proxy/relay/relay_settings.h"

namespace wsgate::proxy {

struct RelayCore {
  RelayCore(event_base* base, std::unique_ptr<Endpoint> client_side,
            std::unique_ptr<Endpoint> upstream_side, const RelaySettings& relay_settings,
            metrics::ConnectionStats& connection_stats, std::function<void()> finished_cb);

  // Ends the relay: no more callbacks from either Endpoint; a side that is still there
  // ends cleanly (Endpoint::finish, e.g. a TLS close_notify); then on_finished, once.
  void finish(bool client_alive, bool upstream_alive);
  bool from_client(const Pipe& p) const { return &p == &to_upstream; }

  event_base* base;
  std::unique_ptr<Endpoint> client;
  std::unique_ptr<Endpoint> upstream;
  // The settings until start() has applied them (watermarks, idle timeout, keepalive,
  // rate limits); then only close_timeout is kept (64 B less per relay; issue 13).
  std::unique_ptr<const RelaySettings> settings;
  conf::Duration close_timeout;
  metrics::ConnectionStats& stats;
  metrics::SplicedBytes* spliced;  // the worker's wsgate_spliced_bytes_total; may be null
  std::function<void()> on_finished;
  Pipe to_upstream;         // client -> upstream
  Pipe to_client;           // upstream -> client
  timeval last_activity{};  // when bytes last arrived (the loop's cached clock)
  bool finished = false;
};

// The rules of one kind of relay. The Relay calls these from its Endpoint callbacks,
// then maybe_finish(); a policy ends the relay with RelayCore::finish().
class RelayPolicy {
 public:
  virtual ~RelayPolicy() = default;
  // Both Endpoints are attached and read: move what they already hold.
  virtual void start() = 0;
  // `pipe`'s source has bytes (new ones, or ones kept while reading was paused).
  virtual void pump(Pipe& pipe) = 0;
  // A side's transport ended: its EOF, or (error) a failure or reset.
  virtual void on_side_ended(bool client_side, bool error) = 0;
  // The gateway ends the connection (drain, admin close): `code` is for WebSockets.
  virtual void close(uint16_t code, std::string_view reason) = 0;
  virtual void on_idle_timeout() = 0;
  virtual bool closing() const = 0;
  virtual void maybe_finish() = 0;
  // How many of the next bytes from `pipe`'s source may reach its sink without being
  // looked at (the rest of a WebSocket frame's payload), when everything before them has
  // moved; 0: none. The Relay splices a large run of them (Pipe::start_splice).
  virtual uint64_t opaque_ahead(const Pipe& /*pipe*/) const { return 0; }
  // `n` of them left the source: `delivered` to the sink, or lost in a splice that
  // failed (the frame is cut then).
  virtual void passed_opaque(Pipe& /*pipe*/, uint64_t /*n*/, bool /*delivered*/) {}
};

}  // namespace wsgate::proxy
