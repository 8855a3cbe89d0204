// A WebSocket request, whatever protocol the client spoke: route (host, path) -> policy
// (Sec-WebSocket-Version, Origin) -> [route.auth] (auth_step.h) -> balancer -> upstream
// connector (HTTP/1.1 upgrade with the gateway's own key) -> the 101 check
// (proxy/codec/websocket_upgrade_check.h) -> answer the client -> relay. An upstream that answers
// with anything but 101 has its answer passed to the client (body bounded).
#pragma once

#include <memory>
#include <string>

#include "gateway/exchange/exchange.h"
#include "proxy/upstream/upstream_connector.h"

namespace wsgate::gateway {

class WebSocketExchange final : public Exchange {
 public:
  WebSocketExchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request);
  ~WebSocketExchange() override;

 private:
  void decide() override;
  void connect_upstream();  // allowed by the route's auth: on to the upstream
  void stop_upstream_work() override {
    if (connector_) connector_->cancel();
  }
  void on_upstream(proxy::UpstreamResult&& result);
  void forward_refusal(proxy::UpstreamResult&& result);
  void pump_refusal(bool upstream_finished);
  static void on_refusal_read(bufferevent* bev, void* self);
  static void on_refusal_event(bufferevent* bev, short what, void* self);

  std::unique_ptr<proxy::UpstreamConnector> connector_;
  std::string key_;  // the Sec-WebSocket-Key sent upstream; freed once the 101 is checked
  // An upstream's refusal being passed on (ForwardingRefusal only): made then, so a
  // relayed WebSocket holds none of it (issue 13).
  struct Refusing {
    Refusing(event_base* base, WebSocketExchange* e)
        : timer(base, [e] { e->pump_refusal(true); }) {}
    BufferEventPtr upstream;
    uint64_t body_left = 0;
    Timer timer;  // the body must arrive within upstream_handshake_timeout
  };
  std::unique_ptr<Refusing> refusing_;
};

}  // namespace wsgate::gateway
