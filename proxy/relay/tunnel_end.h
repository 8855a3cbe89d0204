// How a CONNECT tunnel ended, for the access log (`tunnel_end=`) and the metrics.
#pragma once

#include <cstdint>

namespace wsgate::proxy {

enum class TunnelEnd : uint8_t {
  BothClosed,      // each side sent its EOF (passed on as a half-close where it could be)
  ClientClosed,    // the client's EOF ended it (the upstream could not be half-closed, or
                   // did not end within close_timeout)
  UpstreamClosed,  // the same, from the upstream
  ClientReset,     // the client's connection failed or was reset (RST, RST_STREAM)
  UpstreamReset,   // the upstream's connection failed or was reset
  IdleTimeout,     // nothing moved for idle_timeout
  GatewayClosed,   // the gateway ended it (drain, admin close)
};

constexpr const char* to_string(TunnelEnd e) {
  switch (e) {
    case TunnelEnd::BothClosed:
      return "both_closed";
    case TunnelEnd::ClientClosed:
      return "client_closed";
    case TunnelEnd::UpstreamClosed:
      return "upstream_closed";
    case TunnelEnd::ClientReset:
      return "client_reset";
    case TunnelEnd::UpstreamReset:
      return "upstream_reset";
    case TunnelEnd::IdleTimeout:
      return "idle_timeout";
    case TunnelEnd::GatewayClosed:
      return "gateway_closed";
  }
  return "?";
}

}  // namespace wsgate::proxy
