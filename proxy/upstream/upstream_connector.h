// Opens the upstream side of one connection: resolve (async, evdns), TCP connect with a
// timeout, send the handshake request, read the upstream's response head (after any
// interim 1xx responses, proxy/upstream/response_head_reader.h). When a server
// fails to connect or answers with something that is not an HTTP response, before
// anything reached the client, the ServerSelection gives another one (bounded by the
// upstream's retries); each failure counts toward that server's passive ejection.
// A handshake timeout is not retried (it would multiply the client's wait).
//
// Ownership: the owner keeps the connector alive until `done` has run and must destroy
// it later (deferred), never from inside `done`. On success the bufferevent moves to
// the result; whatever the upstream sent after its response head stays in its input.
// Its reading stays enabled, with no callbacks: `done` sets the new owner's (or frees
// it) before returning, so the loop never reads into it unwatched and the socket's epoll
// registration does not change between owners.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/proxy_protocol.h"
#include "proxy/codec/request_head.h"
#include "proxy/idle_deadline.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/idle_pool.h"
#include "proxy/upstream/upstream_connection.h"
#include "tls/client_context.h"

namespace wsgate::proxy {

struct UpstreamResult {
  // true: the upstream answered (any status, see response.status); false: no answer.
  bool answered = false;
  UpstreamConnection connection;  // with answered
  http1::ResponseHead response;   // with answered
  conf::HostPort server;          // the server that answered, or the last one tried
  ServerLease lease;              // with answered: the server's connection slot; hold it
                                  // until the connection ends
  // Without answer: 502 (unreachable, bad reply), 503 (no server available) or 504
  // (timeout), with one line for the client and the log.
  http::Refusal refusal;
  int attempts = 0;
  bool reused = false;  // with answered: the connection came from the idle pool
};

struct UpstreamTimeouts {
  conf::Duration connect;    // resolve + TCP connect, per attempt
  conf::Duration handshake;  // request sent -> response head complete
};

class UpstreamConnector {
 public:
  using Done = std::function<void(UpstreamResult&&)>;

  // `tls`: non-null for wss:// upstreams; must outlive the connector.
  UpstreamConnector(event_base* base, evdns_base* dns, const tls::ClientContext* tls,
                    ServerSelection servers, std::string request, UpstreamTimeouts timeouts,
                    Done done);
  UpstreamConnector(const UpstreamConnector&) = delete;
  UpstreamConnector& operator=(const UpstreamConnector&) = delete;

  void start();
  // Stops everything in flight; `done` will not run.
  void cancel();

  // HTTP forwarding streams a request body after the head, while the connector waits for
  // the response head. `connected` runs on each attempt once its head is written (the
  // bufferevent stays the connector's: write to its output only); `writable` when that
  // output has drained to its write low watermark.
  struct RequestStream {
    std::function<void(bufferevent*)> connected;
    std::function<void()> writable;
  };
  void stream_request(RequestStream stream) { stream_ = std::move(stream); }
  // The request can no longer be sent again (body bytes, or a non-idempotent request,
  // went out): a failed attempt ends the connect instead of trying another server.
  void no_retry() { replayable_ = false; }
  // Each attempt first takes an idle keep-alive connection to its server from `pool`
  // (HTTP forwarding, idempotent requests only). A reused connection that turns out
  // closed before any answer byte is replaced by a new one to the same server, once,
  // while the request is replayable; that is not the server's failure.
  void reuse_from(IdlePool* pool) { idle_ = pool; }
  // Its deadlines go on the worker's IdleTimeouts (list operations, no libevent event per
  // connector) rather than on a timer of its own. Before start().
  void time_with(IdleTimeouts* timeouts) { timer_.use(timeouts); }
  // The whole streamed request is written: the response head's deadline (the handshake
  // timeout) starts now.
  void request_sent();
  // The client this connection is for, named in the PROXY protocol header that each new
  // connection starts with when the upstream has send_proxy_protocol (nullopt: a LOCAL /
  // UNKNOWN header). Without send_proxy_protocol nothing is sent.
  void proxy_header_for(std::optional<proxy_protocol::Endpoint> client) { proxy_client_ = client; }

 private:
  enum class State { Idle, Connecting, AwaitingResponse, Done };

  static void on_read(bufferevent* bev, void* self);
  static void on_write(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  void try_next(int last_status, std::string last_reason);
  void connect_current();
  void on_connected();
  // The TCP connection is up: the PROXY header goes first; a wss:// upstream's TLS
  // handshake starts behind it. False when the attempt failed.
  bool send_proxy_header();
  bool sends_proxy_header() const;
  void on_response_bytes();
  void on_timeout();
  void fail(int status, std::string reason);
  // `kind`: the wsgate_upstream_connect_failures_total reason (names::kConnectFailureReasons).
  void attempt_failed(int status, std::string_view kind, std::string reason);

  event_base* base_;
  evdns_base* dns_;
  const tls::ClientContext* tls_;
  ServerSelection servers_;
  conf::HostPort current_;  // the server of the attempt in progress (or the last one)
  std::string tls_name_;    // its name for TLS: the configured name of a DNS-found member
  std::string request_;
  UpstreamTimeouts timeouts_;
  Done done_;
  UpstreamConnection bev_;
  DeadlineTimer timer_;
  std::chrono::steady_clock::time_point connect_started_;  // of a new connection
  State state_ = State::Idle;
  int attempts_ = 0;
  int interim_responses_ = 0;  // 1xx heads skipped in the current attempt
  IdlePool* idle_ = nullptr;
  bool reused_ = false;  // the current attempt's connection came from idle_
  RequestStream stream_;
  bool replayable_ = true;
  std::optional<proxy_protocol::Endpoint> proxy_client_;
  bool tls_pending_ = false;  // the PROXY header went out; the TLS handshake runs
};

}  // namespace wsgate::proxy
