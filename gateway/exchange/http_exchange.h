// An ordinary HTTP request (not an upgrade, not CONNECT), forwarded to the route's
// upstream (issue 15): route -> websocket_only routes keep the WebSocket-only answer
// (405/426) -> body limit (413) -> [route.auth] (auth_step.h) -> balancer -> upstream
// connector (the request head, proxy/codec/http_forward.h) -> the request content
// streams up while the exchange waits for the response head -> the response head and
// content stream down -> end.
//
// Both bodies stream through bounded buffers (the route's buffer_size): the client's
// content is read only while the upstream's output is below it, the upstream is read
// only while the client's output is below it. Nothing is buffered whole.
//
// Retries: the connector tries another server after a failed connect, and after an
// upstream that closed before answering only for an idempotent method (RFC 9110 9.2.2)
// whose content has not started to go out. Failures before the response head are the
// gateway's own answer (400, 408, 413, 502, 503, 504); after it, the client's
// connection is closed, which tells an HTTP/1.1 client the response was cut.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "gateway/exchange/exchange.h"
#include "proxy/codec/http1_body.h"
#include "proxy/idle_deadline.h"
#include "proxy/relay/receive_batching.h"
#include "proxy/relay/splice_pump.h"
#include "proxy/upstream/upstream_connector.h"

namespace wsgate::gateway {

class HttpExchange final : public Exchange {
 public:
  HttpExchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request);
  ~HttpExchange() override;

  void on_request_body_ready() override;
  void on_client_drained() override;

 private:
  void decide() override;
  void forward();  // allowed by the route's auth: on to the upstream
  void stop_upstream_work() override;
  HttpDownstream* client() const { return downstream_ != nullptr ? downstream_->http() : nullptr; }

  void on_connected(bufferevent* upstream);
  void on_upstream(proxy::UpstreamResult&& result);
  // Session affinity (proxy/upstream/affinity.h): the Set-Cookie value naming the server,
  // when the upstream has an affinity cookie and the request did not carry this value.
  std::optional<std::string> affinity_cookie() const;
  void pump_request();
  std::size_t pending_length() const { return pending_ ? evbuffer_get_length(pending_.get()) : 0; }
  void request_failed(http::Refusal refusal);
  void pump_response();
  void response_done();
  // The response ended cleanly: the upstream connection goes to the worker's idle pool.
  void keep_upstream();
  void abort(std::string reason);
  void on_idle();
  static void on_upstream_read(bufferevent* bev, void* self);
  static void on_upstream_write(bufferevent* bev, void* self);
  static void on_upstream_event(bufferevent* bev, short what, void* self);

  std::size_t cap_ = 0;  // the route's buffer_size: each direction's high watermark
  std::unique_ptr<proxy::UpstreamConnector> connector_;
  bufferevent* upstream_out_ = nullptr;  // the connector's, then upstream_'s
  proxy::UpstreamConnection upstream_;   // once the response head arrived
  EvbufferPtr pending_;  // request content read, not yet sent upstream (made when needed)
  // Between plain sockets, the rest of a large Content-Length request's content, or the
  // data of each large chunk of a chunked one, goes from the client's socket to the
  // upstream's by splice (proxy/relay/splice_pump.h); a chunked body keeps the pump from
  // one chunk to the next. Declared after upstream_: destroyed before that socket closes.
  std::unique_ptr<proxy::SplicePump> splice_;
  bool splicing_ = false;  // splice_ is moving bytes now
  bool try_splice();
  bool chunked_upstream_ = false;  // the request content goes up chunk-encoded
  bool upstream_plain_ = true;     // no TLS to the upstream: read it directly
  bool request_read_ = false;      // all of the client's content was read
  bool request_sent_ = false;      // ... and written to the upstream, with its end
  bool body_went_out_ = false;     // some content went to the upstream
  bool upstream_eof_ = false;
  bool upstream_reusable_ = false;  // the response allows another request on its connection
  http1::BodyDecoder response_body_;
  proxy::ReceiveBatching upstream_batching_;  // a large response is read in large pieces
  // The route's idle_timeout: no progress either way.
  proxy::IdleDeadline idle_;
};

}  // namespace wsgate::gateway
