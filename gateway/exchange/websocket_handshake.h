// The WebSocket opening handshake rules that hold whatever protocol the client spoke
// (RFC 6455 4.2.1 over HTTP/1.1, RFC 8441 over HTTP/2), checked by the WebSocket
// exchange on the protocol-neutral request once its route is known. Pure.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "proxy/codec/http1_parser.h"
#include "proxy/codec/request_head.h"

namespace wsgate::gateway {

// A route's Origin rule (conf::Route allowed_origins, require_origin). Origin is what a
// browser sends so that a server can refuse pages of other sites (RFC 6455 10.2); other
// clients send none, or any value they like, so by default a request without Origin is
// not a browser's and passes. `required` (strict mode) refuses it too.
struct OriginPolicy {
  std::span<const std::string> allowed;  // lowercase origins; empty: any Origin passes
  bool required = false;                 // with `allowed`: no Origin -> 403
};

// In this order:
//  - not a WebSocket request: a method other than GET -> 405 with Allow: GET; else 426
//    "this endpoint speaks WebSocket only" with Upgrade: websocket (RFC 9110 15.5.22)
//  - an HTTP/1.1 upgrade's own defect (RequestHead::upgrade_refusal)
//  - Sec-WebSocket-Version: more than one -> 400 (RFC 6455 11.3.5); missing or not 13
//    -> 426 with Sec-WebSocket-Version: 13 (RFC 6455 4.4; RFC 8441 5 keeps it for h2)
//  - HTTP/1.x: not exactly one Sec-WebSocket-Key of 16 base64 bytes -> 400
//  - with a non-empty `origins.allowed`: more than one Origin, or one not in the list
//    -> 403 (cross-site WebSocket hijacking); origins compare case-insensitively and
//    exactly ("https://app.example.com"). No Origin -> 403 only if `origins.required`.
std::optional<http::Refusal> check_websocket_request(const http::RequestHead& request,
                                                     OriginPolicy origins);

// An HTTP/1.1 upgrade request's whole check: gateway/h1/h1_request.h, then the above;
// the protocol-neutral request, or the refusal to answer with. For tests and tools; the
// gateway runs the two steps at their own places.
using HandshakeVerdict = http::Checked<http::RequestHead>;
HandshakeVerdict validate_upgrade_request(const http1::RequestHead& head, OriginPolicy origins);

}  // namespace wsgate::gateway
