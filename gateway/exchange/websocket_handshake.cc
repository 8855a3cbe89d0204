#include "gateway/exchange/websocket_handshake.h"

#include "gateway/h1/h1_request.h"
#include "proxy/codec/websocket_key.h"

namespace wsgate::gateway {

std::optional<http::Refusal> check_websocket_request(const http::RequestHead& request,
                                                     OriginPolicy origins) {
  if (!request.is_websocket()) {
    // RFC 6455 4.2.1 item 1 (GET); RFC 9110 15.5.6: 405 carries Allow.
    if (request.method != "GET")
      return http::Refusal{405, "WebSocket handshake requires GET", {{"Allow", "GET"}}};
    // Not an upgrade at all: tell the client what this endpoint speaks (RFC 9110
    // 15.5.22: 426 with Upgrade; an HTTP/2 downstream leaves out the connection fields).
    return http::Refusal{426,
                         "this endpoint speaks WebSocket only",
                         {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}}};
  }
  // RFC 6455 4.2.1 items 1, 3, 4 over HTTP/1.1 (gateway/h1/h1_request.h).
  if (request.upgrade_refusal.status != 0) return request.upgrade_refusal;
  // RFC 6455 4.2.1 item 6 and 4.4: only version 13; answer 426 naming the versions we
  // speak. RFC 6455 11.3.5: the field appears at most once in a request.
  const std::size_t versions = request.count("Sec-WebSocket-Version");
  if (versions > 1) return http::Refusal{400, "more than one Sec-WebSocket-Version header", {}};
  if (versions == 0 || request.find("Sec-WebSocket-Version")->value != "13") {
    return http::Refusal{426,
                         versions == 0 ? "missing Sec-WebSocket-Version, use 13"
                                       : "unsupported Sec-WebSocket-Version, use 13",
                         {{"Sec-WebSocket-Version", "13"}}};
  }
  // RFC 6455 4.2.1 item 5 and 11.3.1 (HTTP/1.1; RFC 8441 5: no key over HTTP/2): exactly
  // one key, base64 of 16 bytes.
  if (request.version != http::Version::Http2) {
    const std::size_t keys = request.count("Sec-WebSocket-Key");
    if (keys == 0) return http::Refusal{400, "missing Sec-WebSocket-Key header", {}};
    if (keys > 1) return http::Refusal{400, "more than one Sec-WebSocket-Key header", {}};
    if (!ws::is_valid_key(request.find("Sec-WebSocket-Key")->value))
      return http::Refusal{400, "invalid Sec-WebSocket-Key, must be base64 of 16 bytes", {}};
  }
  // RFC 6455 10.2: browsers send Origin; a server that serves only some sites checks it
  // (cross-site WebSocket hijacking). Exact match, ignoring ASCII case: scheme and host
  // are case-insensitive (RFC 6454 4). Browsers always send it on a WebSocket handshake
  // (RFC 6455 4.1 item 8), so a request without one is no browser's: the check, which
  // only protects browsers, lets it pass unless the route asks for strict mode.
  if (!origins.allowed.empty()) {
    const std::size_t count = request.count("Origin");
    if (count == 0) {
      if (origins.required) return http::Refusal{403, "missing Origin header", {}};
      return std::nullopt;
    }
    if (count > 1) return http::Refusal{403, "more than one Origin header", {}};
    const std::string& origin = request.find("Origin")->value;
    bool allowed = false;
    for (const std::string& o : origins.allowed) allowed = allowed || http::iequals(origin, o);
    if (!allowed) return http::Refusal{403, "origin not allowed", {}};
  }
  return std::nullopt;
}

HandshakeVerdict validate_upgrade_request(const http1::RequestHead& head, OriginPolicy origins) {
  http::Checked<http::RequestHead> mapped = h1::request_from_h1(head, "http");
  if (!mapped.ok()) return mapped;
  if (std::optional<http::Refusal> refusal = check_websocket_request(mapped.value, origins))
    mapped.refusal = std::move(*refusal);
  return mapped;
}

}  // namespace wsgate::gateway
