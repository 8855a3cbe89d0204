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
//                       fields a client needs (kClientAnswerFields) go back to the client.
//   no answer within the timeout, unreachable, malformed -> Failed (503, or allowed with
//                       failure_mode_allow; the step decides).
//
// The decision cache is proxy/auth/forward_auth_cache.h.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "metrics/worker_metrics.h"
#include "proxy/codec/http1_body.h"
#include "proxy/codec/http1_parser.h"
#include "proxy/codec/request_head.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/idle_pool.h"
#include "proxy/upstream/upstream_connector.h"
#include "tls/client_context.h"

namespace wsgate::proxy {

inline constexpr std::size_t kMaxAnswerBody = 64 * 1024;

// The only fields of a denying answer passed to the client: the challenge (RFC 9110
// 11.6.1, with 401), a redirect's target (RFC 9110 10.2.2, a login page), the body's type,
// cookies the service sets, and caching and retry advice. Anything else the service sent
// (Server, Date, its own framing, internal headers) stays with the gateway.
inline constexpr std::array<std::string_view, 6> kClientAnswerFields = {
    "www-authenticate", "location", "content-type", "set-cookie", "cache-control", "retry-after"};

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
  // The service said "Cache-Control: no-store": the decision is not cached.
  bool no_store = false;
};

const char* to_string(ForwardAuthVerdict::Kind kind);

// What the subrequest says about the client's connection and where it goes.
struct ForwardAuthFacts {
  // The subrequest's Host: the auth upstream's first server as configured ("auth:9000"),
  // the name the auth service is known by (as the health checks send it), never the
  // client's authority, which goes in X-Forwarded-Host.
  std::string_view host;
  std::string_view client_ip;  // X-Forwarded-For (the client, after trusted proxies)
  std::string_view proto;      // X-Forwarded-Proto: "http" or "https"
  bool keep_alive = true;      // false: "Connection: close" (the upstream's keepalive 0)
};

// The subrequest's head (a pure function, no I/O):
//   GET <forward.path> HTTP/1.1
//   Host, X-Forwarded-Method (the client's method; an RFC 8441 WebSocket stream is GET),
//   X-Forwarded-Uri (its path and query as routed), X-Forwarded-Host (its authority),
//   X-Forwarded-Proto, X-Forwarded-For, every occurrence of each request_headers field
//   in arrival order (names the gateway sets itself, above, and hop-by-hop ones are never
//   copied), Content-Length: 0, and Connection: close without keep_alive.
// No value can hold CR or LF (both parsers refuse them in a request); a value that does
// anyway is left out rather than split the subrequest.
std::string build_forward_auth_request(const conf::ForwardAuth& forward,
                                       const http::RequestHead& request,
                                       const ForwardAuthFacts& facts);

// The verdict for the service's final answer `head` and its (bounded) `body`:
// 2xx -> Allowed with every occurrence of the configured response_headers; 1xx (only 101
// gets here: the connector skips interim answers) -> Failed; any other status -> Denied
// with kClientAnswerFields and the body.
ForwardAuthVerdict classify_forward_auth_answer(const conf::ForwardAuth& forward,
                                                const http1::ResponseHead& head, std::string body);

// One subrequest, asynchronous on the worker's event_base: pick a server, connect (or take
// an idle pooled connection), send the request, read the answer's head and body, classify.
// One timer covers all of it (forward.timeout). A clean, reusable connection goes back to
// the idle pool afterwards.
//
// Ownership: the owner keeps the check alive until `done` runs; destroying it (or
// cancel()) before stops everything and `done` never runs. `done` runs exactly once, last,
// after the check touched its members for the last time: the owner may destroy the check
// from inside `done`. It never runs from inside start().
class ForwardAuthCheck {
 public:
  using Done = std::function<void(ForwardAuthVerdict&&)>;
  // A finished connector whose callback may still be on the stack: its owner destroys it
  // later (gateway::Worker::retire).
  using Retire = std::function<void(std::unique_ptr<UpstreamConnector>)>;

  struct Context {
    event_base* base = nullptr;
    evdns_base* dns = nullptr;
    const tls::ClientContext* tls = nullptr;   // the auth upstream's TLS (null: plain)
    const conf::Upstream* upstream = nullptr;  // the auth service's [[upstream]]
    ServerSelection servers;
    IdlePool* idle = nullptr;  // the worker's pool; used when upstream->keepalive > 0
    Retire retire;             // required
    metrics::WorkerMetrics* metrics = nullptr;  // auth_subrequest(route, seconds)
    std::string route;                          // the route's name, for the metrics
  };

  ForwardAuthCheck(Context context, const conf::ForwardAuth& forward, std::string request,
                   Done done);
  ~ForwardAuthCheck();
  ForwardAuthCheck(const ForwardAuthCheck&) = delete;
  ForwardAuthCheck& operator=(const ForwardAuthCheck&) = delete;

  void start();
  void cancel();

 private:
  enum class State { Idle, Connecting, ReadingBody, Done };

  void on_answer(UpstreamResult&& result);
  static void on_read(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  void read_body();
  void body_complete();
  void keep_connection();
  // The deadline, or a verdict reached inside start() to be delivered now.
  void on_timer();
  void fail(std::string reason);
  std::string timed_out() const;
  // Ends the check: stops what runs, records the duration, then delivers the verdict.
  void finish(ForwardAuthVerdict verdict);
  // Runs `done`, the last thing the check does.
  void deliver(ForwardAuthVerdict verdict);
  void release_connection();

  Context ctx_;
  const conf::ForwardAuth& forward_;
  std::string request_;
  Done done_;
  State state_ = State::Idle;
  bool starting_ = false;                      // inside start()
  std::optional<ForwardAuthVerdict> pending_;  // reached inside start(), delivered next
  Timer timer_;
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<UpstreamConnector> connector_;
  // Once answered: the connection, its server slot, the head and the body read so far.
  UpstreamConnection bev_;
  ServerLease lease_;
  http1::ResponseHead head_;
  http1::BodyDecoder decoder_;
  std::string body_;
  std::string server_;  // "host:port" of the server that answered, for reasons
  bool reusable_ = false;
  bool eof_ = false;
};

}  // namespace wsgate::proxy
