#include "gateway/exchange/tunnel_exchange.h"

#include <utility>

#include "gateway/exchange/proxy_auth.h"
#include "gateway/worker.h"
#include "proxy/connect/connect_acl.h"

namespace wsgate::gateway {

TunnelExchange::TunnelExchange(ExchangeContext ctx, Downstream& downstream,
                               http::RequestHead&& request)
    : Exchange(std::move(ctx), downstream, std::move(request)) {}

TunnelExchange::~TunnelExchange() {
  if (dialer_) dialer_->cancel();
}

void TunnelExchange::decide() {
  if (!listener_.connect) {
    refuse({405, "CONNECT tunnels are not enabled on this listener", {{"Allow", "GET"}}});
    return;
  }
  target_ = request_->authority.substr(0, 256);
  // RFC 9110 9.3.6: a CONNECT request has no content.
  const http::Field* length = request_->find("content-length");
  if (request_->find("transfer-encoding") != nullptr ||
      (length != nullptr && length->value != "0")) {
    refuse({400, "a CONNECT request carries no body (RFC 9110 9.3.6)", {}});
    return;
  }
  proxy::connect::AuthorityResult target = proxy::connect::parse_authority(request_->authority);
  if (!target.authority) {
    refuse({400, std::move(target.error), {}});
    return;
  }
  const conf::Connect& settings = config_->connect;
  if (!settings.users.empty()) {
    const http::Field* credentials = request_->find("proxy-authorization");
    const std::string_view value = credentials != nullptr ? credentials->value : std::string_view();
    ProxyAuthResult auth = check_proxy_authorization(
        settings.users, credentials != nullptr ? &value : nullptr, facts_.client_ip);
    if (!auth.ok()) {
      refuse(std::move(auth.refusal));  // 407, or 503 when the PBKDF2 budget is spent
      return;
    }
    user_ = std::move(auth.value);
  }
  state_ = State::ConnectingUpstream;
  dialer_ = std::make_unique<proxy::ConnectDialer>(
      worker_.base(), worker_.dns(), settings, std::move(*target.authority),
      [this](proxy::DialResult&& r) { on_dialed(std::move(r)); });
  dialer_->start();
}

void TunnelExchange::on_dialed(proxy::DialResult&& result) {
  upstream_addr_ = result.address;
  if (!result.connection) {
    refuse(std::move(result.refusal));
    return;
  }
  const conf::Connect& c = config_->connect;
  proxy::RelaySettings settings;
  settings.tunnel = true;
  settings.buffer_size = c.buffer_size;
  settings.idle_timeout = c.idle_timeout;
  ClientChannel client = downstream_->accept_tunnel();
  begin_relaying(200, std::move(client), std::move(result.connection), /*upstream_plain=*/true,
                 settings);
}

}  // namespace wsgate::gateway
