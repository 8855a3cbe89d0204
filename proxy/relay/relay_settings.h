// What one relay is configured with (from the route, or the [connect] table for
// tunnels). Plain values, copied into the Relay.
#pragma once

#include <cstddef>
#include <cstdint>

#include "conf/config.h"
#include "metrics/connection_stats.h"

namespace wsgate::proxy {

class IdleTimeouts;

struct RelaySettings {
  // A CONNECT tunnel (proxy/relay/tunnel_relay.h): bytes, no frames. Otherwise a
  // WebSocket relay (proxy/relay/websocket_relay.h).
  bool tunnel = false;
  bool rsv1_allowed = false;             // permessage-deflate was negotiated (RFC 7692 6)
  uint64_t max_message_size = 0;         // 0: no limit
  std::size_t buffer_size = 256 * 1024;  // per-direction high watermark
  conf::Duration idle_timeout = std::chrono::minutes(5);
  // After the first Close (a tunnel: after it starts to end), how long both sides get to
  // finish: the close handshake, or flushing what is buffered.
  conf::Duration close_timeout = std::chrono::seconds(5);
  // The gateway's keepalive pings (route ping_interval; 0: off) and to whom.
  conf::Duration ping_interval = std::chrono::seconds(0);
  conf::Duration ping_timeout = std::chrono::seconds(10);
  bool ping_client = true;
  bool ping_upstream = true;
  // Data messages per second from the client (0: no limit), and the burst (0: = rate).
  uint32_t max_message_rate = 0;
  uint32_t max_message_burst = 0;
  // The worker's shared idle timer (proxy/idle_timeouts.h); null: the relay makes its own.
  IdleTimeouts* idle_timeouts = nullptr;
  // The worker's count of bytes moved by splice(2); null: not counted.
  metrics::SplicedBytes* spliced = nullptr;
};

}  // namespace wsgate::proxy
