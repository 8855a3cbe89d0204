// WebSocket opening handshakes between HTTP/2 (RFC 8441 extended CONNECT) and
// HTTP/1.1 (RFC 6455 Upgrade), as pure functions: header lists and heads in, header
// lists and heads out, no I/O (STYLE.md habit 8). An HTTP/2 WebSocket stream is mapped
// to the HTTP/1.1 request the rest of the gateway already understands, and the HTTP/1.1
// answer is mapped back to HTTP/2 response headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http1_parser.h"

namespace wsgate::gateway::h2map {

struct Field {
  std::string name;  // HTTP/2 field names are lowercase (RFC 9113 8.2.1)
  std::string value;
  bool operator==(const Field&) const = default;
};
using Fields = std::vector<Field>;

struct RequestMapping {
  int status = 0;      // 0: `head` is the request; otherwise the status to answer with
  std::string reason;  // one line, for the response body and the access log
  std::string head;    // the HTTP/1.1 upgrade request head, CRLFCRLF included
  [[nodiscard]] bool ok() const { return status == 0; }
};

// One HTTP/2 request's header list (pseudo-header fields included, in arrival order)
// -> an HTTP/1.1 WebSocket upgrade request with `key` as its Sec-WebSocket-Key:
//   GET <:path> HTTP/1.1, Host: <:authority>, Upgrade: websocket, Connection: Upgrade,
//   Sec-WebSocket-Key: <key>, then every regular field (cookie fields joined with "; ",
//   RFC 9113 8.2.3), names as received.
// Refusals (checked in this order):
//  - malformed field blocks (RFC 9113 8.2.1, 8.2.2, 8.3): a pseudo-header after a regular
//    field, an unknown or repeated pseudo-header, an uppercase or invalid name, a value
//    with NUL/CR/LF or surrounding whitespace, a connection-specific field -> 400
//  - no :method -> 400; :protocol on a method other than CONNECT -> 400 (RFC 8441 4)
//  - a method other than CONNECT -> 426 (this endpoint speaks WebSocket only)
//  - CONNECT without :protocol (a tunnel, RFC 9113 8.5) -> 501
//  - :protocol other than "websocket" -> 501 (RFC 8441 4)
//  - missing :scheme, :path or :authority -> 400 (RFC 8441 4); :scheme not http/https
//    (RFC 8441 5), :path not starting with "/", :authority with userinfo -> 400
// Everything else (Sec-WebSocket-Version, Origin policy, routing) is left to the
// HTTP/1.1 path the request goes through next, so HTTP/2 and HTTP/1.1 share one set of
// rules. A client's own sec-websocket-key is dropped (RFC 8441 5: not used over h2).
RequestMapping extended_connect_to_h1(const Fields& fields, std::string_view key);

// A plain CONNECT (a tunnel, RFC 9113 8.5): :method CONNECT without :protocol.
bool is_tunnel_request(const Fields& fields);

// A plain CONNECT stream -> `CONNECT <:authority> HTTP/1.1` with Host: <:authority> and
// every regular field (proxy-authorization included, so the HTTP/1.1 path does the
// same checks). Refusals: a malformed field block (as above) -> 400; RFC 9113 8.5: a
// missing :authority, or a :scheme or :path present -> 400. The authority's own form is
// checked on the HTTP/1.1 path (400 there).
RequestMapping tunnel_connect_to_h1(const Fields& fields);

// The inverse, for round-trip tests and for HTTP/2 clients of HTTP/1.1 heads: an
// HTTP/1.1 upgrade request -> :method CONNECT, :protocol websocket, :scheme `scheme`,
// :path, :authority (from Host), then the end-to-end fields lowercased, without
// Host, Upgrade, Connection, Sec-WebSocket-Key and the other hop-by-hop fields.
Fields h1_upgrade_to_extended_connect(const http1::RequestHead& head, std::string_view scheme);

struct ResponseMapping {
  Fields fields;                  // :status first
  bool websocket = false;         // the backend accepted: DATA frames carry WebSocket bytes
  bool has_body = false;          // a refusal with a body follows as DATA frames
  bool body_until_close = false;  // no Content-Length: the body ends when the H1 side ends
  uint64_t content_length = 0;
};

// An HTTP/1.1 response head -> HTTP/2 response fields.
//  - 101 -> :status 200 (RFC 8441 5), with the end-to-end fields (sec-websocket-protocol,
//    sec-websocket-extensions, set-cookie, ...); Sec-WebSocket-Accept, Content-Length and
//    hop-by-hop fields are dropped (RFC 9110 9.3.6: no Content-Length on a 2xx to CONNECT).
//  - any other status passes as it is, with its end-to-end fields (names lowercased;
//    RFC 9113 8.2.2: connection-specific fields dropped); its body follows.
ResponseMapping h1_response_to_h2(const http1::ResponseHead& head);

// The inverse for a successful handshake, for round-trip tests: HTTP/2 response fields
// -> an HTTP/1.1 head (:status 200 -> 101 with Upgrade, Connection and the accept value
// for `key`; other statuses as they are).
std::string h2_response_to_h1(const Fields& fields, std::string_view key);

}  // namespace wsgate::gateway::h2map
