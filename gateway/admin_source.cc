#include "gateway/admin_source.h"

#include "gateway/worker.h"
#include "gateway/worker_fanout.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::gateway {

std::vector<metrics::CertificateExpiry> listener_certificates(const conf::Config& config,
                                                              const tls::TlsSnapshot& tls) {
  std::vector<metrics::CertificateExpiry> out;
  for (std::size_t i = 0; i < tls.listeners.size() && i < config.listeners.size(); ++i) {
    if (!tls.listeners[i]) continue;
    for (const auto& [file, not_after] : tls.listeners[i]->expiries())
      out.push_back({config.listeners[i].name, file, not_after});
  }
  return out;
}

metrics::ScrapeResult WorkerScraper::scrape(bool with_connections) {
  metrics::ScrapeResult result = metrics::merge_reports(gather<metrics::WorkerReport>(
      workers_, [with_connections](Worker& w) { return w.build_report(with_connections); },
      std::chrono::steady_clock::now() + kDeadline));
  result.certificates = certificates_;
  if (pools_ == nullptr) return result;
  const std::int64_t now_ms = proxy::steady_now_ms();
  for (std::size_t i = 0; i < pools_->size(); ++i) {
    const proxy::Pool& pool = pools_->at(i);
    for (const auto& s : pool.members()->servers) {
      result.upstream_servers.push_back({pool.name(), s->config.text, s->up(now_ms),
                                         s->connections(),
                                         s->transitions_up.load(std::memory_order_relaxed),
                                         s->transitions_down.load(std::memory_order_relaxed),
                                         s->rebalanced.load(std::memory_order_relaxed)});
    }
  }
  return result;
}

}  // namespace wsgate::gateway
