// One scrape across the workers: each worker builds its WorkerReport on its own thread
// and the admin thread gathers them with a deadline (gateway/worker_fanout.h, the one
// gather the main thread has), then merges them here.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics/admin/connection_table.h"
#include "metrics/worker_metrics.h"

namespace wsgate::metrics {

struct WorkerReport {
  MetricsSnapshot metrics;                  // totals + live connections' traffic
  std::vector<ConnectionInfo> connections;  // only when asked for
};

// One upstream server's state, read from the shared upstream pools (relaxed atomic loads)
// on the admin thread at scrape time.
struct UpstreamServerStatus {
  std::string upstream;  // the [[upstream]] name
  std::string server;    // "host:port" (a member found by DNS: its address)
  bool up = true;        // up by the health check and not ejected
  uint64_t connections = 0;
  uint64_t transitions_up = 0;
  uint64_t transitions_down = 0;
  uint64_t rebalanced = 0;  // connections shed by rebalancing
};

// One listener certificate's expiry (wsgate_tls_certificate_expiry_timestamp_seconds).
struct CertificateExpiry {
  std::string listener;
  std::string cert;  // the certificate file, as configured
  long long not_after_unix = 0;
};

// The merged result of one scrape.
struct ScrapeResult {
  MetricsSnapshot metrics;
  std::vector<ConnectionInfo> connections;
  std::vector<UpstreamServerStatus> upstream_servers;  // filled by the AdminSource
  std::vector<CertificateExpiry> certificates;         // filled by the AdminSource
  unsigned workers = 0;
  unsigned workers_missing = 0;
};

ScrapeResult merge_reports(std::vector<std::optional<WorkerReport>> reports);

}  // namespace wsgate::metrics
