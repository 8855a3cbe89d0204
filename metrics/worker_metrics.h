// Per-worker counters and their scrape-time aggregation.
//
// Each worker owns one WorkerMetrics and is its only writer: plain integers, no atomics,
// no locks. It counts per connection (handshake answered, relay started, relay ended),
// never per frame: frames, messages and bytes live in each connection's own
// ConnectionStats (written by its Pipes) and are folded into these totals when the
// connection ends. A scrape asks every worker for a MetricsSnapshot (totals plus the
// live connections' stats, built on the worker's thread) and merges them.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "metrics/connection_stats.h"
#include "metrics/histogram.h"
#include "metrics/metric_names.h"

namespace wsgate::metrics {

// How the client reached us. Only H1 exists today; H2 (RFC 8441) and CONNECT tunnels
// label their connections with their own value when they arrive.
enum class Protocol { H1, H2, Tunnel };
const char* to_string(Protocol p);

// The `code` label of wsgate_closes_total. A peer chooses its close code freely, so
// only the codes RFC 6455 7.4.1 defines (and the IANA registry's 1012-1014) are labelled
// as themselves; 3000-3999 is "registered", 4000-4999 "private" (RFC 6455 7.4.2) and any
// other value "invalid". At most 19 values, whatever the peers send.
std::string close_code_label(uint16_t code);

// The labels of wsgate_connections_{active,total}.
struct ConnectionLabels {
  std::string listener;
  std::string route;
  std::string upstream;  // the [[upstream]] name
  std::string server;    // "host:port" of the upstream server that answered 101
  Protocol protocol = Protocol::H1;
  auto operator<=>(const ConnectionLabels&) const = default;
};

struct ConnectionCounts {
  uint64_t active = 0;
  uint64_t total = 0;
};

// The keep-alive pool of one (upstream, server) on a worker (proxy/upstream/idle_pool.h).
struct UpstreamPoolStats {
  uint64_t idle = 0;    // a gauge: connections in the pool now
  uint64_t hits = 0;    // taken for a request
  uint64_t misses = 0;  // a request found none
  std::array<uint64_t, names::kIdleCloseReasons.size()> closes{};  // by kIdleCloseReasons
  void merge(const UpstreamPoolStats& other);
};

// Histograms by one label's value (a route, an upstream).
using HistogramsByKey = std::map<std::string, Histogram, std::less<>>;

// Everything a scrape reports, as plain values: what one worker has, or the sum of all.
struct MetricsSnapshot {
  std::map<ConnectionLabels, ConnectionCounts> connections;
  std::map<std::pair<std::string, int>, uint64_t> handshakes;  // (listener, status; 0 = none)
  DirectionStats client_to_upstream;
  DirectionStats upstream_to_client;
  // (who closed first, close_code_label(code)): a bounded set of series.
  std::map<std::pair<Side, std::string>, uint64_t> closes;
  std::array<uint64_t, kTunnelEnds> tunnel_ends{};  // ended CONNECT tunnels, by TunnelEnd
  uint64_t client_ping_timeouts = 0;                // the client missed ping_timeout
  uint64_t upstream_ping_timeouts = 0;              // the upstream missed ping_timeout
  SplicedBytes spliced;                             // moved by splice(2), by direction
  std::map<std::pair<std::string, std::string>, uint64_t> tls_handshakes;  // (listener, version)
  std::map<std::pair<std::string, std::string>, uint64_t> tls_failures;    // (listener, reason)
  std::map<std::string, uint64_t> limit_rejections;  // by limit ("per_client", ...)
  std::map<std::string, uint64_t> accept_errors;     // by reason ("emfile", ...)
  std::map<std::string, uint64_t> proxy_headers;     // by version ("v1", "v2")
  std::map<std::string, uint64_t> proxy_rejections;  // by reason (kProxyRejectionReasons)
  // Forwarded HTTP requests by route, then by status class (names::kHttpStatusClasses).
  std::map<std::string, std::array<uint64_t, names::kHttpStatusClasses.size()>, std::less<>>
      http_requests;
  // Latency histograms by route ("-": none matched). Routes come from the config, so the
  // series are bounded.
  HistogramsByKey http_request_duration;
  // [route.auth]: decisions by (route, result); forward-auth cache lookups by (route,
  // "hit" or "miss"); subrequest durations by route; expiry closes by route.
  std::map<std::pair<std::string, std::string>, uint64_t> auth_decisions;
  std::map<std::pair<std::string, std::string>, uint64_t> auth_cache_lookups;
  HistogramsByKey auth_subrequest_duration;
  std::map<std::string, uint64_t> auth_expired_closes;
  HistogramsByKey handshake_duration;
  HistogramsByKey connection_duration;
  // Reaching upstreams, by upstream name: new connections' open time; failed attempts by
  // (upstream, reason in names::kConnectFailureReasons); attempts on another server.
  HistogramsByKey upstream_connect_duration;
  std::map<std::pair<std::string, std::string>, uint64_t> upstream_connect_failures;
  std::map<std::string, uint64_t> upstream_connect_retries;
  // Keep-alive pools by (upstream, server); a series stays once seen (its idle gauge at 0).
  std::map<std::pair<std::string, std::string>, UpstreamPoolStats> upstream_pools;

