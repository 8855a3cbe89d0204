// The Prometheus text exposition of a scrape: builds prometheus-cpp MetricFamily values
// from the merged MetricsSnapshot (names and help from metric_names.h) and serializes
// them with prometheus::TextSerializer (format 0.0.4).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "metrics/admin/connection_table.h"
#include "metrics/process_stats.h"
#include "metrics/reload_stats.h"
#include "metrics/scrape.h"
#include "metrics/worker_metrics.h"

namespace wsgate::metrics {

struct ScrapeInfo {
  unsigned workers = 0;          // worker threads
  unsigned workers_missing = 0;  // did not answer before the deadline
  // wsgate_upstream_server_*: one entry per pool member.
  std::span<const UpstreamServerStatus> upstream_servers;
  // Per-connection series ([admin] per_connection_metrics): when set, the connection
  // table rows of this scrape; the relayed ones (state "relaying") get series, at most
  // per_connection_limit of them, the oldest first.
  const std::vector<ConnectionInfo>* connections = nullptr;
  std::size_t per_connection_limit = 0;
  // wsgate_config_reloads_total and ..._last_reload_success_timestamp_seconds; null: left out.
  const ReloadStats* reloads = nullptr;
  // The TLS listeners' certificates as last loaded (start, reload).
  std::span<const CertificateExpiry> certificates;
};

std::vector<prometheus::MetricFamily> build_families(const MetricsSnapshot& s,
                                                     const ScrapeInfo& info,
                                                     const std::optional<ProcessStats>& process);

std::string render_text(const std::vector<prometheus::MetricFamily>& families);

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace wsgate::metrics
