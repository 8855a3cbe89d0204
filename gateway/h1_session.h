// One downstream HTTP/1.1 connection, from accept to close: read the request head
// (strict, bounded, timed), route it, check the WebSocket handshake, open the upstream
// side, answer the client, then hand both sockets to a proxy::Relay.
//
// Ownership: the Worker owns every session (unique_ptr in its table). A session tells
// its Worker when it is over (Worker::session_done), which destroys it after the
// current loop iteration; nothing here deletes itself.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "conf/config.h"
#include "gateway/client_limits.h"
#include "gateway/downstream.h"
#include "metrics/connection_stats.h"
#include "metrics/connection_table.h"
#include "metrics/worker_metrics.h"
#include "proxy/connect_dialer.h"
#include "proxy/http1_parser.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay/relay.h"
#include "proxy/upstream_connector.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class Worker;

class H1Session {
 public:
  enum class State {
    ReadingHead,         // waiting for the complete request head (handshake_timeout)
    ConnectingUpstream,  // UpstreamConnector at work; the client waits
    ForwardingRefusal,   // the backend said no (non-101): its answer goes to the client
    Relaying,            // 101 sent: the Relay owns both sockets
    Rejecting,           // our error response is being flushed, then we close
    Done,
  };

  // `tls`: the TLS contexts in force at accept; the session keeps them alive.
  H1Session(Worker& worker, uint64_t id, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
            const conf::Listener& listener, std::size_t listener_index, evutil_socket_t fd,
            const sockaddr* peer, int peer_len);
  // How a session over a bufferevent pair ended, for the HTTP/2 stream on the other end.
  struct Outcome {
    bool upstream_vanished = false;  // the backend's TCP connection ended without a Close
  };
  using DoneCallback = std::function<void(const Outcome&)>;
  // One WebSocket stream of an HTTP/2 connection (gateway/h2_stream.cc): `client` is the
  // session's end of a bufferevent pair whose other end carries the stream's mapped
  // HTTP/1.1 request in and the answer out. `on_done` runs once, when the session
  // finishes (or is destroyed first), unless detach_observer() was called.
  H1Session(Worker& worker, uint64_t id, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
            const conf::Listener& listener, BufferEventPtr client, DownstreamFacts facts,
            DoneCallback on_done);
  ~H1Session();
  H1Session(const H1Session&) = delete;
  H1Session& operator=(const H1Session&) = delete;

  void start();
  // Graceful shutdown: a relayed WebSocket gets Close 1001; a pending handshake gets 503.
  void drain();

  // The gateway ends a relayed WebSocket (spread drain, rebalancing, admin close): Close
  // `code` to both sides at their next frame boundary; the lease counts the connection as
  // closing on its server until it ends. False when not relaying or already closing.
  bool close_websocket(uint16_t code, std::string_view reason);
  // The backend server holding this connection's upstream side, once it answered 101
  // (null before, and for connections that never relayed).
  const proxy::ServerState* upstream_server() const { return upstream_lease_.server(); }
  // Relaying, and a Close has been sent or received.
  bool closing() const { return state_ == State::Relaying && relay_ && relay_->closing(); }
  // The connection's place in the [limits] counts (Worker::admit_client), held until the
  // session is destroyed; a refusal is answered once the request head is read, before
  // routing. Set before start().
  void set_admission(ClientLimits::Decision admission) { admission_ = std::move(admission); }

  // The stream on the other end of the pair is gone: on_done must not run.
  void detach_observer() { on_done_ = nullptr; }

  uint64_t id() const { return id_; }
  // A CONNECT tunnel (raw bytes, no WebSocket frames).
  bool is_tunnel() const { return !tunnel_target_.empty(); }
  State state() const { return state_; }

  // For the worker's scrape reports (gateway/worker_report.cc), on the worker's thread:
  // the relay's counters while relaying (else null), and a connection-table row.
  const metrics::ConnectionStats* live_stats() const {
    return state_ == State::Relaying ? &stats_ : nullptr;
  }
  metrics::ConnectionInfo describe(int worker) const;

 private:
  static void on_client_read(bufferevent* bev, void* self);
  static void on_client_write(bufferevent* bev, void* self);
  static void on_client_event(bufferevent* bev, short what, void* self);
  static void on_refusal_read(bufferevent* bev, void* self);
  static void on_refusal_event(bufferevent* bev, short what, void* self);

  void read_head();
  void handle_request();
  void on_upstream(proxy::UpstreamResult&& result);
  void start_relay(proxy::UpstreamResult&& result);
  void forward_refusal(proxy::UpstreamResult&& result);
  void pump_refusal(bool upstream_finished);
  void reject(int status, std::string reason,
              const std::vector<std::pair<std::string, std::string>>& headers = {});
  void on_handshake_timeout();
  void on_tls_established();
  void on_tls_failed();
  void hand_to_h2();
  void finish(std::string_view reason);
  void write_access_log(std::string_view reason);
  void answered(int status);  // the client's answer is decided: counted once
  metrics::ConnectionLabels labels() const;
  double seconds_since_accept() const;
  // CONNECT tunnels (gateway/h1_connect.cc).
  void handle_connect();
  void on_tunnel_dialed(proxy::DialResult&& result);

  Worker& worker_;
  const uint64_t id_;
  conf::ConfigPtr config_;  // the snapshot this connection lives with
  tls::TlsSnapshotPtr tls_;
  const conf::Listener& listener_;
  bool is_tls_ = false;
  // The client bufferevent is a plain TCP socket (not TLS, not an HTTP/2 stream's pair):
  // only then may the relay write to its fd directly.
  bool client_is_plain_socket_ = false;
  bool tls_established_ = false;
  std::string tls_version_;     // "TLSv1.3" once the handshake is done
  std::string client_subject_;  // verified client certificate subject, if any
  std::string client_addr_;     // "ip:port"
  std::string client_ip_;
  std::chrono::steady_clock::time_point started_;

  State state_ = State::ReadingHead;
  BufferEventPtr client_;
  Timer timer_;  // handshake_timeout while reading the head; linger while rejecting
  http1::RequestHead head_;
  const conf::Route* route_ = nullptr;
  std::unique_ptr<proxy::UpstreamConnector> connector_;
  proxy::ServerLease upstream_lease_;  // the chosen server's connection slot
  BufferEventPtr refusing_upstream_;   // ForwardingRefusal only
  uint64_t refusal_body_left_ = 0;
  std::unique_ptr<proxy::Relay> relay_;
  metrics::ConnectionStats stats_;
  std::string upstream_addr_ = "-";
  std::string subprotocol_;                            // the upstream's choice, if any
  metrics::ConnectionCounts* relay_counts_ = nullptr;  // this worker's gauge, while relaying
  int status_ = 0;
  std::string end_reason_;
  bool received_bytes_ = false;  // any request bytes at all (else no access-log line)
  std::string_view protocol_ = "http/1.1";
  DoneCallback on_done_;
  std::unique_ptr<proxy::ConnectDialer> dialer_;  // CONNECT: resolve + connect the target
  std::string tunnel_target_;                     // CONNECT: "host:port"; "" otherwise
  std::string proxy_user_;                        // CONNECT: the authenticated proxy user
  ClientLimits::Decision admission_;
};

const char* to_string(H1Session::State s);

}  // namespace wsgate::gateway
