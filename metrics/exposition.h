// The Prometheus text exposition of a scrape: builds prometheus-cpp MetricFamily values
// from the merged MetricsSnapshot (names and help from metric_names.h) and serializes
// them with prometheus::TextSerializer (format 0.0.4).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "metrics/process_stats.h"
#include "metrics/worker_metrics.h"

namespace wsgate::metrics {

struct ScrapeInfo {
  unsigned workers = 0;          // worker threads
  unsigned workers_missing = 0;  // did not answer before the deadline
};

std::vector<prometheus::MetricFamily> build_families(const MetricsSnapshot& s,
                                                     const ScrapeInfo& info,
                                                     const std::optional<ProcessStats>& process);

std::string render_text(const std::vector<prometheus::MetricFamily>& families);

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace wsgate::metrics
