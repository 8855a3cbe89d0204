// The client side of one request, as an exchange sees it: what is known about the
// client, and the few ways to answer it. Two implementations: an HTTP/1.1 connection
// (gateway/h1/h1_connection.h) and an HTTP/2 stream (gateway/h2/h2_stream.h). An exchange
// (gateway/exchange/exchange.h) calls these without knowing which protocol answers.
//
// Order of calls, by the exchange: at most one answer (refuse, accept_websocket,
// accept_tunnel, or begin_upstream_answer followed by upstream_answer_body* and
// end_upstream_answer), then exchange_finished exactly once, last. The downstream, for
// its part, tells the exchange when the client is gone (Exchange::on_client_gone).
#pragma once

#include <event2/buffer.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/client_limits.h"
#include "gateway/exchange/http_downstream.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/request_head.h"
#include "proxy/libevent_ptr.h"
#include "proxy/relay/endpoint.h"

namespace wsgate::gateway {

struct DownstreamFacts {
  std::string client_addr;  // "ip:port"
  std::string client_ip;
  bool tls = false;
  std::string tls_version;                 // "TLSv1.3"; empty on plain connections
  std::string client_subject;              // verified client certificate subject, if any
  std::string_view protocol = "http/1.1";  // for the access log: "http/1.1" or "h2"
  // The client came through a PROXY protocol balancer (gateway/proxy_header_reader.h) or
  // a trusted proxy's X-Forwarded-For (gateway/exchange/forwarded_client.h): the peer's
  // own "ip:port" ("" = the client is the TCP peer), and what a PROXY v2 header said of
  // the client's TLS at the balancer: its SNI host name and ALPN protocol.
  std::string via;
  std::string proxy_sni;
  std::string proxy_alpn;
  // The address this hop appends to X-Forwarded-For: "" = client_ip; the trusted
  // proxy's when the client was taken from its X-Forwarded-For.
  std::string xff_hop;
  const std::string& forwarded_for_hop() const { return xff_hop.empty() ? client_ip : xff_hop; }
};

// The client side's bytes once the exchange relays, as the relay's Endpoint (a TCP or
// TLS bufferevent, or an HTTP/2 stream); the relay owns it.
struct ClientChannel {
  explicit ClientChannel(std::unique_ptr<proxy::Endpoint> e) : endpoint(std::move(e)) {}
  std::unique_ptr<proxy::Endpoint> endpoint;
  // The downstream has nothing left to do once the relay owns its socket (an HTTP/1.1
  // connection): the exchange keeps its [limits] place (`slot`) and calls it no more. An
  // HTTP/2 stream stays the exchange's downstream to the end.
  bool downstream_leaves = false;
  ClientLimits::Slot slot;
};

// How an exchange ended, for the downstream that carried it.
struct ExchangeEnd {
  bool relayed = false;
  // Relayed, and the upstream's connection failed (reset, or a WebSocket upstream's TCP
  // connection ended without a Close): an HTTP/2 stream is reset (RFC 9113 8.5 for
  // tunnels) instead of ended cleanly.
  bool upstream_failed = false;
  // A forwarded HTTP request ended cleanly: the whole request was read and the whole
  // response handed over, so the client's connection may carry its next request.
  bool reusable = false;
  // A forwarded HTTP response was handed over completely (its end is known to the
  // client, or the connection closes after it).
  bool response_complete = false;
};

class Downstream {
 public:
  virtual const DownstreamFacts& facts() const = 0;
  // The status a client of this protocol sees for an accepted WebSocket: 101 over
  // HTTP/1.1, 200 over HTTP/2 (RFC 8441 5); for the access log.
  virtual int websocket_accepted_status() const = 0;

  // The gateway's own answer: status, the one-line reason as a text body, extra fields.
  // The downstream flushes it and then reports the client gone (on_client_gone).
  virtual void refuse(const http::Refusal& refusal) = 0;
  // The upstream accepted the WebSocket with `upgrade` (a checked 101): answer the client
  // and hand over its bytes for the relay.
  virtual ClientChannel accept_websocket(const http1::ResponseHead& upgrade) = 0;
  // The tunnel's target is connected (RFC 9110 9.3.6, RFC 9113 8.5: a 2xx).
  virtual ClientChannel accept_tunnel() = 0;
  // The upstream answered the upgrade with something else (401, 403, ...): its head, then
  // its body in pieces (moved out of `from`), then the end. After the end the downstream
  // reports the client gone once the answer is out.
  virtual void begin_upstream_answer(const http1::ResponseHead& head) = 0;
  virtual void upstream_answer_body(evbuffer* from, std::size_t n) = 0;
  virtual void end_upstream_answer() = 0;

  // HTTP forwarding (gateway/exchange/http_downstream.h), or null when this downstream
  // cannot carry forwarded requests.
  virtual HttpDownstream* http() { return nullptr; }

  // The exchange is over (its access-log line is written): the last call.
  virtual void exchange_finished(const ExchangeEnd& end) = 0;

 protected:
  ~Downstream() = default;
};

}  // namespace wsgate::gateway
