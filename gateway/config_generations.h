// The configs one worker runs: the current generation, which new connections use, and
// the earlier ones that connections started under still hold after a reload.
//
// Ownership: connections hold their generation through their ConfigPtr, an aliasing
// pointer into it (config() hands it out), so a generation lives until its last
// connection ends. That keeps valid everything a live connection points into: its
// conf::Listener, conf::Route and conf::Upstream (in `config`), its TLS contexts, and this
// worker's balancers over the config's pools, whose UpstreamBalancer* a ServerSelection
// holds during a connect (the pools, in turn, hold references into `config`).
// Threading: the worker's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "conf/config.h"
#include "proxy/upstream/balancer.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class ConfigGenerations {
 public:
  // `seed` varies the random balancers between workers; `metrics` (the worker's, may be
  // null) counts their upstream connects.
  ConfigGenerations(conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                    std::shared_ptr<proxy::UpstreamPools> pools, std::uint64_t seed,
                    metrics::WorkerMetrics* metrics = nullptr);

  // A reload: new connections use this one; the current one stays alive while some
  // connection holds it.
  void use(conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
           std::shared_ptr<proxy::UpstreamPools> pools);

  // The current generation's config (aliasing the generation) and TLS snapshot.
  const conf::ConfigPtr& config() const { return config_; }
  const tls::TlsSnapshotPtr& tls() const { return current_->tls; }
  // The balancers of the current generation.
  proxy::Balancers& balancers() { return current_->balancers; }
  // The balancers of the generation `config` belongs to (a connection's own config, which
  // keeps that generation alive); balancers that find nothing for an unknown config.
  proxy::Balancers& balancers_for(const conf::Config& config);

 private:
  struct Generation {
    Generation(conf::ConfigPtr c, tls::TlsSnapshotPtr t, std::shared_ptr<proxy::UpstreamPools> p,
               std::uint64_t seed, metrics::WorkerMetrics* metrics)
        : config(std::move(c)), tls(std::move(t)), balancers(std::move(p), seed, metrics) {}
    conf::ConfigPtr config;  // first: destroyed last, after the balancers and pools
    tls::TlsSnapshotPtr tls;
    proxy::Balancers balancers;
  };

  const std::uint64_t seed_;
  metrics::WorkerMetrics* const metrics_;
  std::shared_ptr<Generation> current_;
  // Earlier generations, alive while some connection still holds one.
  std::vector<std::weak_ptr<Generation>> past_;
  conf::ConfigPtr config_;  // current_->config, aliasing current_
  proxy::Balancers no_balancers_{nullptr, 0};
};

}  // namespace wsgate::gateway
