// Checks of the client's opening handshake over HTTP/1.1 (RFC 6455 4.2.1), in the order
// a client can best act on: method and version first, then "is this an upgrade at all",
// then the WebSocket fields, then the route's Origin policy.
#include "gateway/websocket_handshake.h"

#include <utility>

#include "proxy/websocket_key.h"

namespace wsgate::gateway {
namespace {

using http1::header_has_token;
using http1::iequals;
using http1::RequestHead;

HandshakeVerdict reject(int status, std::string reason) {
  HandshakeVerdict v;
  v.status = status;
  v.reason = std::move(reason);
  return v;
}

// True when any field named `name` lists `token`: list fields may be split over several
// lines (RFC 9110 5.3), e.g. "Connection: keep-alive" + "Connection: Upgrade".
bool any_has_token(const RequestHead& head, std::string_view name, std::string_view token) {
  for (const http1::Header& h : head.headers) {
    if (iequals(h.name, name) && header_has_token(h.value, token)) return true;
  }
  return false;
}

}  // namespace

HandshakeVerdict validate_upgrade_request(const RequestHead& head,
                                          const std::vector<std::string>& allowed_origins) {
  // RFC 6455 4.2.1 item 1: the method MUST be GET; RFC 9110 15.5.6: 405 carries Allow.
  if (head.method != "GET") {
    HandshakeVerdict v = reject(405, "WebSocket handshake requires GET");
    v.headers.emplace_back("Allow", "GET");
    return v;
  }
  // RFC 6455 4.2.1 item 1: HTTP/1.1 or higher (the parser only admits 1.0 and 1.1).
  if (head.version_minor < 1) return reject(400, "WebSocket handshake requires HTTP/1.1");

  // RFC 9112 3.2: exactly one Host; RFC 6455 4.2.1 item 2: it names the server.
  const std::size_t hosts = head.count("Host");
  if (hosts == 0) return reject(400, "missing Host header");
  if (hosts > 1) return reject(400, "more than one Host header");
  if (head.find("Host")->value.empty()) return reject(400, "empty Host header");

  // Not an upgrade at all: tell the client what this endpoint speaks (RFC 9110 15.5.22
  // 426 with Upgrade).
  if (head.count("Upgrade") == 0) {
    HandshakeVerdict v = reject(426, "this endpoint speaks WebSocket only");
    v.headers.emplace_back("Upgrade", "websocket");
    v.headers.emplace_back("Connection", "Upgrade");
    return v;
  }
  // RFC 6455 4.2.1 item 3: Upgrade contains "websocket" (case-insensitive).
  if (!any_has_token(head, "Upgrade", "websocket")) {
    return reject(400, "Upgrade header does not contain \"websocket\"");
  }
  // RFC 6455 4.2.1 item 4: Connection contains "Upgrade" (case-insensitive).
  if (!any_has_token(head, "Connection", "upgrade")) {
    return reject(400, "Connection header does not contain \"Upgrade\"");
  }

  // RFC 6455 4.2.1 item 6 and 4.4: only version 13; answer 426 naming the versions we
  // speak. RFC 6455 11.3.5: the field appears at most once in a request.
  const std::size_t versions = head.count("Sec-WebSocket-Version");
  if (versions > 1) return reject(400, "more than one Sec-WebSocket-Version header");
  if (versions == 0 || head.find("Sec-WebSocket-Version")->value != "13") {
    HandshakeVerdict v = reject(426, versions == 0 ? "missing Sec-WebSocket-Version, use 13"
                                                   : "unsupported Sec-WebSocket-Version, use 13");
    v.headers.emplace_back("Sec-WebSocket-Version", "13");
    return v;
  }

  // RFC 6455 4.2.1 item 5 and 11.3.1: exactly one key, base64 of 16 bytes.
  const std::size_t keys = head.count("Sec-WebSocket-Key");
  if (keys == 0) return reject(400, "missing Sec-WebSocket-Key header");
  if (keys > 1) return reject(400, "more than one Sec-WebSocket-Key header");
  if (!ws::is_valid_key(head.find("Sec-WebSocket-Key")->value)) {
    return reject(400, "invalid Sec-WebSocket-Key, must be base64 of 16 bytes");
  }

  // RFC 6455 10.2: browsers send Origin; a server that serves only some sites checks it
  // (cross-site WebSocket hijacking). Exact match, ignoring ASCII case: scheme and host
  // are case-insensitive (RFC 6454 4).
  if (!allowed_origins.empty()) {
    const std::size_t origins = head.count("Origin");
    if (origins == 0) return reject(403, "missing Origin header");
    if (origins > 1) return reject(403, "more than one Origin header");
    const std::string_view origin = head.find("Origin")->value;
    bool allowed = false;
    for (const std::string& o : allowed_origins) {
      if (iequals(origin, o)) {
        allowed = true;
        break;
      }
    }
    if (!allowed) return reject(403, "origin not allowed");
  }

  return HandshakeVerdict{};
}

}  // namespace wsgate::gateway