  void add_traffic(const ConnectionStats& s) {
    client_to_upstream += s.client_to_upstream;
    upstream_to_client += s.upstream_to_client;
  }
  void merge(const MetricsSnapshot& other);
};

// Adds `value` to the histogram `key` of `by_key`, made with `bounds` on first use.
void observe(HistogramsByKey& by_key, std::string_view key, std::span<const double> bounds,
             double value);

class WorkerMetrics {
 public:
  // The client got its answer to the opening handshake (101, or a refusal), or left
  // before one (status 0).
  void handshake_answered(std::string_view listener, int status);
  // A client's TLS handshake completed with `version`, or failed for `reason`.
  void tls_handshake(std::string_view listener, std::string_view version);
  void tls_failure(std::string_view listener, std::string_view reason);
  // A connection (or HTTP/2 stream) was refused by the limit named `limit`.
  void limit_rejection(std::string_view limit);
  // accept(2) on a listening socket failed for `reason` (names::kAcceptErrorReasons).
  void accept_error(std::string_view reason);
  // A PROXY protocol header of `version` was accepted; a connection on a PROXY protocol
  // listener was closed for `reason` (names::kProxyRejectionReasons).
  void proxy_header(std::string_view version);
  void proxy_rejection(std::string_view reason);

  // A 101 went to the client `handshake_seconds` after accept. The returned pointer
  // stays valid for the WorkerMetrics' life; pass it back to relay_ended().
  ConnectionCounts* relay_started(const ConnectionLabels& labels, double handshake_seconds);
  // The relay is over: its traffic joins the totals, its close and lifetime are counted.
  void relay_ended(ConnectionCounts* counts, std::string_view route, const ConnectionStats& stats,
                   double seconds);

  // A forwarded HTTP request ended: the client got `status` (0: none) after `seconds`.
  void http_request_ended(std::string_view route, int status, double seconds);

  // [route.auth] (gateway/exchange/auth_step.h): a request on `route` was decided with
  // `result`; a forward-auth cache lookup hit or missed; a subrequest took `seconds`; a
  // relayed WebSocket was closed because its token expired.
  void auth_decided(std::string_view route, std::string_view result);
  void auth_cache_lookup(std::string_view route, bool hit);
  void auth_subrequest(std::string_view route, double seconds);
  void auth_expired_close(std::string_view route);

  // A new connection to a server of `upstream` opened in `seconds` (resolve, TCP, TLS).
  void upstream_connected(std::string_view upstream, double seconds);
  // An attempt to reach a server of `upstream` failed (names::kConnectFailureReasons).
  void upstream_connect_failed(std::string_view upstream, std::string_view reason);
  // Another server of `upstream` is tried after a failed attempt.
  void upstream_retry(std::string_view upstream);

  // The pool stats of (upstream, server), made on first use. The reference stays valid for
  // the WorkerMetrics' life (the IdlePool keeps it).
  UpstreamPoolStats& upstream_pool(std::string_view upstream, std::string_view server);

  // wsgate_spliced_bytes_total: relays and exchanges add to it as each splice(2) moves
  // bytes (the reference stays valid for the WorkerMetrics' life).
  SplicedBytes& spliced_bytes() { return totals_.spliced; }

  // Totals of ended connections plus the gauges. Live connections' traffic is not in
  // here: the worker adds it (MetricsSnapshot::add_traffic) when it builds a snapshot.
  const MetricsSnapshot& totals() const { return totals_; }

 private:
  MetricsSnapshot totals_;
};

}  // namespace wsgate::metrics
