#include "metrics/scrape.h"

namespace wsgate::metrics {

void ScrapeCollector::deliver(std::size_t worker, WorkerReport report) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (worker >= reports_.size() || reports_[worker].has_value()) return;
    reports_[worker] = std::move(report);
    delivered_++;
  }
  arrived_.notify_one();
}

std::vector<std::optional<WorkerReport>> ScrapeCollector::wait(
    std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait_until(lock, deadline, [this] { return delivered_ == reports_.size(); });
  return std::move(reports_);
}

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
