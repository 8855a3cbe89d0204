// Every metric wsgate exposes, in one place (STYLE.md habit 12): its name, help text and
// label names. metrics/exposition.cc builds the families from these, docs/metrics.md
// lists them, metrics/grafana-dashboard.json queries them. Add a metric here first.
#pragma once

#include <array>
#include <string_view>

namespace wsgate::metrics::names {

struct MetricDef {
  std::string_view name;
  std::string_view help;
};

// Label names.
inline constexpr std::string_view kListener = "listener";
inline constexpr std::string_view kRoute = "route";
inline constexpr std::string_view kUpstream = "upstream";
inline constexpr std::string_view kServer = "server";
inline constexpr std::string_view kProtocol = "protocol";
inline constexpr std::string_view kStatus = "status";
inline constexpr std::string_view kDirection = "direction";
inline constexpr std::string_view kOpcode = "opcode";
inline constexpr std::string_view kSide = "side";
inline constexpr std::string_view kCode = "code";
inline constexpr std::string_view kEnd = "end";
inline constexpr std::string_view kVersion = "version";
inline constexpr std::string_view kReason = "reason";
inline constexpr std::string_view kTo = "to";        // the health state a server changed to
inline constexpr std::string_view kId = "id";        // a connection's "<worker>-<n>"
inline constexpr std::string_view kLimit = "limit";  // which [limits] value refused
inline constexpr std::string_view kClass = "class";  // an HTTP status class: "2xx", ..., "none"
inline constexpr std::string_view kCert = "cert";    // a certificate's file, as configured

// The `reason` values of wsgate_accept_errors_total (gateway/accept_backoff.cc).
inline constexpr std::array<std::string_view, 4> kAcceptErrorReasons{"emfile", "enfile", "nomem",
                                                                     "other"};
// The `reason` values of wsgate_proxy_protocol_rejections_total
// (gateway/proxy_header_reader.cc), and the `version` values of
// wsgate_proxy_protocol_headers_total.
inline constexpr std::array<std::string_view, 4> kProxyRejectionReasons{"not_allowed", "malformed",
                                                                        "timeout", "closed"};
inline constexpr std::array<std::string_view, 2> kProxyVersions{"v1", "v2"};
// The `reason` values of wsgate_upstream_connect_failures_total
// (proxy/upstream/upstream_connector.cc): resolve (DNS), connect (refused, unreachable),
// connect_timeout, tls (the handshake with a wss:// upstream), closed (the upstream closed
// before answering), bad_response (not an HTTP response), response_timeout (no answer
// within upstream_handshake_timeout).
inline constexpr std::array<std::string_view, 7> kConnectFailureReasons{
    "resolve", "connect", "connect_timeout", "tls", "closed", "bad_response", "response_timeout"};
// The `reason` values of wsgate_upstream_idle_closes_total (proxy/upstream/idle_pool.cc):
// timeout (keepalive_timeout passed), closed (the server closed it or it failed), data (the
// server sent something on an idle connection, RFC 9112 9.3), evicted (the oldest, to keep
// at most `keepalive` per server).
inline constexpr std::array<std::string_view, 4> kIdleCloseReasons{"timeout", "closed", "data",
                                                                   "evicted"};
// Label values that are not copied from the config or the traffic.
inline constexpr std::string_view kClientToUpstream = "client_to_upstream";
inline constexpr std::string_view kUpstreamToClient = "upstream_to_client";
inline constexpr std::string_view kStatusNone = "none";  // the client left before an answer
inline constexpr std::string_view kUp = "up";
inline constexpr std::string_view kDown = "down";
// The `limit` label's values: the [limits] ones (gateway::to_string(gateway::Limit) gives
// the same names), then the HTTP/2 new-stream rate per connection (gateway/h2_session.cc).
inline constexpr std::string_view kLimitH2StreamRate = "h2_stream_rate";
inline constexpr std::array<std::string_view, 5> kLimitValues{
    "max_connections", "per_client", "rate", "client_table", kLimitH2StreamRate};

// WebSocket connections (after the 101), by listener/route/upstream/server/protocol.
inline constexpr MetricDef kConnectionsActive{"wsgate_connections_active",
                                              "WebSocket connections being relayed now."};
inline constexpr MetricDef kConnectionsTotal{
    "wsgate_connections_total", "WebSocket connections established (101 sent to the client)."};
// Opening handshakes, by listener and the status the client got.
inline constexpr MetricDef kHandshakesTotal{
    "wsgate_handshakes_total",
    "Opening handshakes by the HTTP status the client got (\"none\": it left before any)."};
inline constexpr MetricDef kHandshakeDuration{
    "wsgate_handshake_duration_seconds",
    "From accepting the client's TCP connection to relaying the upstream's 101, by route."};
inline constexpr MetricDef kConnectionDuration{
    "wsgate_connection_duration_seconds",
    "Lifetime of relayed WebSocket connections, from accept to close, by route."};
// Forwarded HTTP requests (not upgrades), by route and the class of the status the
// client got.
inline constexpr MetricDef kHttpRequestsTotal{
    "wsgate_http_requests_total",
    "Forwarded HTTP requests (not WebSocket upgrades) by route and the class of the status "
    "the client got (1xx..5xx; \"none\": the exchange ended before a response)."};
// The `class` label's values; a status's class is its hundreds digit ("none": 0).
inline constexpr std::array<std::string_view, 6> kHttpStatusClasses{"none", "1xx", "2xx",
                                                                    "3xx",  "4xx", "5xx"};
inline constexpr MetricDef kHttpRequestDuration{
    "wsgate_http_request_duration_seconds",
    "Forwarded HTTP requests, from the request head to the end of the response, by route."};
// Edge authentication ([route.auth], gateway/exchange/auth_step.h).
inline constexpr MetricDef kAuthDecisionsTotal{
    "wsgate_auth_decisions_total",
    "Requests checked by a route's [route.auth], by route and result (allowed, missing, "
    "invalid, expired, forbidden, denied, failed, failed_allowed)."};
inline constexpr MetricDef kAuthCacheLookupsTotal{
    "wsgate_auth_cache_lookups_total",
    "Forward-auth decision cache lookups, by route and result (hit, miss)."};
inline constexpr MetricDef kAuthSubrequestDuration{
    "wsgate_auth_subrequest_duration_seconds",
    "Forward-auth subrequests, from start to the auth service's complete answer (or "
    "failure), by route."};
inline constexpr MetricDef kAuthExpiredClosesTotal{
    "wsgate_auth_expired_closes_total",
    "Relayed WebSockets closed with 1008 because their JWT expired, by route."};
// Traffic, by direction and the frame's opcode.
inline constexpr MetricDef kFramesTotal{"wsgate_frames_total",
                                        "WebSocket frames relayed, by direction and opcode."};
inline constexpr MetricDef kMessagesTotal{
    "wsgate_messages_total", "WebSocket data messages relayed, by direction and type (opcode)."};
inline constexpr MetricDef kBytesTotal{
    "wsgate_bytes_total",
    "WebSocket wire bytes relayed (frame headers and payloads), by direction and opcode."};
inline constexpr MetricDef kSplicedBytesTotal{
    "wsgate_spliced_bytes_total",
    "Bytes moved from one socket to another by splice(2), never read into the gateway "
    "(WebSocket frame payloads and HTTP request content large enough), by direction."};
inline constexpr MetricDef kTunnelBytesTotal{
    "wsgate_tunnel_bytes_total", "CONNECT tunnel bytes relayed (no frames), by direction."};
inline constexpr MetricDef kClosesTotal{
    "wsgate_closes_total",
    "Ended WebSocket connections by the side that closed first and the close code."};
inline constexpr MetricDef kTunnelEndsTotal{"wsgate_tunnel_ends_total",
                                            "Ended CONNECT tunnels by how they ended (end)."};
inline constexpr MetricDef kPingTimeoutsTotal{
    "wsgate_ping_timeouts_total",
    "Connections ended because a side missed the route's ping_timeout, by that side."};
// TLS at the edge, by listener.
inline constexpr MetricDef kTlsHandshakesTotal{
    "wsgate_tls_handshakes_total", "Completed TLS handshakes with clients, by protocol version."};
inline constexpr MetricDef kTlsHandshakeFailuresTotal{
    "wsgate_tls_handshake_failures_total",
    "Failed TLS handshakes with clients, by OpenSSL's reason (e.g. \"wrong version number\")."};
// Connections refused by [limits], by the limit that refused them.
inline constexpr MetricDef kLimitRejectionsTotal{
    "wsgate_limit_rejections_total",
    "Connections and HTTP/2 WebSocket streams refused by a [limits] value or the HTTP/2 "
    "new-stream rate, by limit."};
// accept(2) failures on the listening sockets, by reason (each pauses accepting).
// What is running (metrics/build_info.h): always 1, the facts are the labels.
inline constexpr MetricDef kBuildInfo{
    "wsgate_build_info",
    "Always 1; labels: wsgate's version and git commit, and the OpenSSL, libevent and nghttp2 "
    "versions it runs with."};
// PROXY protocol on listeners with proxy_protocol = true.
inline constexpr MetricDef kProxyProtocolHeadersTotal{
    "wsgate_proxy_protocol_headers_total",
    "Connections whose PROXY protocol header was read and accepted, by version (v1, v2)."};
inline constexpr MetricDef kProxyProtocolRejectionsTotal{
    "wsgate_proxy_protocol_rejections_total",
    "Connections closed on a PROXY protocol listener before any request, by reason "
    "(not_allowed: from outside proxy_protocol_from, malformed, timeout, closed)."};
inline constexpr MetricDef kAcceptErrorsTotal{
    "wsgate_accept_errors_total",
    "accept() failures on the listening sockets, by reason (emfile: the process is out of "
    "file descriptors, enfile: the system is, nomem, other); each pauses accepting for a "
    "moment."};
// Reaching upstreams, by upstream (the [[upstream]] name): counted by the worker that
// connects.
inline constexpr MetricDef kUpstreamConnectDuration{
    "wsgate_upstream_connect_duration_seconds",
    "Time to open a new upstream connection: name resolution, TCP connect and, for wss:// "
    "upstreams, the TLS handshake (connections reused from the keep-alive pool are not "
    "counted)."};
inline constexpr MetricDef kUpstreamConnectFailures{
    "wsgate_upstream_connect_failures_total",
    "Attempts to reach an upstream server that failed before it answered, by reason (resolve, "
    "connect, connect_timeout, tls, closed, bad_response, response_timeout)."};
inline constexpr MetricDef kUpstreamConnectRetries{
    "wsgate_upstream_connect_retries_total",
    "Attempts on another server of the upstream after a failed one (the upstream's retries)."};
// The keep-alive pool of HTTP forwarding (proxy/upstream/idle_pool.h), by upstream and
// server ("host:port" as configured), summed over the workers.
inline constexpr MetricDef kUpstreamIdleConnections{
    "wsgate_upstream_idle_connections",
    "Idle keep-alive connections to the upstream server waiting for a forwarded request."};
inline constexpr MetricDef kUpstreamPoolHits{
    "wsgate_upstream_pool_hits_total",
    "Forwarded requests sent on an idle keep-alive connection taken from the pool."};
inline constexpr MetricDef kUpstreamPoolMisses{
    "wsgate_upstream_pool_misses_total",
    "Forwarded requests that could have reused a connection but found none idle to the server "
    "(a new connection was opened)."};
inline constexpr MetricDef kUpstreamIdleCloses{
    "wsgate_upstream_idle_closes_total",
    "Idle keep-alive connections closed while in the pool, by reason (timeout, closed, data, "
    "evicted)."};
// TLS certificates of the listeners, set when they are loaded (start, reload).
inline constexpr MetricDef kTlsCertificateExpiry{
    "wsgate_tls_certificate_expiry_timestamp_seconds",
    "When the listener's certificate expires (its notAfter), in seconds since the epoch, by "
    "listener and certificate file."};
// Upstream servers, by upstream and server ("host:port"), read from the shared pools at
// scrape time.
inline constexpr MetricDef kUpstreamServerUp{
    "wsgate_upstream_server_up",
    "1 when the upstream server is in rotation, 0 when down by the active health check or "
    "passively ejected."};
inline constexpr MetricDef kUpstreamServerConnections{
    "wsgate_upstream_server_connections",
    "Upstream connections the upstream server holds now (all workers, including ones being "
    "opened)."};
inline constexpr MetricDef kUpstreamServerHealthTransitions{
    "wsgate_upstream_server_health_transitions_total",
    "Health state changes of the upstream server, by the state it changed to (up, down)."};
inline constexpr MetricDef kUpstreamRebalancedConnections{
    "wsgate_upstream_rebalanced_connections_total",
    "Connections of the upstream server closed with 1001 by rebalancing ([upstream.rebalance]), "
    "so that their clients reconnect to less loaded servers."};
// Per-connection series ([admin] per_connection_metrics), by connection id, route,
// server and direction; at most per_connection_limit connections, the oldest first.
inline constexpr MetricDef kConnectionBytesTotal{
    "wsgate_connection_bytes_total",
    "WebSocket wire bytes relayed by one live connection, by direction."};
inline constexpr MetricDef kConnectionMessagesTotal{
    "wsgate_connection_messages_total",
    "WebSocket data messages relayed by one live connection, by direction."};
inline constexpr MetricDef kConnectionSeriesDropped{
    "wsgate_connection_series_dropped",
    "Live connections left out of the per-connection series by per_connection_limit."};
// The scrape itself.
inline constexpr MetricDef kWorkers{"wsgate_workers", "Worker threads."};
inline constexpr MetricDef kScrapeWorkersMissing{
    "wsgate_scrape_workers_missing",
    "Workers that did not answer this scrape in time (their numbers are missing)."};
// Configuration reloads (SIGHUP, POST /reload).
inline constexpr std::string_view kResult = "result";
inline constexpr std::string_view kSuccess = "success";
inline constexpr std::string_view kFailure = "failure";
inline constexpr MetricDef kConfigReloadsTotal{
    "wsgate_config_reloads_total",
    "Configuration reloads (SIGHUP, POST /reload), by result: success (published) or failure "
    "(rejected, the previous config kept)."};
inline constexpr MetricDef kConfigLastReloadSuccess{
    "wsgate_config_last_reload_success_timestamp_seconds",
    "When the last successful configuration reload was published, in seconds since the epoch "
    "(0: none since the start)."};
// The process (the usual names of Prometheus client libraries, read from /proc/self).
inline constexpr MetricDef kProcessCpu{"process_cpu_seconds_total",
                                       "Total user and system CPU time spent in seconds."};
inline constexpr MetricDef kProcessRss{"process_resident_memory_bytes",
                                       "Resident memory size in bytes."};
inline constexpr MetricDef kProcessVirtual{"process_virtual_memory_bytes",
                                           "Virtual memory size in bytes."};
inline constexpr MetricDef kProcessOpenFds{"process_open_fds", "Number of open file descriptors."};
inline constexpr MetricDef kProcessMaxFds{"process_max_fds",
                                          "Maximum number of open file descriptors."};
inline constexpr MetricDef kProcessStartTime{
    "process_start_time_seconds", "Start time of the process since unix epoch in seconds."};
inline constexpr MetricDef kProcessThreads{"process_threads", "Number of OS threads."};

// Histogram buckets (upper bounds, seconds).
inline constexpr std::array<double, 12> kHandshakeBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1,    5};
inline constexpr std::array<double, 14> kHttpRequestBuckets{
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60};
inline constexpr std::array<double, 12> kUpstreamConnectBuckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2};
inline constexpr std::array<double, 11> kConnectionBuckets{0.1, 1,    10,   30,    60,   300,
                                                           900, 1800, 3600, 14400, 86400};

}  // namespace wsgate::metrics::names
