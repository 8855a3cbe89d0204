// What one proxied connection counts, per direction. Plain counters owned by the
// connection's Relay (one thread, no atomics); folded into totals when it ends.
#pragma once

#include <cstdint>
#include <string>

namespace wsgate::metrics {

struct DirectionStats {
  uint64_t bytes = 0;  // wire bytes forwarded (headers + payloads)
  uint64_t frames = 0;
  uint64_t messages = 0;  // data messages completed (FIN seen)
  uint64_t text_messages = 0;
  uint64_t binary_messages = 0;
  uint64_t pings = 0;
  uint64_t pongs = 0;
};

enum class Side { Client, Upstream, Gateway };
inline const char* to_string(Side s) {
  switch (s) {
    case Side::Client:
      return "client";
    case Side::Upstream:
      return "upstream";
    case Side::Gateway:
      return "gateway";
  }
  return "?";
}

struct ConnectionStats {
  DirectionStats client_to_upstream;
  DirectionStats upstream_to_client;
  uint16_t close_code = 1006;  // the first Close seen or sent; 1006 when none
  Side closed_by = Side::Gateway;
  std::string close_reason;  // why the gateway closed, when it did
};

}  // namespace wsgate::metrics
