// The relay of one WebSocket connection after its opening handshake: two Pipes, one per
// direction, between the client's and the upstream's bufferevents, plus the close
// rules that end both sides together, and the route's keepalive pings and client
// message rate limit.
//
// Ownership: the Relay owns both bufferevents (and so both sockets) and frees them when
// it is destroyed. When the relay is over it calls `on_finished` exactly once; the owner
// must then destroy the Relay later (deferred deletion), never from inside that call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "conf/config.h"
#include "metrics/connection_stats.h"
#include "proxy/keepalive.h"
#include "proxy/libevent_ptr.h"
#include "proxy/message_rate_limiter.h"
#include "proxy/pipe.h"

namespace wsgate::proxy {

struct RelaySettings {
  bool rsv1_allowed = false;             // permessage-deflate was negotiated (RFC 7692 6)
  uint64_t max_message_size = 0;         // 0: no limit
  std::size_t buffer_size = 256 * 1024;  // per-direction high watermark
  conf::Duration idle_timeout = std::chrono::minutes(5);
  // After the first Close, how long both sides get to finish the close handshake.
  conf::Duration close_timeout = std::chrono::seconds(5);
  // A CONNECT tunnel: raw bytes, no frames (proxy/relay_raw.cc). A side's EOF is passed
  // on as a TCP half-close where the other side is a plain socket; otherwise, and on
  // errors, idle timeout or close(), both sides end once what is buffered is flushed.
  bool raw = false;
  // The gateway's keepalive pings (route ping_interval; 0: off) and to whom.
  conf::Duration ping_interval = std::chrono::seconds(0);
  conf::Duration ping_timeout = std::chrono::seconds(10);
  bool ping_client = true;
  bool ping_upstream = true;
  // Data messages per second from the client (0: no limit), and the burst (0: = rate).
  uint32_t max_message_rate = 0;
  uint32_t max_message_burst = 0;
};

// Sends a TLS close_notify on `bev` if it is a TLS bufferevent whose handshake finished
// (no-op for plain sockets). Call once its output has been flushed.
void send_close_notify(bufferevent* bev);

class Relay final : private PipeEvents {
 public:
  // `*_is_plain`: that side is a plain socket bufferevent (not TLS).
  Relay(event_base* base, BufferEventPtr client, bool client_is_plain, BufferEventPtr upstream,
        bool upstream_is_plain, const RelaySettings& settings, metrics::ConnectionStats& stats,
        std::function<void()> on_finished);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Installs the callbacks and forwards whatever both sides already sent.
  void start();

  // The gateway ends the connection (drain, idle): Close `code` to both sides at their
  // next frame boundary, then waits up to close_timeout for their replies.
  void close(uint16_t code, std::string_view reason);

  bool finished() const { return finished_; }
  // A Close has been sent or received: the connection is ending.
  bool closing() const { return closing_ || finished_; }
  // Bytes waiting in the two output buffers (for the connection table).
  std::size_t buffered_bytes() const;
  // When bytes last arrived from either side (the loop's cached wall clock).
  timeval last_activity() const { return last_activity_; }

 private:
  enum class SideIndex { Client = 0, Upstream = 1 };

  static void on_read(bufferevent* bev, void* self);
  static void on_write(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);

  void on_close_frame(Pipe& pipe, uint16_t code) override;
  void on_violation(Pipe& pipe, uint16_t code, std::string_view why) override;
  void on_source_failed(Pipe& pipe) override;
  void on_side_gone(bool client_side, bool error);
  void on_idle_check();
  void record_first_close(metrics::Side by, uint16_t code, std::string_view reason);
  void start_keepalive();
  // A pinged side missed ping_timeout: it is dropped without a close handshake (1006),
  // the other side gets Close 1001.
  void on_ping_timeout(bool client_side);
  void maybe_finish();
  void finish();
  // Raw mode (CONNECT tunnels), in proxy/relay_raw.cc.
  void raw_side_gone(bool client_side, bool error);
  void raw_close(std::string_view reason);
  void raw_record_end(metrics::Side by, uint16_t code, std::string_view reason, bool full);
  void raw_maybe_finish();

  event_base* base_;
  BufferEventPtr client_;
  BufferEventPtr upstream_;
  RelaySettings settings_;
  metrics::ConnectionStats& stats_;
  std::function<void()> on_finished_;
  Pipe to_upstream_;                                  // client -> upstream
  Pipe to_client_;                                    // upstream -> client
  std::unique_ptr<Keepalive> client_pings_;           // null: the client is not pinged
  std::unique_ptr<Keepalive> upstream_pings_;         // null: the upstream is not pinged
  std::unique_ptr<MessageRateLimiter> message_rate_;  // null: no client message rate limit
  Timer idle_timer_;
  Timer close_timer_;
  timeval last_activity_{};
  bool client_gone_ = false;
  bool upstream_gone_ = false;
  bool closing_ = false;
  bool finished_ = false;
  // Raw mode: a side sent EOF; the other side's write half was shut (or must be closed
  // whole because it cannot be half-closed).
  bool client_eof_ = false;
  bool upstream_eof_ = false;
  bool client_shut_ = false;
  bool upstream_shut_ = false;
  bool raw_full_close_ = false;
};

}  // namespace wsgate::proxy
