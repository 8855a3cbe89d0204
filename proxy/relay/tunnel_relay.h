// The rules of a CONNECT tunnel (RFC 9110 9.3.6; RFC 9113 8.5 over HTTP/2): the Pipes
// move bytes without looking at them, with the same backpressure and idle timeout as a
// WebSocket relay. What differs is how a tunnel ends, since there is no Close frame:
//  - a side's EOF is passed on as a half-close (TCP shutdown(SHUT_WR), HTTP/2
//    END_STREAM) once the bytes it sent are flushed, if the other side can be
//    half-closed; the other direction keeps flowing until that side ends too (the
//    tunnel closes when either side closes, after what it sent is delivered);
//  - where the other side cannot be half-closed (TLS), on an idle timeout or close()
//    (drain, admin): nothing more is read, what is buffered is flushed within
//    close_timeout, then both sides close;
//  - when a side fails (a TCP reset, an HTTP/2 stream reset), the other side is reset
//    too (Endpoint::reset) rather than closed as if all went well.
// How it ended is a TunnelEnd, in ConnectionStats::tunnel_end.
//
// Bulk traffic goes around the buffers: once a read finds a direction's source holding
// kBulkRead bytes or more, everything it sends from then on (to its EOF) may be spliced
// socket to socket (opaque_ahead; proxy/relay/pipe.h), between plain sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/relay_core.h"

namespace wsgate::proxy {

// The ending vocabulary lives with the stats that carry it (metrics/connection_stats.h).
using metrics::TunnelEnd;

class TunnelRelay final : public RelayPolicy {
 public:
  explicit TunnelRelay(RelayCore& core);
  TunnelRelay(const TunnelRelay&) = delete;
  TunnelRelay& operator=(const TunnelRelay&) = delete;

  void start() override;
  void pump(Pipe& pipe) override;
  void on_side_ended(bool client_side, bool error) override;
  // The gateway ends the tunnel (`code` is not used: a tunnel has no Close).
  void close(uint16_t code, std::string_view reason) override;
  void on_idle_timeout() override;
  bool closing() const override { return first_.has_value(); }
  void maybe_finish() override;
  uint64_t opaque_ahead(const Pipe& pipe) const override;
  void passed_opaque(Pipe& pipe, uint64_t n, bool delivered) override;

  // How the tunnel ended, or is ending; empty while both sides are open.
  std::optional<TunnelEnd> end() const;

 private:
  struct Side {
    bool eof = false;   // it sent its EOF (or failed)
    bool gone = false;  // its transport failed: nothing more can be written to it
    bool shut = false;  // its write side was half-closed
  };
  // The first thing that started the end: who, what, and whether both sides must now
  // be closed whole (after flushing) rather than half-closed.
  void record(metrics::Side by, TunnelEnd what, std::string_view reason, bool full);
  void finish();

  RelayCore& core_;
  Timer close_timer_;
  Side client_;
  Side upstream_;
  std::optional<TunnelEnd> first_;  // what started the end
  bool full_close_ = false;
  bool bulk_to_upstream_ = false;  // a read found kBulkRead bytes waiting: splice from now
  bool bulk_to_client_ = false;
};

}  // namespace wsgate::proxy
