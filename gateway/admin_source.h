// What the admin server (metrics/admin/admin_server.h) asks the gateway: a scrape across the
// workers, and whether the process is ready. Lives on the main thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "conf/config.h"
#include "metrics/admin/admin_server.h"
#include "tls/tls_snapshot.h"

namespace wsgate::proxy {
class UpstreamPools;
}

namespace wsgate::gateway {

class Worker;

// Every TLS listener's certificate files with their expiry, for
// wsgate_tls_certificate_expiry_timestamp_seconds.
std::vector<metrics::CertificateExpiry> listener_certificates(const conf::Config& config,
                                                              const tls::TlsSnapshot& tls);

class WorkerScraper final : public metrics::AdminSource {
 public:
  // How long a scrape waits for the workers' reports; a worker that misses it is
  // reported by wsgate_scrape_workers_missing and its numbers are left out.
  static constexpr std::chrono::milliseconds kDeadline{1000};

  // The references must outlive the scraper; `draining` is the Server's flag. `pools`
  // (may be null) gives the upstream servers' state (relaxed atomic loads, no locks
  // but the membership snapshot's).
  WorkerScraper(const std::vector<std::unique_ptr<Worker>>& workers, const bool& draining,
                proxy::UpstreamPools* pools = nullptr)
      : workers_(workers), draining_(draining), pools_(pools) {}

  metrics::ScrapeResult scrape(bool with_connections) override;
  bool ready() const override { return !draining_; }
  // The admin close endpoints (gateway/admin_close.cc): each posts to the workers and
  // waits for their answers until kDeadline.
  bool close_connection(int worker, uint64_t id, uint16_t code, const std::string& reason) override;
  std::optional<std::size_t> close_server(const std::string& upstream, const std::string& server,
                                          uint16_t code, const std::string& reason) override;
  metrics::ReloadResult reload() override {
    if (!reload_) return {false, "reload is not available"};
    return reload_();
  }
  metrics::ReloadStats reload_stats() const override {
    return reload_stats_ != nullptr ? *reload_stats_ : metrics::ReloadStats{};
  }

  // The Server's reload and its counts (`stats` must outlive the scraper).
  void set_reload(std::function<metrics::ReloadResult()> reload,
                  const metrics::ReloadStats* stats) {
    reload_ = std::move(reload);
    reload_stats_ = stats;
  }
  // A reload published new pools.
  void set_pools(proxy::UpstreamPools* pools) { pools_ = pools; }
  // The listeners' certificates as loaded now (at start, and by each published reload).
  void set_certificates(std::vector<metrics::CertificateExpiry> certificates) {
    certificates_ = std::move(certificates);
  }

 private:
  const std::vector<std::unique_ptr<Worker>>& workers_;
  const bool& draining_;
  proxy::UpstreamPools* pools_;
  std::vector<metrics::CertificateExpiry> certificates_;
  std::function<metrics::ReloadResult()> reload_;
  const metrics::ReloadStats* reload_stats_ = nullptr;
};

}  // namespace wsgate::gateway
