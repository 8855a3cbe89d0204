// Session affinity by a gateway-set cookie (issue 15; HAProxy's "cookie SRV insert",
// nginx's "sticky cookie"): an upstream with affinity_cookie = "NAME" gets
// "Set-Cookie: NAME=<value>" on forwarded responses, <value> naming the server that
// answered; a later request or WebSocket upgrade carrying the cookie goes to that server
// while it can take it (balancer.h: ServerSelection tries it first). Frameworks whose
// session lives on one server (Socket.IO, SignalR) need this: their session id is made
// by the server, so no hash of the request can find it. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "conf/config.h"
#include "proxy/codec/request_head.h"

namespace wsgate::proxy {

// The cookie value naming `server` of upstream `upstream`: 16 hex digits of a stable
// hash of both (the same on every worker, instance and restart). Opaque: it does not
// show the address, though it is no secret (anyone may hash candidate addresses).
std::string affinity_value(std::string_view upstream, const conf::UpstreamServer& server);

// The value of the first cookie named `name` in the request's Cookie fields (RFC 6265
// 5.4: "a=1; b=2", several fields read in order), if any.
std::optional<std::string_view> request_cookie(const http::RequestHead& request,
                                               std::string_view name);

// The Set-Cookie field value: the cookie for the whole site, for this browser session,
// not readable by scripts.
std::string affinity_set_cookie(std::string_view name, std::string_view value);

// The Set-Cookie field value the answer to `request` carries when `server` of `upstream`
// answered it (a forwarded response, a WebSocket 101 or RFC 8441 200), or none: the
// upstream has no affinity_cookie, or the request already names this server. A cookie
// naming another server (down, full, or gone since) is replaced.
std::optional<std::string> affinity_cookie_for(const conf::Upstream& upstream,
                                               const conf::UpstreamServer& server,
                                               const http::RequestHead& request);

}  // namespace wsgate::proxy
