#include "gateway/exchange/websocket_exchange.h"

#include <event2/buffer.h>

#include <utility>

#include "conf/address.h"
#include "gateway/exchange/websocket_handshake.h"
#include "gateway/worker.h"
#include "proxy/codec/response_field.h"
#include "proxy/codec/upstream_request.h"
#include "proxy/codec/websocket_key.h"
#include "proxy/codec/websocket_upgrade_check.h"
#include "proxy/upstream/affinity.h"

namespace wsgate::gateway {
namespace {

// An upstream's refusal body is passed on up to this size: a larger declared one is
// answered with 502 (see forward_refusal), one without Content-Length is cut here.
constexpr uint64_t kMaxRefusalBody = 1024 * 1024;

std::string host_port_text(const conf::HostPort& s) {
  return s.host.empty() ? "-" : conf::to_string(s);
}

}  // namespace

WebSocketExchange::WebSocketExchange(ExchangeContext ctx, Downstream& downstream,
                                     http::RequestHead&& request)
    : Exchange(std::move(ctx), downstream, std::move(request)) {}

WebSocketExchange::~WebSocketExchange() {
  if (connector_) connector_->cancel();
}

void WebSocketExchange::decide() {
  if (!choose_route()) return;
  if (std::optional<http::Refusal> refusal =
          check_websocket_request(*request_, {route_->allowed_origins, route_->require_origin})) {
    refuse(std::move(*refusal));
    return;
  }
  authorize([this] { connect_upstream(); });
}

void WebSocketExchange::connect_upstream() {
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  if (upstream == nullptr || upstream->servers.empty()) {
    refuse({502, "route has no upstream servers", {}});
    return;
  }
  // An HTTP/1.1 client's key goes upstream unchanged, so the upstream's accept value
  // answers it; an HTTP/2 client has none (RFC 8441 5): the gateway makes one.
  const http::Field* client_key = request_->find("sec-websocket-key");
  key_ = client_key != nullptr ? client_key->value : ws::generate_key();
  const DownstreamFacts& f = facts_;
  std::string upstream_request = proxy::build_upstream_request(
      *request_, {f.forwarded_for_hop(), f.tls ? "https" : "http", f.client_subject}, key_);
  state_ = State::ConnectingUpstream;
  connector_ = std::make_unique<proxy::UpstreamConnector>(
      worker_.base(), worker_.dns(), tls_ ? tls_->upstream(upstream->name) : nullptr,
      worker_.balancers_for(*config_).select(*upstream, f.client_ip, *request_),
      std::move(upstream_request),
      proxy::UpstreamTimeouts{route_->connect_timeout, route_->upstream_handshake_timeout},
      [this](proxy::UpstreamResult&& r) { on_upstream(std::move(r)); });
  connector_->time_with(&worker_.idle_timeouts());
  connector_->proxy_header_for(client_endpoint());
  connector_->start();
}

void WebSocketExchange::on_upstream(proxy::UpstreamResult&& result) {
  upstream_addr_ = host_port_text(result.server);
  upstream_lease_ = std::move(result.lease);  // counts for the balancers until we end
  worker_.retire(std::move(connector_));      // its callback is on the stack
  if (!result.answered) {
    refuse(std::move(result.refusal));
    return;
  }
  if (result.response.status != 101) {
    forward_refusal(std::move(result));
    return;
  }
  // RFC 6455 4.1: the client would fail a 101 without the right accept value or the
  // Upgrade token; the gateway checks first and answers 502 instead.
  if (std::optional<std::string> why = proxy::check_upgrade_response(result.response, key_)) {
    refuse({502, "upstream " + *why, {}});
    return;
  }
  std::string().swap(key_);  // checked: not kept for the WebSocket's life (issue 13)
  const proxy::AcceptedUpgrade accepted = proxy::accepted_upgrade(result.response);
  subprotocol_ = accepted.subprotocol;
  proxy::RelaySettings settings;
  settings.rsv1_allowed = accepted.rsv1_allowed;  // RFC 7692 6
  settings.max_message_size = route_->max_message_size;
  settings.buffer_size = route_->buffer_size;
  settings.idle_timeout = route_->idle_timeout;
  settings.ping_interval = route_->ping_interval;
  settings.ping_timeout = route_->ping_timeout;
  settings.ping_client = route_->ping_to != conf::Route::PingTo::Upstream;
  settings.ping_upstream = route_->ping_to != conf::Route::PingTo::Client;
  settings.max_message_rate = route_->max_message_rate;
  settings.max_message_burst = route_->max_message_burst;
  const bool upstream_plain = tls_ == nullptr || tls_->upstream(route_->upstream) == nullptr;
  // The upstream's affinity cookie rides on the 101 (the RFC 8441 200) as on forwarded
  // responses: a client whose first request is the upgrade comes back to this server.
  const conf::Upstream* upstream = config_->find_upstream(route_->upstream);
  if (const proxy::ServerState* server = upstream_lease_.server(); upstream && server) {
    if (auto cookie = proxy::affinity_cookie_for(*upstream, server->config, *request_))
      proxy::append_response_field(result.response, "Set-Cookie", *cookie);
  }
  ClientChannel client = downstream_->accept_websocket(result.response);
  begin_relaying(101, std::move(client), result.connection.release(), upstream_plain, settings);
}

void WebSocketExchange::forward_refusal(proxy::UpstreamResult&& result) {
  // The upstream refused the upgrade (401, 403, 404, ...): its answer goes to the client
  // as it is, body included (bounded), and the exchange ends.
  const http1::Header* cl = result.response.find("content-length");
  uint64_t body_left = kMaxRefusalBody;
  if (cl != nullptr) {
    // The parser accepts only digits here (RFC 9112 6.3); strtoull saturates.
    const uint64_t declared = std::strtoull(std::string(cl->value).c_str(), nullptr, 10);
    if (declared > kMaxRefusalBody) {
      // Forwarding the head would promise the client a body the gateway will not send
      // in full: a cut body under its Content-Length is a malformed message (RFC 9113
      // 8.1.1 on HTTP/2, RFC 9112 6.3 incomplete on HTTP/1.1), and dropping the field
      // would make a truncated answer look complete. Nothing was sent yet, so the client
      // gets the gateway's own, complete 502 instead.
      refuse({502, "upstream refusal body over 1 MiB", {}});
      return;
    }
    body_left = declared;
  }
  answered(result.response.status);
  state_ = State::ForwardingRefusal;
  end_reason_ = "upstream refused the upgrade";
  downstream_->begin_upstream_answer(result.response);
  refusing_ = std::make_unique<Refusing>(worker_.base(), this);
  refusing_->upstream = result.connection.release();
  refusing_->body_left = body_left;
  bufferevent_setcb(refusing_->upstream.get(), &WebSocketExchange::on_refusal_read, nullptr,
                    &WebSocketExchange::on_refusal_event, this);
  bufferevent_enable(refusing_->upstream.get(), EV_READ);
  refusing_->timer.arm_ms(route_->upstream_handshake_timeout.count());
  pump_refusal(false);
}

void WebSocketExchange::on_refusal_read(bufferevent* /*bev*/, void* self) {
  static_cast<WebSocketExchange*>(self)->pump_refusal(false);
}

void WebSocketExchange::on_refusal_event(bufferevent* /*bev*/, short what, void* self) {
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0)
    static_cast<WebSocketExchange*>(self)->pump_refusal(true);
}

void WebSocketExchange::pump_refusal(bool upstream_finished) {
  if (state_ != State::ForwardingRefusal) return;
  evbuffer* in = bufferevent_get_input(refusing_->upstream.get());
  const uint64_t take = std::min<uint64_t>(evbuffer_get_length(in), refusing_->body_left);
  if (take > 0) downstream_->upstream_answer_body(in, take);
  refusing_->body_left -= take;
  if (refusing_->body_left == 0 || upstream_finished) {
    refusing_->timer.cancel();
    bufferevent_setcb(refusing_->upstream.get(), nullptr, nullptr, nullptr, nullptr);
    // The timer may be the caller: the rest goes with the exchange.
    refusing_->upstream.reset();
    state_ = State::Answered;
    downstream_->end_upstream_answer();
  }
}

}  // namespace wsgate::gateway
