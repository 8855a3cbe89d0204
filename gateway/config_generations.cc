#include "gateway/config_generations.h"

#include "metrics/log.h"

namespace wsgate::gateway {

ConfigGenerations::ConfigGenerations(conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                                     std::shared_ptr<proxy::UpstreamPools> pools,
                                     std::uint64_t seed, metrics::WorkerMetrics* metrics)
    : seed_(seed), metrics_(metrics) {
  use(std::move(config), std::move(tls), std::move(pools));
}

void ConfigGenerations::use(conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                            std::shared_ptr<proxy::UpstreamPools> pools) {
  std::erase_if(past_, [](const auto& g) { return g.expired(); });
  if (current_) past_.push_back(current_);
  current_ = std::make_shared<Generation>(std::move(config), std::move(tls), std::move(pools),
                                          seed_, metrics_);
  config_ = conf::ConfigPtr(current_, current_->config.get());
}

proxy::Balancers& ConfigGenerations::balancers_for(const conf::Config& config) {
  if (&config == current_->config.get()) return current_->balancers;
  for (const auto& weak : past_) {
    // The caller's ConfigPtr keeps its generation alive: the reference stays valid.
    if (auto g = weak.lock(); g && g->config.get() == &config) return g->balancers;
  }
  log::error("a connection's config has no generation in this worker");
  return no_balancers_;
}

}  // namespace wsgate::gateway
