// The route's [route.auth] check (conf::RouteAuth), one step of an exchange: after the
// route is chosen and before any upstream work, so an unauthenticated request never costs
// a backend connection. WebSocket handshakes (HTTP/1.1 and RFC 8441 streams) and
// forwarded HTTP requests go through the same step.
//
//   jwt:     the token is taken from the request (proxy/auth/token_source.h), verified
//            with the route's keys (proxy/auth/jwt.h), its claims checked; chosen claims
//            become request header fields. Synchronous.
//   forward: a subrequest to the auth service (proxy/auth/forward_auth.h) decides; its
//            2xx lets the request through with chosen answer fields, its other answers go
//            to the client as they are. Asynchronous.
//
// Either way the client's own copies of the header fields the step sets are removed first
// (a client cannot pose as authenticated), the outcome is counted
// (wsgate_auth_decisions_total{route,result}) and a refusal's reason, logged, never holds
// the token.
//
// Ownership: the exchange owns its AuthStep; destroying it (or cancel()) stops a
// subrequest in flight, and `done` is not called after that.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "conf/config.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/request_head.h"
#include "tls/tls_snapshot.h"

namespace wsgate::proxy {
class ForwardAuthCheck;
struct ForwardAuthVerdict;
}  // namespace wsgate::proxy

namespace wsgate::gateway {

class Worker;

struct AuthOutcome {
  // Allowed: the request (with its header fields adjusted) goes on.
  bool allowed = false;
  // Not allowed, our own answer (401 with WWW-Authenticate, 403, 503 ...).
  std::optional<http::Refusal> refusal;
  // Not allowed, the auth service's own answer, passed to the client as it is (forward):
  // its status, the header fields a client needs, and its body (bounded).
  struct ServiceAnswer {
    int status = 0;
    http::ExtraFields fields;
    std::string body;
  };
  std::optional<ServiceAnswer> service_answer;
  // A JWT's "exp": a relayed WebSocket is closed then (JwtAuth::close_on_expiry).
  std::optional<std::chrono::system_clock::time_point> expires;
  // Who the request is from, for the access log's `user`: a JWT's "sub" (a string).
  std::string user;
};

class AuthStep {
 public:
  using Done = std::function<void(AuthOutcome&&)>;

  // `config` and `tls` (the route's key material, tls/jwt_keys.h) are the exchange's and
  // outlive the step.
  AuthStep(Worker& worker, const conf::Config& config, const tls::TlsSnapshot* tls,
           const conf::Route& route);
  ~AuthStep();
  AuthStep(const AuthStep&) = delete;
  AuthStep& operator=(const AuthStep&) = delete;

  // Checks `request` and adjusts its header fields (claims or the service's fields in,
  // spoofed copies and, when configured, the token out); `request` must stay alive until
  // `done` ran. `done` may run before run() returns (jwt, a cached decision) or later.
  void run(http::RequestHead& request, std::string_view client_ip, Done done);
  void cancel();

 private:
  void run_jwt(http::RequestHead& request);
  void run_forward(http::RequestHead& request, std::string_view client_ip);
  // The forward verdict (from the service or the cache) applied to `request`, decided.
  void forward_decided(http::RequestHead& request, proxy::ForwardAuthVerdict&& verdict);
  void decided(AuthOutcome&& outcome, std::string_view result);
  // Removes every field named `name` (case-insensitively): a client's own copy of a field
  // the step sets never reaches the upstream.
  static void remove_client_copies(http::RequestHead& request, std::string_view name);

  Worker& worker_;
  const conf::Config& config_;
  const tls::TlsSnapshot* tls_;
  const conf::Route& route_;
  Done done_;
  // The subrequest in flight (shared_ptr: this header needs no complete type).
  std::shared_ptr<proxy::ForwardAuthCheck> forward_;
};

// The auth service's answer as a response head to pass on (Content-Length for its body,
// Connection: close): for Downstream::begin_upstream_answer.
http1::ResponseHead auth_service_response_head(const AuthOutcome::ServiceAnswer& answer);

// The route needs an AuthStep.
inline bool has_auth(const conf::Route& route) {
  return route.auth.type != conf::RouteAuth::Type::None;
}

}  // namespace wsgate::gateway
