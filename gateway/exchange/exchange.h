// One request from decision to close, whatever protocol the client spoke: admission and
// mapping refusals, then a WebSocket exchange (route -> policy -> balancer -> upstream
// handshake -> 101 check -> relay; websocket_exchange.cc) or a tunnel exchange (proxy
// auth -> allow-list -> dialer -> raw relay; tunnel_exchange.cc). Both end in the same
// "begin relaying" step and the same close: access-log line, metrics, the downstream
// told. An exchange knows its client only as a Downstream.
//
// Ownership: the Worker owns every exchange (Worker::add_exchange), lists them for
// drain, close, rebalancing and the connection table, and destroys one after the loop
// iteration in which it finished (Worker::exchange_done). The downstream is borrowed:
// an exchange may outlive it (an HTTP/2 stream reset while its relay still sends the
// upstream its Close; an HTTP/1.1 connection whose socket the relay took), so a
// downstream that goes away first calls detach_downstream(). Everything the exchange
// needs to know of its client after that was copied at the start (DownstreamFacts).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "conf/config.h"
#include "gateway/client_limits.h"
#include "gateway/exchange/auth_step.h"
#include "gateway/exchange/downstream.h"
#include "metrics/admin/connection_table.h"
#include "metrics/connection_stats.h"
#include "metrics/worker_metrics.h"
#include "proxy/codec/proxy_protocol.h"
#include "proxy/codec/request_head.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay/relay.h"
#include "proxy/upstream/balancer.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class Worker;

// What every exchange starts with, from its downstream.
struct ExchangeContext {
  Worker& worker;
  uint64_t id;             // the connection's number in /connections and the close endpoints
  conf::ConfigPtr config;  // the snapshot this request lives with
  tls::TlsSnapshotPtr tls;
  const conf::Listener& listener;
};

class Exchange {
 public:
  enum class State {
    Deciding,            // checks and routing; nothing sent anywhere yet
    ConnectingUpstream,  // upstream connector or tunnel dialer at work; the client waits
    ForwardingRefusal,   // the upstream said no (non-101): its answer goes to the client
    Forwarding,          // HTTP forwarding: the upstream's response streams to the client
    Relaying,            // the client was answered: the Relay owns both sides
    Answered,            // our own answer (or the upstream's) is on its way; then close
    Done,
  };

  // The exchange for `request` (a tunnel for CONNECT without a protocol; an HTTP exchange
  // for any other request that is not a WebSocket upgrade, when the downstream can carry
  // one; else a WebSocket exchange) - or, when `request` is a refusal or `admission` refused, one
  // that answers that. Nothing happens before start().
  static std::unique_ptr<Exchange> make(ExchangeContext ctx, Downstream& downstream,
                                        http::Checked<http::RequestHead>&& request,
                                        ClientLimits::Decision admission);
  virtual ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void start();
  // The client went away (closed, reset, or its answer is flushed and lingered out).
  void on_client_gone(std::string_view why);
  // The downstream object is gone: nothing more is called on it. Before relaying this
  // ends the exchange (as on_client_gone); a relay carries on with its own bytes.
  void detach_downstream();
  // Graceful shutdown: a relayed WebSocket gets Close 1001; an undecided request 503; a
  // forwarded HTTP request in flight completes.
  void drain();
  // HTTP forwarding (gateway/exchange/http_downstream.h): more request content arrived;
  // the client's output fell below half of the response watermark.
  virtual void on_request_body_ready() {}
  virtual void on_client_drained() {}
  // The gateway ends a relayed WebSocket (spread drain, rebalancing, admin close): Close
  // `code` to both sides at their next frame boundary; the lease counts the connection as
  // closing on its server until it ends. False when not relaying or already closing.
  bool close_websocket(uint16_t code, std::string_view reason);

  uint64_t id() const { return id_; }
  State state() const { return state_; }
  bool relaying() const { return state_ == State::Relaying; }
  bool closing() const { return relaying() && relay_ && relay_->closing(); }
  virtual bool is_tunnel() const { return false; }
  // The upstream server holding this exchange's upstream side, once it answered 101.
  const proxy::ServerState* upstream_server() const { return upstream_lease_.server(); }
  // For the worker's scrape reports: the relay's counters while relaying (else null),
  // and a connection-table row.
  const metrics::ConnectionStats* live_stats() const { return relaying() ? &stats_ : nullptr; }
  metrics::ConnectionInfo describe(int worker) const;

