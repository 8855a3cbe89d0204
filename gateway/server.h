// The process: opens listeners and the access log, starts the workers, and turns
// signals into actions (SIGTERM/SIGINT: graceful drain, then exit 0).
#pragma once

#include <memory>
#include <vector>

#include "conf/config.h"
#include "metrics/access_log.h"
#include "proxy/upstream_pool.h"

namespace wsgate::gateway {

class Worker;

class Server {
 public:
  explicit Server(conf::ConfigPtr config);
  ~Server();
  // Runs until drained after SIGTERM/SIGINT. Returns the process exit code.
  int run();

 private:
  conf::ConfigPtr config_;
  metrics::AccessLog access_log_;
  std::shared_ptr<proxy::UpstreamPools> pools_;  // shared with workers and health checks
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace wsgate::gateway
