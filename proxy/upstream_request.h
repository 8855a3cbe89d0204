// Builds the opening-handshake request wsgate sends to a backend from the client's
// (HTTP/1.1 -> HTTP/1.1). Pure function: no I/O.
#pragma once

#include <string>
#include <string_view>

#include "proxy/http1_parser.h"

namespace wsgate::proxy {

struct ForwardedFor {
  std::string_view client_ip;            // appended to X-Forwarded-For
  std::string_view proto;                // X-Forwarded-Proto: "http" or "https"
  std::string_view client_cert_subject;  // X-Client-Cert-Subject when a client cert was verified
};

// Keeps the request line and every end-to-end header (Host, Origin, Cookie,
// Sec-WebSocket-Key/-Version/-Protocol/-Extensions, ...). Drops hop-by-hop headers
// (RFC 9110 7.6.1: Connection, the headers it names, Keep-Alive, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization), then adds
// "Upgrade: websocket", "Connection: Upgrade" and X-Forwarded-For/-Proto/-Host, and
// X-Client-Cert-Subject for a verified client certificate. Client-sent X-Forwarded-Proto,
// X-Forwarded-Host and X-Client-Cert-Subject are dropped: only the gateway sets them.
std::string build_upstream_request(const http1::RequestHead& head, const ForwardedFor& fwd);

}  // namespace wsgate::proxy
