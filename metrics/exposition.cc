#include "metrics/exposition.h"

#include <algorithm>
#include <sstream>

#include <prometheus/text_serializer.h>

#include "metrics/build_info.h"

namespace wsgate::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(const names::MetricDef& def, MetricType type) {
  MetricFamily f;
  f.name = std::string(def.name);
  f.help = std::string(def.help);
  f.type = type;
  return f;
}

ClientMetric::Label label(std::string_view name, std::string value) {
  return {std::string(name), std::move(value)};
}

void add_value(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

void add_histogram(MetricFamily& f, const Histogram& h,
                   std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = h.count();
  m.histogram.sample_sum = h.sum();
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.counts()[i];
    m.histogram.bucket.push_back({cumulative, h.bounds()[i]});
  }
  // The +Inf bucket is written by the serializer from sample_count.
  f.metric.push_back(std::move(m));
}

// One histogram series per key, labelled `label_name`.
void add_histograms(MetricFamily& f, std::string_view label_name, const HistogramsByKey& by_key) {
  for (const auto& [key, h] : by_key) add_histogram(f, h, {label(label_name, key)});
}

// wsgate_upstream_connect_*: every upstream that was connected to or failed has the
// failures (every reason) and retries series, 0 until they happen.
void add_upstream_connects(std::vector<MetricFamily>& out, const MetricsSnapshot& s) {
  MetricFamily duration = family(names::kUpstreamConnectDuration, MetricType::Histogram);
  add_histograms(duration, names::kUpstream, s.upstream_connect_duration);
  out.push_back(std::move(duration));
  std::vector<std::string> upstreams;
  for (const auto& [name, h] : s.upstream_connect_duration) upstreams.push_back(name);
  for (const auto& [key, n] : s.upstream_connect_failures) upstreams.push_back(key.first);
  for (const auto& [name, n] : s.upstream_connect_retries) upstreams.push_back(name);
  std::sort(upstreams.begin(), upstreams.end());
  upstreams.erase(std::unique(upstreams.begin(), upstreams.end()), upstreams.end());
  MetricFamily failures = family(names::kUpstreamConnectFailures, MetricType::Counter);
  MetricFamily retries = family(names::kUpstreamConnectRetries, MetricType::Counter);
  for (const std::string& u : upstreams) {
    for (const std::string_view reason : names::kConnectFailureReasons) {
      const auto it = s.upstream_connect_failures.find({u, std::string(reason)});
      add_value(failures, {label(names::kUpstream, u), label(names::kReason, std::string(reason))},
                static_cast<double>(it == s.upstream_connect_failures.end() ? 0 : it->second));
    }
    const auto it = s.upstream_connect_retries.find(u);
    add_value(retries, {label(names::kUpstream, u)},
              static_cast<double>(it == s.upstream_connect_retries.end() ? 0 : it->second));
  }
  out.push_back(std::move(failures));
  out.push_back(std::move(retries));
}

// The keep-alive pools: every (upstream, server) a worker pooled or asked for has all its
// series, 0 until they happen.
void add_upstream_pools(std::vector<MetricFamily>& out, const MetricsSnapshot& s) {
  MetricFamily idle = family(names::kUpstreamIdleConnections, MetricType::Gauge);
  MetricFamily hits = family(names::kUpstreamPoolHits, MetricType::Counter);
  MetricFamily misses = family(names::kUpstreamPoolMisses, MetricType::Counter);
  MetricFamily closes = family(names::kUpstreamIdleCloses, MetricType::Counter);
  for (const auto& [key, pool] : s.upstream_pools) {
    const auto labels = [&key = key] {
      return std::vector<ClientMetric::Label>{label(names::kUpstream, key.first),
                                              label(names::kServer, key.second)};
    };
    add_value(idle, labels(), static_cast<double>(pool.idle));
    add_value(hits, labels(), static_cast<double>(pool.hits));
    add_value(misses, labels(), static_cast<double>(pool.misses));
    for (std::size_t i = 0; i < names::kIdleCloseReasons.size(); ++i) {
      auto l = labels();
      l.push_back(label(names::kReason, std::string(names::kIdleCloseReasons[i])));
      add_value(closes, std::move(l), static_cast<double>(pool.closes[i]));
    }
  }
  out.push_back(std::move(idle));
  out.push_back(std::move(hits));
  out.push_back(std::move(misses));
  out.push_back(std::move(closes));
}