 protected:
  Exchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request);

  // The request is admitted and well-formed: route it, check it, reach the upstream.
  virtual void decide() = 0;
  // Stop a connect or dial in flight (the client is answered otherwise, or gone).
  virtual void stop_upstream_work() {}

  // Our own answer; the exchange ends when the client is gone.
  void refuse(http::Refusal refusal);
  // Chooses route_ for the request, or refuses (400 for a bad target, 404 without a
  // route) and returns false. Routes are security boundaries: the route is chosen on the
  // normalised path, and the upstream gets that same path (request_->path is replaced),
  // not the client's spelling, so it serves exactly what was routed; an upstream that
  // resolved "/a/../admin" itself could otherwise serve a path that another route guards
  // (docs/configuration.md, "Routing").
  bool choose_route();
  // The route's [route.auth] (gateway/exchange/auth_step.h), before any upstream work:
  // `next` runs once the request is allowed, now or later; a refusal, or the auth
  // service's own answer, goes to the client instead.
  void authorize(std::function<void()> next);
  // The client was answered `status`: from now on the relay carries both sides.
  // A JWT's expiry closes the relayed WebSocket then (JwtAuth::close_on_expiry).
  void begin_relaying(int status, ClientChannel client, BufferEventPtr upstream,
                      bool upstream_plain, proxy::RelaySettings settings);
  void finish(std::string_view reason);
  void answered(int status);  // the client's answer is decided: counted once
  metrics::ConnectionLabels labels() const;
  double seconds_since_accept() const;
  // The client as a PROXY protocol endpoint (send_proxy_protocol): its IP as the rest of
  // the gateway sees it (an inbound PROXY header's, or a trusted proxy's X-Forwarded-For
  // entry), with its port when known (0 behind a trusted proxy).
  std::optional<proxy_protocol::Endpoint> client_endpoint() const;

  Worker& worker_;
  const uint64_t id_;
  conf::ConfigPtr config_;
  tls::TlsSnapshotPtr tls_;
  const conf::Listener& listener_;
  Downstream* downstream_;       // null once detached
  const DownstreamFacts facts_;  // copied: the downstream may go first
  // Null once relaying: an idle WebSocket holds none of its head (264 B; issue 13).
  std::unique_ptr<http::RequestHead> request_;
  std::chrono::steady_clock::time_point started_;
  State state_ = State::Deciding;
  // The downstream's websocket_accepted_status(); beside state_, where it fills what was
  // padding (jemalloc rounds an exchange of 1,288 B up to 1,536, one of 1,280 not).
  const int accepted_status_;
  const conf::Route* route_ = nullptr;
  proxy::ServerLease upstream_lease_;  // the chosen server's connection slot
  std::unique_ptr<proxy::Relay> relay_;
  metrics::ConnectionStats stats_;
  std::string upstream_addr_ = "-";
  std::string subprotocol_;  // the upstream's choice, if any
  // One per request (gateway/exchange/request_id.h): the access log's request_id, and
  // the X-Request-Id in request_->fields that the upstream gets.
  std::string request_id_;
  std::string target_;  // tunnels: "host:port"
  // The authenticated user: a tunnel's proxy user, a JWT's "sub" ([route.auth]).
  std::string user_;
  metrics::ConnectionCounts* relay_counts_ = nullptr;  // this worker's gauge, while relaying
  std::string end_reason_;
  int status_ = 0;  // beside the flags below: no padding between them
  // A forwarded HTTP request (HttpExchange, once routed to forwarding): counted in
  // wsgate_http_requests_total instead of the handshakes, logged with method, path and
  // body bytes (stats_).
  bool http_request_ = false;
  bool http_reusable_ = false;           // ExchangeEnd::reusable
  bool http_response_complete_ = false;  // ExchangeEnd::response_complete

 private:
  void write_access_log(std::string_view reason);
  void answer_from_auth_service(AuthOutcome::ServiceAnswer answer);
  void arm_token_expiry();
  void token_expired();

  std::unique_ptr<AuthStep> auth_;  // while the route's auth step runs (and after)
  // The JWT's "exp", when the route closes WebSockets at expiry; the timer once relaying.
  std::optional<std::chrono::system_clock::time_point> token_expires_;
  std::unique_ptr<Timer> expiry_;

  // What the access log shows of the request (request_ is dropped once relaying): the
  // four fields back to back in one string, at most one allocation (48 B where four
  // strings took 128 of every idle WebSocket; issue 13).
  class LoggedRequest {
   public:
    LoggedRequest() = default;
    LoggedRequest(std::string_view path, std::string_view host, std::string_view user_agent,
                  std::string_view origin);
    std::string_view path() const { return field(0); }
    std::string_view host() const { return field(1); }
    std::string_view user_agent() const { return field(2); }
    std::string_view origin() const { return field(3); }

   private:
    std::string_view field(std::size_t i) const {
      const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
      return std::string_view(text_).substr(begin, (i < 3 ? ends_[i] : text_.size()) - begin);
    }
    std::string text_;
    std::array<uint32_t, 3> ends_{};  // where path, host and user_agent end in text_
  };
  LoggedRequest logged_request() const;
  LoggedRequest logged_;  // filled when request_ is dropped

  ClientLimits::Decision admission_;
  // The [limits] place of an HTTP/1.1 connection that left once relaying began
  // (ClientChannel::downstream_leaves).
  ClientLimits::Slot connection_slot_;
  // A mapping refusal, answered at start(); on the heap: a relayed WebSocket never has one.
  std::unique_ptr<http::Refusal> early_refusal_;
};

const char* to_string(Exchange::State s);

}  // namespace wsgate::gateway
