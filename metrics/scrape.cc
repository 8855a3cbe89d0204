#include "metrics/scrape.h"

namespace wsgate::metrics {

ScrapeResult merge_reports(std::vector<std::optional<WorkerReport>> reports) {
  ScrapeResult result;
  result.workers = static_cast<unsigned>(reports.size());
  for (auto& report : reports) {
    if (!report) {
      result.workers_missing++;
      continue;
    }
    result.metrics.merge(report->metrics);
    for (auto& c : report->connections) result.connections.push_back(std::move(c));
  }
  return result;
}

}  // namespace wsgate::metrics