std::vector<ClientMetric::Label> connection_labels(const ConnectionLabels& l) {
  return {label(names::kListener, l.listener), label(names::kRoute, l.route),
          label(names::kUpstream, l.upstream), label(names::kServer, l.server),
          label(names::kProtocol, to_string(l.protocol))};
}

// One series per opcode that has been seen, for both directions.
void add_by_opcode(MetricFamily& f, const DirectionStats& c2u, const DirectionStats& u2c,
                   const std::array<uint64_t, kOpcodeSlots> DirectionStats::*field) {
  const std::pair<std::string_view, const DirectionStats*> dirs[] = {
      {names::kClientToUpstream, &c2u}, {names::kUpstreamToClient, &u2c}};
  for (const auto& [dir, stats] : dirs) {
    for (std::size_t i = 0; i < kOpcodeSlots; ++i) {
      add_value(f,
                {label(names::kDirection, std::string(dir)),
                 label(names::kOpcode, to_string(static_cast<OpcodeSlot>(i)))},
                static_cast<double>((stats->*field)[i]));
    }
  }
}

std::string status_label(int status) {
  return status == 0 ? std::string(names::kStatusNone) : std::to_string(status);
}

void add_upstream_servers(std::vector<MetricFamily>& out,
                          std::span<const UpstreamServerStatus> servers) {
  MetricFamily up = family(names::kUpstreamServerUp, MetricType::Gauge);
  MetricFamily connections = family(names::kUpstreamServerConnections, MetricType::Gauge);
  MetricFamily transitions = family(names::kUpstreamServerHealthTransitions, MetricType::Counter);
  MetricFamily rebalanced = family(names::kUpstreamRebalancedConnections, MetricType::Counter);
  for (const UpstreamServerStatus& s : servers) {
    const auto labels = [&s] {
      return std::vector<ClientMetric::Label>{label(names::kUpstream, s.upstream),
                                              label(names::kServer, s.server)};
    };
    add_value(up, labels(), s.up ? 1 : 0);
    add_value(connections, labels(), static_cast<double>(s.connections));
    add_value(rebalanced, labels(), static_cast<double>(s.rebalanced));
    const std::pair<std::string_view, uint64_t> by_state[] = {{names::kUp, s.transitions_up},
                                                              {names::kDown, s.transitions_down}};
    for (const auto& [to, n] : by_state) {
      auto l = labels();
      l.push_back(label(names::kTo, std::string(to)));
      add_value(transitions, std::move(l), static_cast<double>(n));
    }
  }
  out.push_back(std::move(up));
  out.push_back(std::move(connections));
  out.push_back(std::move(transitions));
  out.push_back(std::move(rebalanced));
}

void add_per_connection(std::vector<MetricFamily>& out, const std::vector<ConnectionInfo>& rows,
                        std::size_t limit) {
  std::vector<const ConnectionInfo*> relayed;
  for (const ConnectionInfo& c : rows)
    if (c.state == "relaying") relayed.push_back(&c);
  // Oldest first, as /connections lists them; ties (same age) by id for a stable choice.
  std::sort(relayed.begin(), relayed.end(), [](const ConnectionInfo* a, const ConnectionInfo* b) {
    if (a->age_seconds != b->age_seconds) return a->age_seconds > b->age_seconds;
    return std::pair(a->worker, a->id) < std::pair(b->worker, b->id);
  });
  const std::size_t kept = std::min(limit, relayed.size());
  MetricFamily bytes = family(names::kConnectionBytesTotal, MetricType::Counter);
  MetricFamily messages = family(names::kConnectionMessagesTotal, MetricType::Counter);
  for (std::size_t i = 0; i < kept; ++i) {
    const ConnectionInfo& c = *relayed[i];
    const std::string id = std::to_string(c.worker) + "-" + std::to_string(c.id);
    const std::pair<std::string_view, const DirectionStats*> dirs[] = {
        {names::kClientToUpstream, &c.client_to_upstream},
        {names::kUpstreamToClient, &c.upstream_to_client}};
    for (const auto& [dir, stats] : dirs) {
      const auto labels = [&, dir = dir] {
        return std::vector<ClientMetric::Label>{
            label(names::kId, id), label(names::kRoute, c.labels.route),
            label(names::kServer, c.labels.server), label(names::kDirection, std::string(dir))};
      };
      add_value(bytes, labels(), static_cast<double>(stats->bytes));
      add_value(messages, labels(), static_cast<double>(stats->messages));
    }
  }
  out.push_back(std::move(bytes));
  out.push_back(std::move(messages));
  MetricFamily dropped = family(names::kConnectionSeriesDropped, MetricType::Gauge);
  add_value(dropped, {}, static_cast<double>(relayed.size() - kept));
  out.push_back(std::move(dropped));
}

}  // namespace

