// The WebSocket opening handshake rules that hold whatever protocol the client spoke
// (RFC 6455 4.2.1 over HTTP/1.1, RFC 8441 over HTTP/2), checked by the WebSocket
// exchange on the protocol-neutral request once its route is known. Pure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/codec/request_head.h"
#include "proxy/http1_parser.h"

namespace wsgate::gateway {

// In this order:
//  - not a WebSocket request: a method other than GET -> 405 with Allow: GET; else 426
//    "this endpoint speaks WebSocket only" with Upgrade: websocket (RFC 9110 15.5.22)
//  - an HTTP/1.1 upgrade's own defect (RequestHead::upgrade_refusal)
//  - Sec-WebSocket-Version: more than one -> 400 (RFC 6455 11.3.5); missing or not 13
//    -> 426 with Sec-WebSocket-Version: 13 (RFC 6455 4.4; RFC 8441 5 keeps it for h2)
//  - HTTP/1.x: not exactly one Sec-WebSocket-Key of 16 base64 bytes -> 400
//  - Origin not in a non-empty allowed_origins -> 403 (cross-site WebSocket hijacking);
//    origins compare case-insensitively and exactly ("https://app.example.com").
std::optional<http::Refusal> check_websocket_request(
    const http::RequestHead& request, const std::vector<std::string>& allowed_origins);

// An HTTP/1.1 upgrade request's whole check: gateway/h1/h1_request.h, then the above.
// For tests and tools; the gateway runs the two steps at their own places.
struct HandshakeVerdict {
  int status = 0;      // 0: valid upgrade; otherwise the HTTP status to answer with
  std::string reason;  // one line for the response body and the access log
  http::ExtraFields headers;
  [[nodiscard]] bool ok() const { return status == 0; }
};
HandshakeVerdict validate_upgrade_request(const http1::RequestHead& head,
                                          const std::vector<std::string>& allowed_origins);

}  // namespace wsgate::gateway
