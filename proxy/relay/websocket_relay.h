// The rules of a WebSocket relay after the opening handshake: a FrameObserver on each
// Pipe (RFC 6455 5), the close rules that end both sides together, the route's
// keepalive pings and the client's message rate limit. See docs/architecture.md "The
// relay" for the close rules table.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "proxy/libevent_ptr.h"
#include "proxy/relay/frame_observer.h"
#include "proxy/relay/keepalive.h"
#include "proxy/relay/message_rate_limiter.h"
#include "proxy/relay/relay_core.h"

namespace wsgate::proxy {

class WebSocketRelay final : public RelayPolicy, private FrameEvents {
 public:
  explicit WebSocketRelay(RelayCore& core);
  WebSocketRelay(const WebSocketRelay&) = delete;
  WebSocketRelay& operator=(const WebSocketRelay&) = delete;

  void start() override;
  void pump(Pipe& pipe) override;
  void on_side_ended(bool client_side, bool error) override;
  // Close `code` to both sides at their next frame boundary, then up to close_timeout
  // for their replies.
  void close(uint16_t code, std::string_view reason) override;
  void on_idle_timeout() override;
  bool closing() const override { return closing_; }
  void maybe_finish() override;
  // The rest of the data frame in flight, once its header and everything before it moved.
  uint64_t opaque_ahead(const Pipe& pipe) const override;
  void passed_opaque(Pipe& pipe, uint64_t n, bool delivered) override;

 private:
  void on_close_frame(FrameObserver& dir, uint16_t code) override;
  void on_violation(FrameObserver& dir, uint16_t code, std::string_view why) override;
  void record_first_close(metrics::Side by, uint16_t code, std::string_view reason);
  void start_keepalive();
  // A pinged side missed ping_timeout: it is dropped without a close handshake (1006),
  // the other side gets Close 1001.
  void on_ping_timeout(bool client_side);
  // `from_gone`'s source just ended: if that cut a frame toward its sink, the sink side
  // gets no Close (RFC 6455 5.4) and is not read any more; its connection ends once its
  // output is flushed (maybe_finish), without a close handshake.
  void end_if_cut(FrameObserver& from_gone);
  void finish();
  const FrameObserver& observer_of(const Pipe& pipe) const {
    return core_.from_client(pipe) ? to_upstream_ : to_client_;
  }

  RelayCore& core_;
  FrameObserver to_upstream_;                  // watches core_.to_upstream (client -> upstream)
  FrameObserver to_client_;                    // watches core_.to_client (upstream -> client)
  std::unique_ptr<Keepalive> client_pings_;    // null: the client is not pinged
  std::unique_ptr<Keepalive> upstream_pings_;  // null: the upstream is not pinged
  std::unique_ptr<MessageRateLimiter> message_rate_;  // null: no client message rate limit
  std::unique_ptr<MessageRateLimiter> control_rate_;  // the client's Pings and Pongs, with it
  std::unique_ptr<Timer> close_timer_;  // made at the first Close: most relays are idle
  bool client_gone_ = false;
  bool upstream_gone_ = false;
  bool client_cut_ = false;    // a frame toward the client was cut: see end_if_cut()
  bool upstream_cut_ = false;  // ... toward the upstream
  bool closing_ = false;
};

}  // namespace wsgate::proxy
