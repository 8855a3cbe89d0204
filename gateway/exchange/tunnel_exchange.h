// A CONNECT tunnel (RFC 9110 9.3.6 over HTTP/1.1, RFC 9113 8.5 over HTTP/2), whatever
// protocol the client spoke: the listener must serve tunnels, the request carries no
// body, the target parses, the proxy user authenticates, the allow-list admits the
// target; then resolve and connect it (proxy/connect/connect_dialer.h), answer 2xx and relay raw
// bytes.
#pragma once

#include <memory>

#include "gateway/exchange/exchange.h"
#include "proxy/connect/connect_dialer.h"

namespace wsgate::gateway {

class TunnelExchange final : public Exchange {
 public:
  TunnelExchange(ExchangeContext ctx, Downstream& downstream, http::RequestHead&& request);
  ~TunnelExchange() override;
  bool is_tunnel() const override { return true; }

 private:
  void decide() override;
  void stop_upstream_work() override {
    if (dialer_) dialer_->cancel();
  }
  void on_dialed(proxy::DialResult&& result);

  std::unique_ptr<proxy::ConnectDialer> dialer_;
};

}  // namespace wsgate::gateway
