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
#include <memory>
#include <string>

#include "conf/config.h"
#include "metrics/connection_stats.h"
#include "proxy/http1_parser.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay.h"
#include "proxy/upstream_connector.h"

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

  H1Session(Worker& worker, uint64_t id, conf::ConfigPtr config, const conf::Listener& listener,
            evutil_socket_t fd, const sockaddr* peer, int peer_len);
  ~H1Session();
  H1Session(const H1Session&) = delete;
  H1Session& operator=(const H1Session&) = delete;

  void start();
  // Graceful shutdown: a relayed WebSocket gets Close 1001; a pending handshake gets 503.
  void drain();

  uint64_t id() const { return id_; }
  State state() const { return state_; }

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
  void finish(std::string_view reason);
  void write_access_log(std::string_view reason);

  Worker& worker_;
  const uint64_t id_;
  conf::ConfigPtr config_;  // the snapshot this connection lives with
  const conf::Listener& listener_;
  std::string client_addr_;  // "ip:port"
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
  int status_ = 0;
  std::string end_reason_;
};

const char* to_string(H1Session::State s);

}  // namespace wsgate::gateway
