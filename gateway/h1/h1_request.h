// HTTP/1.1 request head -> the protocol-neutral request (proxy/codec/request_head.h).
// Pure: no I/O. The rules that only HTTP/1.1 has are enforced here, so the exchanges
// never see them: Host (RFC 9112 3.2), the Upgrade mechanism of RFC 6455 4.2.1 and its
// hop-by-hop fields (RFC 9110 7.6.1), the absolute-form target (RFC 9112 3.2.2).
#pragma once

#include <string_view>

#include "proxy/codec/request_head.h"
#include "proxy/http1_parser.h"

namespace wsgate::gateway::h1 {

// `scheme`: "https" on a TLS connection, else "http".
//  - CONNECT: authority = the request-target; every field but Host is kept (the tunnel
//    checks Proxy-Authorization and the absence of a body).
//  - otherwise: exactly one non-empty Host (400); an absolute-form target gives the
//    authority and the path (origin-form "/" when it has none); hop-by-hop fields
//    (Connection and the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
//    Transfer-Encoding, Upgrade) are dropped.
//  - with an Upgrade field: protocol = "websocket", and what RFC 6455 4.2.1 asks of the
//    HTTP/1.1 form (GET: 405 with Allow; HTTP/1.1, Upgrade lists "websocket",
//    Connection lists "upgrade": 400) is recorded as its upgrade_refusal, answered by
//    the WebSocket exchange after routing.
http::Checked<http::RequestHead> request_from_h1(const http1::RequestHead& head,
                                                 std::string_view scheme);

}  // namespace wsgate::gateway::h1
