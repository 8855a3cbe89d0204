// HTTP forwarding's two head mappings (issue 15): the request wsgate sends an upstream
// for an ordinary (non-upgrade) client request, and the upstream's response head as the
// client side gets it. Pure functions, no I/O; the bodies stream separately
// (proxy/codec/http1_body.h).
#pragma once

#include <string>

#include "proxy/codec/http1_body.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/request_head.h"
#include "proxy/codec/upstream_request.h"

namespace wsgate::proxy {

// "<method> <path> HTTP/1.1", Host: <authority> (kept as the client sent it), every
// end-to-end field except the gateway-only ones (as build_upstream_request), Expect
// dropped (the gateway answers 100-continue itself), then X-Forwarded-For/-Proto/-Host
// and X-Client-Cert-Subject, then "Transfer-Encoding: chunked" when `chunked` (a body
// of unknown length; the caller sends it chunk-encoded), and "Connection: close" unless
// `keep_alive` (the connection may carry later requests: HTTP/1.1's default). With `via`,
// a Via field naming the gateway as the recipient of the client's request comes last.
std::string build_forward_request(const http::RequestHead& request, const ForwardedFor& fwd,
                                  bool chunked, bool keep_alive = false, bool via = false);

// RFC 9110 7.6.3: the Via member a proxy adds for a message it received over `version`
// ("1.0 wsgate", "1.1 wsgate", "2 wsgate"; the received-by is a pseudonym, never an
// address). Appended as one more Via field line, which joins any earlier ones' list
// (RFC 9110 5.3), so the intermediaries before the gateway stay listed first.
std::string_view via_member(http::Version version);

// The upstream's head without its hop-by-hop fields (RFC 9110 7.6.1: Connection and the
// fields it names, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
// Upgrade), with `framing` (response_body_framing) as its Body; with `via`, a Via field
// naming the gateway as the recipient of the upstream's response comes last.
http::ResponseHead response_for_client(const http1::ResponseHead& head,
                                       const http1::BodyFraming& framing, bool via = false);

}  // namespace wsgate::proxy
