// One scrape across the workers. The admin thread creates a ScrapeCollector, posts a
// job to every worker (Worker::post, the existing mailbox) that builds that worker's
// WorkerReport on its own thread and delivers it here, then waits for the reports with a
// deadline. The collector is the only thing the threads share, and only for the length
// of one scrape (shared_ptr: a worker that answers after the deadline writes into a
// collector nobody reads any more, never into freed memory).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
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

class ScrapeCollector {
 public:
  explicit ScrapeCollector(std::size_t workers) : reports_(workers) {}

  // Any thread; a second report for the same worker is ignored.
  void deliver(std::size_t worker, WorkerReport report);

  // Waits until every worker has delivered or `deadline` passes; returns the reports
  // that arrived (moved out, so call once).
  std::vector<std::optional<WorkerReport>> wait(std::chrono::steady_clock::time_point deadline);

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::optional<WorkerReport>> reports_;
  std::size_t delivered_ = 0;
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

// The merged result of one scrape.
struct ScrapeResult {
  MetricsSnapshot metrics;
  std::vector<ConnectionInfo> connections;
  std::vector<UpstreamServerStatus> upstream_servers;  // filled by the AdminSource
  unsigned workers = 0;
  unsigned workers_missing = 0;
};

ScrapeResult merge_reports(std::vector<std::optional<WorkerReport>> reports);

}  // namespace wsgate::metrics
