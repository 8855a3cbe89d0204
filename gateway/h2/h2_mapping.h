// HTTP/2 requests and responses to and from the gateway's structured forms, as pure
// functions: field lists in, structured heads out and back, no I/O (STYLE.md habit 8).
// An HTTP/2 stream's request becomes the same protocol-neutral request an HTTP/1.1
// connection produces; an upstream's HTTP/1.1 response head becomes HTTP/2 fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec/http1_parser.h"
#include "proxy/codec/request_head.h"

namespace wsgate::gateway::h2map {

using Field = http::Field;  // HTTP/2 field names are lowercase (RFC 9113 8.2.1)
using Fields = http::Fields;

// One HTTP/2 request's header list (pseudo-header fields included, in arrival order)
// -> the protocol-neutral request (proxy/codec/request_head.h), or a refusal:
//  - malformed field blocks (RFC 9113 8.2.1, 8.2.2, 8.3): a pseudo-header after a regular
//    field, an unknown or repeated pseudo-header, an uppercase or invalid name, a value
//    with NUL/CR/LF or surrounding whitespace, a connection-specific field -> 400
//  - no :method -> 400
//  - CONNECT without :protocol is a tunnel (RFC 9113 8.5): :authority required, :scheme
//    and :path absent (400); the request is CONNECT with the authority as its target
//  - :protocol on a method other than CONNECT -> 400; other than "websocket" -> 501
//    (RFC 8441 4); an extended CONNECT becomes method GET with protocol "websocket"
//  - every other request needs :scheme http/https, a :path starting with "/" and an
//    :authority without userinfo (RFC 9113 8.3.1, RFC 8441 4-5) -> 400
// Regular fields keep their order; Host and a client's sec-websocket-key are dropped
// (RFC 9113 8.3.1, RFC 8441 5) and cookie crumbs are joined (RFC 9113 8.2.3). What the
// request may do (routing, Sec-WebSocket-Version, Origin, tunnels) is the exchange's
// to decide, with the same rules as for HTTP/1.1.
http::Checked<http::RequestHead> request_from_h2(const Fields& fields);

// The inverse, for round-trip tests and for HTTP/2 clients of HTTP/1.1 heads: an
// HTTP/1.1 upgrade request -> :method CONNECT, :protocol websocket, :scheme `scheme`,
// :path, :authority (from Host), then the end-to-end fields lowercased, without
// Host, Upgrade, Connection, Sec-WebSocket-Key and the other hop-by-hop fields.
Fields h1_upgrade_to_extended_connect(const http1::RequestHead& head, std::string_view scheme);

struct ResponseMapping {
  Fields fields;                  // :status first
  bool websocket = false;         // the upstream accepted: DATA frames carry WebSocket bytes
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

// A forwarded request's response (HTTP forwarding; its hop-by-hop fields are already
// gone, proxy/codec/http_forward.h) -> HTTP/2 response fields: :status first, names
// lowercased (RFC 9113 8.2.1), connection-specific fields dropped (RFC 9113 8.2.2), and
// content-length when the content has a known length (RFC 9113 8.1.1: it must then
// match the DATA sent). Content of unknown length ends with END_STREAM instead.
Fields forwarded_response_to_h2(const http::ResponseHead& head);

// The inverse for a successful handshake, for round-trip tests: HTTP/2 response fields
// -> an HTTP/1.1 head (:status 200 -> 101 with Upgrade, Connection and the accept value
// for `key`; other statuses as they are).
std::string h2_response_to_h1(const Fields& fields, std::string_view key);

}  // namespace wsgate::gateway::h2map
