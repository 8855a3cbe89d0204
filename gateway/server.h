// The process: opens listeners and the access log, starts the workers, and turns
// signals into actions (SIGTERM/SIGINT: graceful drain, then exit 0; SIGHUP: reload the
// certificates and keys named in the config, keeping the old ones if any new one fails).
#pragma once

#include <memory>
#include <vector>

#include "conf/config.h"
#include "metrics/access_log.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class Worker;

class Server {
 public:
  explicit Server(conf::ConfigPtr config);
  ~Server();
  // Runs until drained after SIGTERM/SIGINT. Returns the process exit code.
  int run();
  void reload_certificates();

 private:
  conf::ConfigPtr config_;
  tls::TlsSnapshotPtr tls_;
  metrics::AccessLog access_log_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace wsgate::gateway
