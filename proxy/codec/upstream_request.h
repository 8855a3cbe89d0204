// Builds the opening-handshake request wsgate sends to an upstream from the
// protocol-neutral request (HTTP/1.1 to the upstream, whatever the client spoke). Pure
// function: no I/O.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "proxy/codec/request_head.h"

namespace wsgate::proxy {

struct ForwardedFor {
  std::string_view client_ip;            // appended to X-Forwarded-For
  std::string_view proto;                // X-Forwarded-Proto: "http" or "https"
  std::string_view client_cert_subject;  // X-Client-Cert-Subject when a client cert was verified
};

// "GET <path> HTTP/1.1", Host: <authority>, then every end-to-end field of the request
// (Origin, Cookie, Sec-WebSocket-Version/-Protocol/-Extensions, ...) except hop-by-hop
// ones (RFC 9110 7.6.1: Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authorization, Proxy-Authenticate), then
// "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: <key>" and
// X-Forwarded-For/-Proto/-Host, and X-Client-Cert-Subject for a verified client
// certificate. Client-sent X-Forwarded-Proto, X-Forwarded-Host, X-Client-Cert-Subject
// and Sec-WebSocket-Key are dropped: only the gateway sets them.
std::string build_upstream_request(const http::RequestHead& request, const ForwardedFor& fwd,
                                   std::string_view key);

// What every request to an upstream carries after its request line (the WebSocket
// handshake above, a forwarded request in proxy/codec/http_forward.h): Host (the
// request's authority), every end-to-end field of `request` except the hop-by-hop ones,
// the gateway-only ones and those in `also_drop` (lower case), then X-Forwarded-For (the
// client's list plus its address), -Proto, -Host, and X-Client-Cert-Subject for a
// verified client certificate.
void append_forwarded_fields(std::string& out, const http::RequestHead& request,
                             const ForwardedFor& fwd,
                             std::initializer_list<std::string_view> also_drop);
void append_field(std::string& out, std::string_view name, std::string_view value);

}  // namespace wsgate::proxy