std::vector<MetricFamily> build_families(const MetricsSnapshot& s, const ScrapeInfo& info,
                                         const std::optional<ProcessStats>& process) {
  std::vector<MetricFamily> out;

  const BuildInfo& build = build_info();
  MetricFamily build_family = family(names::kBuildInfo, MetricType::Gauge);
  add_value(build_family,
            {label("version", build.version), label("commit", build.commit),
             label("openssl", build.openssl), label("libevent", build.libevent),
             label("nghttp2", build.nghttp2)},
            1);
  out.push_back(std::move(build_family));

  MetricFamily active = family(names::kConnectionsActive, MetricType::Gauge);
  MetricFamily total = family(names::kConnectionsTotal, MetricType::Counter);
  for (const auto& [labels, counts] : s.connections) {
    add_value(active, connection_labels(labels), static_cast<double>(counts.active));
    add_value(total, connection_labels(labels), static_cast<double>(counts.total));
  }
  out.push_back(std::move(active));
  out.push_back(std::move(total));

  MetricFamily handshakes = family(names::kHandshakesTotal, MetricType::Counter);
  for (const auto& [key, n] : s.handshakes) {
    add_value(handshakes,
              {label(names::kListener, key.first), label(names::kStatus, status_label(key.second))},
              static_cast<double>(n));
  }
  out.push_back(std::move(handshakes));

  MetricFamily handshake_duration = family(names::kHandshakeDuration, MetricType::Histogram);
  add_histograms(handshake_duration, names::kRoute, s.handshake_duration);
  out.push_back(std::move(handshake_duration));
  MetricFamily connection_duration = family(names::kConnectionDuration, MetricType::Histogram);
  add_histograms(connection_duration, names::kRoute, s.connection_duration);
  out.push_back(std::move(connection_duration));

  MetricFamily http_requests = family(names::kHttpRequestsTotal, MetricType::Counter);
  for (const auto& [route, counts] : s.http_requests) {
    for (std::size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] == 0) continue;  // a series appears once seen (and then stays)
      add_value(http_requests,
                {label(names::kRoute, route),
                 label(names::kClass, std::string(names::kHttpStatusClasses[i]))},
                static_cast<double>(counts[i]));
    }
  }
  out.push_back(std::move(http_requests));
  MetricFamily http_duration = family(names::kHttpRequestDuration, MetricType::Histogram);
  add_histograms(http_duration, names::kRoute, s.http_request_duration);
  out.push_back(std::move(http_duration));

  MetricFamily auth_decisions = family(names::kAuthDecisionsTotal, MetricType::Counter);
  for (const auto& [key, n] : s.auth_decisions)
    add_value(auth_decisions, {label(names::kRoute, key.first), label(names::kResult, key.second)},
              static_cast<double>(n));
  out.push_back(std::move(auth_decisions));
  MetricFamily auth_cache = family(names::kAuthCacheLookupsTotal, MetricType::Counter);
  for (const auto& [key, n] : s.auth_cache_lookups)
    add_value(auth_cache, {label(names::kRoute, key.first), label(names::kResult, key.second)},
              static_cast<double>(n));
  out.push_back(std::move(auth_cache));
  MetricFamily auth_duration = family(names::kAuthSubrequestDuration, MetricType::Histogram);
  add_histograms(auth_duration, names::kRoute, s.auth_subrequest_duration);
  out.push_back(std::move(auth_duration));
  MetricFamily auth_expired = family(names::kAuthExpiredClosesTotal, MetricType::Counter);
  for (const auto& [route, n] : s.auth_expired_closes)
    add_value(auth_expired, {label(names::kRoute, route)}, static_cast<double>(n));
  out.push_back(std::move(auth_expired));

  MetricFamily frames = family(names::kFramesTotal, MetricType::Counter);
  add_by_opcode(frames, s.client_to_upstream, s.upstream_to_client,
                &DirectionStats::frames_by_opcode);
  out.push_back(std::move(frames));
  MetricFamily bytes = family(names::kBytesTotal, MetricType::Counter);
  add_by_opcode(bytes, s.client_to_upstream, s.upstream_to_client,
                &DirectionStats::bytes_by_opcode);
  out.push_back(std::move(bytes));
  // Tunnel bytes are counted without an opcode: they are what the opcode split leaves.
  MetricFamily tunnel_bytes = family(names::kTunnelBytesTotal, MetricType::Counter);
  for (const auto& [dir, stats] : {std::pair{names::kClientToUpstream, &s.client_to_upstream},
                                   std::pair{names::kUpstreamToClient, &s.upstream_to_client}}) {
    uint64_t framed = 0;
    for (const uint64_t b : stats->bytes_by_opcode) framed += b;
    add_value(tunnel_bytes, {label(names::kDirection, std::string(dir))},
              static_cast<double>(stats->bytes - framed));
  }
  out.push_back(std::move(tunnel_bytes));
  MetricFamily spliced = family(names::kSplicedBytesTotal, MetricType::Counter);
  add_value(spliced, {label(names::kDirection, std::string(names::kClientToUpstream))},
            static_cast<double>(s.spliced.client_to_upstream));
  add_value(spliced, {label(names::kDirection, std::string(names::kUpstreamToClient))},
            static_cast<double>(s.spliced.upstream_to_client));
  out.push_back(std::move(spliced));

  MetricFamily messages = family(names::kMessagesTotal, MetricType::Counter);
  const std::pair<std::string_view, const DirectionStats*> dirs[] = {
      {names::kClientToUpstream, &s.client_to_upstream},
      {names::kUpstreamToClient, &s.upstream_to_client}};
  for (const auto& [dir, stats] : dirs) {
    add_value(messages, {label(names::kDirection, std::string(dir)), label(names::kOpcode, "text")},
              static_cast<double>(stats->text_messages));
    add_value(messages,
              {label(names::kDirection, std::string(dir)), label(names::kOpcode, "binary")},
              static_cast<double>(stats->binary_messages));
  }
  out.push_back(std::move(messages));

  MetricFamily closes = family(names::kClosesTotal, MetricType::Counter);
  for (const auto& [key, n] : s.closes) {
    add_value(closes, {label(names::kSide, to_string(key.first)), label(names::kCode, key.second)},
              static_cast<double>(n));
  }
  out.push_back(std::move(closes));
  MetricFamily tunnel_ends = family(names::kTunnelEndsTotal, MetricType::Counter);
  for (std::size_t i = 0; i < kTunnelEnds; ++i) {
    add_value(tunnel_ends, {label(names::kEnd, to_string(static_cast<TunnelEnd>(i)))},
              static_cast<double>(s.tunnel_ends[i]));
  }
  out.push_back(std::move(tunnel_ends));
  MetricFamily ping_timeouts = family(names::kPingTimeoutsTotal, MetricType::Counter);
  add_value(ping_timeouts, {label(names::kSide, to_string(Side::Client))},
            static_cast<double>(s.client_ping_timeouts));
  add_value(ping_timeouts, {label(names::kSide, to_string(Side::Upstream))},
            static_cast<double>(s.upstream_ping_timeouts));
  out.push_back(std::move(ping_timeouts));

  MetricFamily tls_ok = family(names::kTlsHandshakesTotal, MetricType::Counter);
  for (const auto& [key, n] : s.tls_handshakes) {
    add_value(tls_ok, {label(names::kListener, key.first), label(names::kVersion, key.second)},
              static_cast<double>(n));
  }
  out.push_back(std::move(tls_ok));
  MetricFamily tls_failed = family(names::kTlsHandshakeFailuresTotal, MetricType::Counter);
  for (const auto& [key, n] : s.tls_failures) {
    add_value(tls_failed, {label(names::kListener, key.first), label(names::kReason, key.second)},
              static_cast<double>(n));
  }
  out.push_back(std::move(tls_failed));

  // Every limit has a series from the start (0 until it refuses something).
  MetricFamily limited = family(names::kLimitRejectionsTotal, MetricType::Counter);
  for (const std::string_view limit : names::kLimitValues) {
    const auto it = s.limit_rejections.find(std::string(limit));
    add_value(limited, {label(names::kLimit, std::string(limit))},
              static_cast<double>(it == s.limit_rejections.end() ? 0 : it->second));
  }
  out.push_back(std::move(limited));

  MetricFamily accept_errors = family(names::kAcceptErrorsTotal, MetricType::Counter);
  for (const std::string_view reason : names::kAcceptErrorReasons) {
    const auto it = s.accept_errors.find(std::string(reason));
    add_value(accept_errors, {label(names::kReason, std::string(reason))},
              static_cast<double>(it == s.accept_errors.end() ? 0 : it->second));
  }
  out.push_back(std::move(accept_errors));

  // Every version and reason from the start, at 0 (fixed label sets).
  MetricFamily proxy_headers = family(names::kProxyProtocolHeadersTotal, MetricType::Counter);
  for (const std::string_view version : names::kProxyVersions) {
    const auto it = s.proxy_headers.find(std::string(version));
    add_value(proxy_headers, {label(names::kVersion, std::string(version))},
              static_cast<double>(it == s.proxy_headers.end() ? 0 : it->second));
  }
  out.push_back(std::move(proxy_headers));
  MetricFamily proxy_rejections = family(names::kProxyProtocolRejectionsTotal, MetricType::Counter);
  for (const std::string_view reason : names::kProxyRejectionReasons) {
    const auto it = s.proxy_rejections.find(std::string(reason));
    add_value(proxy_rejections, {label(names::kReason, std::string(reason))},
              static_cast<double>(it == s.proxy_rejections.end() ? 0 : it->second));
  }
  out.push_back(std::move(proxy_rejections));

  add_upstream_connects(out, s);
  add_upstream_pools(out, s);
  add_upstream_servers(out, info.upstream_servers);
  MetricFamily expiry = family(names::kTlsCertificateExpiry, MetricType::Gauge);
  for (const CertificateExpiry& c : info.certificates) {
    add_value(expiry, {label(names::kListener, c.listener), label(names::kCert, c.cert)},
              static_cast<double>(c.not_after_unix));
  }
  out.push_back(std::move(expiry));
  if (info.connections != nullptr)
    add_per_connection(out, *info.connections, info.per_connection_limit);

  MetricFamily workers = family(names::kWorkers, MetricType::Gauge);
  add_value(workers, {}, info.workers);
  out.push_back(std::move(workers));
  MetricFamily missing = family(names::kScrapeWorkersMissing, MetricType::Gauge);
  add_value(missing, {}, info.workers_missing);
  out.push_back(std::move(missing));

  if (info.reloads != nullptr) {
    MetricFamily reloads = family(names::kConfigReloadsTotal, MetricType::Counter);
    add_value(reloads, {label(names::kResult, std::string(names::kSuccess))},
              static_cast<double>(info.reloads->succeeded));
    add_value(reloads, {label(names::kResult, std::string(names::kFailure))},
              static_cast<double>(info.reloads->failed));
    out.push_back(std::move(reloads));
    MetricFamily last = family(names::kConfigLastReloadSuccess, MetricType::Gauge);
    add_value(last, {}, info.reloads->last_success_unix);
    out.push_back(std::move(last));
  }

  if (process) {
    const std::pair<const names::MetricDef*, double> values[] = {
        {&names::kProcessCpu, process->cpu_seconds},
        {&names::kProcessRss, static_cast<double>(process->resident_bytes)},
        {&names::kProcessVirtual, static_cast<double>(process->virtual_bytes)},
        {&names::kProcessOpenFds, static_cast<double>(process->open_fds)},
        {&names::kProcessMaxFds, static_cast<double>(process->max_fds)},
        {&names::kProcessStartTime, process->start_time_seconds},
        {&names::kProcessThreads, static_cast<double>(process->threads)}};
    for (const auto& [def, value] : values) {
      MetricFamily f =
          family(*def, def == &names::kProcessCpu ? MetricType::Counter : MetricType::Gauge);
      add_value(f, {}, value);
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::string render_text(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace wsgate::metrics
