// Forward auth (conf::ForwardAuth, [route.auth] type = "forward"): one subrequest to an HTTP
// auth service decides whether a request may go on, as nginx's auth_request, Traefik's
// ForwardAuth and Envoy's ext_authz do. The subrequest goes to the auth service's
// [[upstream]] through the same connector, balancer and per-worker keep-alive pool as
// forwarded requests (proxy/upstream/upstream_connector.h, idle_pool.h).
//
//   GET <path> HTTP/1.1, with X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host,
//   X-Forwarded-Proto and X-Forwarded-For naming the client's request, the configured
//   request header fields, and no body.
//   2xx              -> Allowed; the configured response header fields go to the upstream.
//   401, 403, other  -> Denied; the status, its body (at most kMaxAnswerBody) and the
//                       fields a client needs (WWW-Authenticate, Location, Content-Type,
//                       Set-Cookie, ...) go back to the client.
//   no answer within the timeout, unreachable, malformed -> Failed (503, or allowed with
//                       failure_mode_allow; the step decides).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "proxy/codec/request_head.h"

namespace wsgate::proxy {

inline constexpr std::size_t kMaxAnswerBody = 64 * 1024;

struct ForwardAuthVerdict {
  enum class Kind { Allowed, Denied, Failed };
  Kind kind = Kind::Failed;
  // Allowed: the configured response_headers the service sent, for the upstream request.
  http::Fields upstream_fields;
  // Denied: the service's status, the fields passed to the client, and its body.
  int status = 0;
  http::ExtraFields client_fields;
  std::string body;
  // Failed: one line for the log and the 503 ("auth service timed out after 5000ms").
  std::string reason;
  bool cached = false;  // from ForwardAuthCache, no subrequest made
};

}  // namespace wsgate::proxy
