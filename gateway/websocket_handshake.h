// Validation of a client's WebSocket opening handshake over HTTP/1.1 (RFC 6455 4.2.1).
// Pure: takes a parsed request head and the route's policy, returns a verdict.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/http1_parser.h"

namespace wsgate::gateway {

struct HandshakeVerdict {
  int status = 0;      // 0: valid upgrade; otherwise the HTTP status to answer with
  std::string reason;  // one line for the response body and the access log
  // Extra response headers for the error (426 carries "Sec-WebSocket-Version: 13").
  std::vector<std::pair<std::string, std::string>> headers;
  [[nodiscard]] bool ok() const { return status == 0; }
};

// RFC 6455 4.2.1: GET, HTTP/1.1, Host present (exactly one), Upgrade contains the token
// "websocket", Connection contains the token "upgrade" (case-insensitive token lists),
// Sec-WebSocket-Key present once and decoding to 16 bytes, Sec-WebSocket-Version 13.
//  - a request that is not an upgrade at all (no Upgrade header) -> 426 "this endpoint
//    speaks WebSocket only" with "Upgrade: websocket" / "Connection: Upgrade"
//  - wrong/missing Sec-WebSocket-Version -> 426 with Sec-WebSocket-Version: 13
//    (RFC 6455 4.4)
//  - other malformed handshakes -> 400 with the reason; non-GET -> 405
//  - Origin not in a non-empty allowed_origins -> 403 (cross-site WebSocket hijacking);
//    origins compare case-insensitively and exactly ("https://app.example.com").
HandshakeVerdict validate_upgrade_request(const http1::RequestHead& head,
                                          const std::vector<std::string>& allowed_origins);

}  // namespace wsgate::gateway
