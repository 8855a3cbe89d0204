#include "metrics/worker_metrics.h"

namespace wsgate::metrics {

const char* to_string(Protocol p) {
  switch (p) {
    case Protocol::H1:
      return "h1";
    case Protocol::H2:
      return "h2";
    case Protocol::Tunnel:
      return "connect";
  }
  return "?";
}

std::string close_code_label(uint16_t code) {
  // RFC 6455 7.4.1: 1000-1003, 1005-1011 (1005 and 1006 are what the gateway records
  // for "no code" and "no Close"), 1015; 1012-1014 from the IANA registry. 1004 is
  // reserved without a meaning.
  if ((code >= 1000 && code <= 1003) || (code >= 1005 && code <= 1015)) return std::to_string(code);
  if (code >= 3000 && code <= 3999) return "registered";  // RFC 6455 7.4.2: IANA-registered
  if (code >= 4000 && code <= 4999) return "private";     // RFC 6455 7.4.2: private use
  return "invalid";
}

void MetricsSnapshot::merge(const MetricsSnapshot& other) {
  for (const auto& [labels, counts] : other.connections) {
    ConnectionCounts& mine = connections[labels];
    mine.active += counts.active;
    mine.total += counts.total;
  }
  for (const auto& [key, n] : other.handshakes) handshakes[key] += n;
  client_to_upstream += other.client_to_upstream;
  upstream_to_client += other.upstream_to_client;
  for (const auto& [key, n] : other.closes) closes[key] += n;
  for (std::size_t i = 0; i < kTunnelEnds; ++i) tunnel_ends[i] += other.tunnel_ends[i];
  client_ping_timeouts += other.client_ping_timeouts;
  upstream_ping_timeouts += other.upstream_ping_timeouts;
  spliced.client_to_upstream += other.spliced.client_to_upstream;
  spliced.upstream_to_client += other.spliced.upstream_to_client;
  for (const auto& [key, n] : other.tls_handshakes) tls_handshakes[key] += n;
  for (const auto& [key, n] : other.tls_failures) tls_failures[key] += n;
  for (const auto& [key, n] : other.limit_rejections) limit_rejections[key] += n;
  for (const auto& [key, n] : other.accept_errors) accept_errors[key] += n;
  for (const auto& [key, n] : other.proxy_headers) proxy_headers[key] += n;
  for (const auto& [key, n] : other.proxy_rejections) proxy_rejections[key] += n;
  for (const auto& [route, counts] : other.http_requests) {
    auto& mine = http_requests[route];
    for (std::size_t i = 0; i < counts.size(); ++i) mine[i] += counts[i];
  }
  for (const auto& [key, n] : other.auth_decisions) auth_decisions[key] += n;
  for (const auto& [key, n] : other.auth_cache_lookups) auth_cache_lookups[key] += n;
  for (const auto& [key, n] : other.auth_expired_closes) auth_expired_closes[key] += n;
  const auto merge_by_key = [](HistogramsByKey& mine, const HistogramsByKey& theirs) {
    for (const auto& [key, h] : theirs) mine.try_emplace(key, h.bounds()).first->second.merge(h);
  };
  merge_by_key(http_request_duration, other.http_request_duration);
  merge_by_key(auth_subrequest_duration, other.auth_subrequest_duration);
  merge_by_key(handshake_duration, other.handshake_duration);
  merge_by_key(connection_duration, other.connection_duration);
  merge_by_key(upstream_connect_duration, other.upstream_connect_duration);
  for (const auto& [key, n] : other.upstream_connect_failures) upstream_connect_failures[key] += n;
  for (const auto& [key, n] : other.upstream_connect_retries) upstream_connect_retries[key] += n;
  for (const auto& [key, pool] : other.upstream_pools) upstream_pools[key].merge(pool);
}

void UpstreamPoolStats::merge(const UpstreamPoolStats& other) {
  idle += other.idle;
  hits += other.hits;
  misses += other.misses;
  for (std::size_t i = 0; i < closes.size(); ++i) closes[i] += other.closes[i];
}

UpstreamPoolStats& WorkerMetrics::upstream_pool(std::string_view upstream,
                                                std::string_view server) {
  return totals_.upstream_pools[{std::string(upstream), std::string(server)}];
}

void observe(HistogramsByKey& by_key, std::string_view key, std::span<const double> bounds,
             double value) {
  auto it = by_key.find(key);
  if (it == by_key.end()) it = by_key.try_emplace(std::string(key), bounds).first;
  it->second.observe(value);
}

void WorkerMetrics::upstream_connected(std::string_view upstream, double seconds) {
  observe(totals_.upstream_connect_duration, upstream, names::kUpstreamConnectBuckets, seconds);
}

void WorkerMetrics::upstream_connect_failed(std::string_view upstream, std::string_view reason) {
  totals_.upstream_connect_failures[{std::string(upstream), std::string(reason)}]++;
}

void WorkerMetrics::upstream_retry(std::string_view upstream) {
  totals_.upstream_connect_retries[std::string(upstream)]++;
}

void WorkerMetrics::handshake_answered(std::string_view listener, int status) {
  totals_.handshakes[{std::string(listener), status}]++;
}

void WorkerMetrics::auth_decided(std::string_view route, std::string_view result) {
  totals_.auth_decisions[{std::string(route), std::string(result)}]++;
}

void WorkerMetrics::auth_cache_lookup(std::string_view route, bool hit) {
  totals_.auth_cache_lookups[{std::string(route), hit ? "hit" : "miss"}]++;
}

void WorkerMetrics::auth_subrequest(std::string_view route, double seconds) {
  observe(totals_.auth_subrequest_duration, route, names::kHttpRequestBuckets, seconds);
}

void WorkerMetrics::auth_expired_close(std::string_view route) {
  totals_.auth_expired_closes[std::string(route)]++;
}

void WorkerMetrics::http_request_ended(std::string_view route, int status, double seconds) {
  // One lookup by the route's name, no string made (after the route's first request).
  auto it = totals_.http_requests.find(route);
  if (it == totals_.http_requests.end())
    it = totals_.http_requests.try_emplace(std::string(route)).first;
  it->second[status >= 100 && status <= 599 ? static_cast<std::size_t>(status / 100) : 0]++;
  observe(totals_.http_request_duration, route, names::kHttpRequestBuckets, seconds);
}

void WorkerMetrics::tls_handshake(std::string_view listener, std::string_view version) {
  totals_.tls_handshakes[{std::string(listener), std::string(version)}]++;
}

void WorkerMetrics::tls_failure(std::string_view listener, std::string_view reason) {
  totals_.tls_failures[{std::string(listener), std::string(reason)}]++;
}

void WorkerMetrics::limit_rejection(std::string_view limit) {
  totals_.limit_rejections[std::string(limit)]++;
}

void WorkerMetrics::accept_error(std::string_view reason) {
  totals_.accept_errors[std::string(reason)]++;
}

void WorkerMetrics::proxy_header(std::string_view version) {
  totals_.proxy_headers[std::string(version)]++;
}

void WorkerMetrics::proxy_rejection(std::string_view reason) {
  totals_.proxy_rejections[std::string(reason)]++;
}

ConnectionCounts* WorkerMetrics::relay_started(const ConnectionLabels& labels,
                                               double handshake_seconds) {
  ConnectionCounts& counts = totals_.connections[labels];  // std::map: stable address
  counts.active++;
  counts.total++;
  observe(totals_.handshake_duration, labels.route, names::kHandshakeBuckets, handshake_seconds);
  return &counts;
}

void WorkerMetrics::relay_ended(ConnectionCounts* counts, std::string_view route,
                                const ConnectionStats& stats, double seconds) {
  if (counts != nullptr && counts->active > 0) counts->active--;
  totals_.add_traffic(stats);
  if (stats.tunnel_end) {
    totals_.tunnel_ends[static_cast<std::size_t>(*stats.tunnel_end)]++;
  } else {
    totals_.closes[{stats.closed_by, close_code_label(stats.close_code)}]++;
  }
  if (stats.client_pings.timed_out) totals_.client_ping_timeouts++;
  if (stats.upstream_pings.timed_out) totals_.upstream_ping_timeouts++;
  observe(totals_.connection_duration, route, names::kConnectionBuckets, seconds);
}

}  // namespace wsgate::metrics
