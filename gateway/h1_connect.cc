// The CONNECT tunnel path of an H1Session (RFC 9110 9.3.6): after the request head,
// instead of routing a WebSocket upgrade, check that the listener serves tunnels, the
// request's form, the proxy user and the allow-list; then resolve and connect the
// target (proxy/connect_dialer.cc), answer 200 and relay raw bytes
// (proxy/relay/tunnel_relay.cc).
// Over HTTP/2 (RFC 9113 8.5) the stream arrives here as the same HTTP/1.1 request
// (gateway/h2_stream.cc), so both share these rules.
#include <event2/buffer.h>

#include "gateway/h1_session.h"
#include "gateway/proxy_auth.h"
#include "gateway/worker.h"
#include "proxy/connect_acl.h"

namespace wsgate::gateway {

void H1Session::handle_connect() {
  if (!listener_.connect) {
    reject(405, "CONNECT tunnels are not enabled on this listener", {{"Allow", "GET"}});
    return;
  }
  tunnel_target_.assign(head_.target.substr(0, 256));
  // RFC 9110 9.3.6: a CONNECT request has no content.
  const http1::Header* length = head_.find("content-length");
  if (head_.find("transfer-encoding") != nullptr || (length != nullptr && length->value != "0")) {
    reject(400, "a CONNECT request carries no body (RFC 9110 9.3.6)");
    return;
  }
  proxy::connect::AuthorityResult target = proxy::connect::parse_authority(head_.target);
  if (!target.authority) {
    reject(400, std::move(target.error));
    return;
  }
  const conf::Connect& settings = config_->connect;
  if (!settings.users.empty()) {
    const http1::Header* credentials = head_.find("proxy-authorization");
    ProxyAuthResult auth =
        check_proxy_authorization(settings.users, credentials ? &credentials->value : nullptr);
    if (!auth.ok && auth.status == 503) {
      // The worker's PBKDF2 budget is spent (gateway/proxy_auth.h); RFC 9110 10.2.3.
      reject(503, std::move(auth.reason), {{"Retry-After", "1"}});
      return;
    }
    if (!auth.ok) {
      // RFC 9110 15.5.8: a 407 carries Proxy-Authenticate.
      reject(407, std::move(auth.reason),
             {{"Proxy-Authenticate", std::string(kProxyAuthenticate)}});
      return;
    }
    proxy_user_ = std::move(auth.user);
  }
  state_ = State::ConnectingUpstream;
  dialer_ = std::make_unique<proxy::ConnectDialer>(
      worker_.base(), worker_.dns(), settings, std::move(*target.authority),
      [this](proxy::DialResult&& r) { on_tunnel_dialed(std::move(r)); });
  dialer_->start();
}

void H1Session::on_tunnel_dialed(proxy::DialResult&& result) {
  upstream_addr_ = result.address;
  if (!result.connection) {
    reject(result.status, std::move(result.reason));
    return;
  }
  answered(200);
  relay_counts_ = worker_.metrics().relay_started(labels(), seconds_since_accept());
  state_ = State::Relaying;
  timer_.cancel();
  bufferevent_setwatermark(client_.get(), EV_READ, 0, 0);
  // RFC 9110 9.3.6: any 2xx turns the connection into a tunnel; it has no content.
  constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
  bufferevent_write(client_.get(), kEstablished.data(), kEstablished.size());

  const conf::Connect& c = config_->connect;
  proxy::RelaySettings settings;
  settings.tunnel = true;
  settings.buffer_size = c.buffer_size;
  settings.idle_timeout = c.idle_timeout;
  relay_ = std::make_unique<proxy::Relay>(
      worker_.base(), std::move(client_), client_is_plain_socket_, std::move(result.connection),
      /*upstream_is_plain=*/true, settings, stats_, [this] { finish({}); });
  // Bytes the client sent right behind its request (a TLS ClientHello) go first.
  relay_->start();
  head_ = http1::RequestHead();
}

}  // namespace wsgate::gateway
