// What one proxied connection counts, per direction. Plain counters owned by the
// connection's Relay (one thread, no atomics). The worker reads them at scrape time for
// live connections and folds them into its totals when the connection ends
// (metrics/worker_metrics.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

// Build switch for measuring what counting costs the relay (CMake option
// WSGATE_RELAY_COUNTERS): 0 turns the count_* functions below into no-ops.
#ifndef WSGATE_RELAY_COUNTERS
#define WSGATE_RELAY_COUNTERS 1
#endif

namespace wsgate::metrics {

inline constexpr bool kRelayCounters = WSGATE_RELAY_COUNTERS != 0;

// The opcodes RFC 6455 5.2 defines, as dense indexes for the per-opcode counters.
// Reserved opcodes never get this far: the frame validator rejects them.
enum class OpcodeSlot : uint8_t { Continuation, Text, Binary, Close, Ping, Pong };
inline constexpr std::size_t kOpcodeSlots = 6;

constexpr OpcodeSlot opcode_slot(uint8_t opcode) {
  switch (opcode) {
    case 0x1:
      return OpcodeSlot::Text;
    case 0x2:
      return OpcodeSlot::Binary;
    case 0x8:
      return OpcodeSlot::Close;
    case 0x9:
      return OpcodeSlot::Ping;
    case 0xA:
      return OpcodeSlot::Pong;
    default:
      return OpcodeSlot::Continuation;
  }
}

constexpr const char* to_string(OpcodeSlot s) {
  switch (s) {
    case OpcodeSlot::Continuation:
      return "continuation";
    case OpcodeSlot::Text:
      return "text";
    case OpcodeSlot::Binary:
      return "binary";
    case OpcodeSlot::Close:
      return "close";
    case OpcodeSlot::Ping:
      return "ping";
    case OpcodeSlot::Pong:
      return "pong";
  }
  return "?";
}

struct DirectionStats {
  uint64_t bytes = 0;  // wire bytes forwarded (headers + payloads)
  uint64_t frames = 0;
  uint64_t messages = 0;  // data messages completed (FIN seen)
  uint64_t text_messages = 0;
  uint64_t binary_messages = 0;
  uint64_t pings = 0;
  uint64_t pongs = 0;
  // The same frames and wire bytes, split by the frame's own opcode (a continuation
  // frame counts as "continuation"; its message type is in text/binary_messages).
  std::array<uint64_t, kOpcodeSlots> frames_by_opcode{};
  std::array<uint64_t, kOpcodeSlots> bytes_by_opcode{};

  // A frame was forwarded: its header (and, for a control frame, its whole payload).
  void count_frame(uint8_t opcode, uint64_t wire_bytes) {
    if constexpr (kRelayCounters) {
      const auto slot = static_cast<std::size_t>(opcode_slot(opcode));
      frames++;
      bytes += wire_bytes;
      frames_by_opcode[slot]++;
      bytes_by_opcode[slot] += wire_bytes;
      if (opcode == 0x9) pings++;
      if (opcode == 0xA) pongs++;
    }
  }
  // Payload bytes of the data frame in flight (opcode: that frame's own opcode).
  void count_payload(uint8_t opcode, uint64_t n) {
    if constexpr (kRelayCounters) {
      bytes += n;
      bytes_by_opcode[static_cast<std::size_t>(opcode_slot(opcode))] += n;
    }
  }
  // Bytes of a CONNECT tunnel (no frames in them).
  void count_raw(uint64_t n) {
    if constexpr (kRelayCounters) bytes += n;
  }
  // A data message ended (FIN); its type is its first frame's opcode (RFC 6455 5.4).
  void count_message(uint8_t first_opcode) {
    if constexpr (kRelayCounters) {
      messages++;
      if (first_opcode == 0x1) text_messages++;
      if (first_opcode == 0x2) binary_messages++;
    }
  }

  DirectionStats& operator+=(const DirectionStats& o) {
    bytes += o.bytes;
    frames += o.frames;
    messages += o.messages;
    text_messages += o.text_messages;
    binary_messages += o.binary_messages;
    pings += o.pings;
    pongs += o.pongs;
    for (std::size_t i = 0; i < kOpcodeSlots; ++i) {
      frames_by_opcode[i] += o.frames_by_opcode[i];
      bytes_by_opcode[i] += o.bytes_by_opcode[i];
    }
    return *this;
  }
};

// Bytes a worker moved by splice(2), never reading them (wsgate_spliced_bytes_total): the
// relay's large WebSocket payloads, an exchange's large request content. Counted once per
// splice(2) call that reached the destination, not per connection.
struct SplicedBytes {
  uint64_t client_to_upstream = 0;
  uint64_t upstream_to_client = 0;
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

// How a CONNECT tunnel ended (it has no close code): the access log's `tunnel_end` and
// wsgate_tunnel_ends_total. The TunnelRelay (proxy/relay/tunnel_relay.h) decides it.
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

inline constexpr std::size_t kTunnelEnds = 7;

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

// The gateway's own keepalive pings to one side (route ping_interval). They and their
// Pongs are not relayed, so they are not in DirectionStats.
struct PingStats {
  uint64_t sent = 0;      // Pings the gateway wrote to that side
  uint64_t answered = 0;  // Pongs that answered them (consumed, never forwarded)
  // Round-trip times in microseconds, from the Ping entering the side's output buffer to
  // its Pong being read; 0 until the first answer.
  uint64_t last_rtt_us = 0;
  uint64_t min_rtt_us = 0;
  uint64_t max_rtt_us = 0;
  bool timed_out = false;  // the side missed ping_timeout and was dropped

  void record_rtt(uint64_t us) {
    answered++;
    last_rtt_us = us;
    if (min_rtt_us == 0 || us < min_rtt_us) min_rtt_us = us;
    if (us > max_rtt_us) max_rtt_us = us;
  }
};

struct ConnectionStats {
  DirectionStats client_to_upstream;
  DirectionStats upstream_to_client;
  PingStats client_pings;      // the gateway's pings to the client
  PingStats upstream_pings;    // ... and to the upstream
  uint16_t close_code = 1006;  // the first Close seen or sent; 1006 when none
  // CONNECT tunnels (no Close frames, so no close_code): how the tunnel ended (or is
  // ending, proxy/relay/tunnel_relay.h); empty for WebSockets and open tunnels. (Here,
  // between close_code and closed_by, it takes no room of its own.)
  std::optional<TunnelEnd> tunnel_end;
  Side closed_by = Side::Gateway;
  std::string close_reason;  // why the gateway closed, when it did
};

}  // namespace wsgate::metrics
