#include "gateway/admin_source.h"

#include "gateway/worker.h"

namespace wsgate::gateway {

metrics::ScrapeResult WorkerScraper::scrape(bool with_connections) {
  auto collector = std::make_shared<metrics::ScrapeCollector>(workers_.size());
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  for (const auto& w : workers_) w->post_report(collector, with_connections);
  return metrics::merge_reports(collector->wait(deadline));
}

}  // namespace wsgate::gateway
