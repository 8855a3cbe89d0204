// The process: opens listeners and the access log, starts the workers and the admin
// server, and turns signals into actions (SIGTERM/SIGINT: graceful drain, then exit 0;
// SIGUSR1: reopen the access log; SIGHUP: reload the certificates and keys named in the
// config, keeping the old ones if any new one fails).
#pragma once

#include <memory>
#include <vector>

#include "conf/config.h"
#include "metrics/access_log.h"
#include "metrics/admin_server.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream_pool.h"
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
  // Main thread: closes, with Close 1001 spread over drain_spread, every WebSocket whose
  // upstream side is on `server`, in every worker (gateway/server_drain.cc). For servers
  // that leave the pool: DNS re-resolution calls it; so should a config reload, for each
  // server it removes.
  void drain_server(const std::string& upstream, const proxy::ServerPtr& server);

 private:
  static void on_stop_signal(evutil_socket_t sig, short what, void* self);
  static void on_reopen_signal(evutil_socket_t sig, short what, void* self);
  static void on_reload_signal(evutil_socket_t sig, short what, void* self);
  // Drain: the workers close their connections while this loop keeps serving the admin
  // endpoints (/ready says 503); it exits once every worker has finished.
  void begin_drain();
  void check_drained();
  // Rebalancing (proxy/rebalancer.h): the workers close `count` of `server`'s youngest
  // connections with 1001, spread over `spread` (gateway/server_drain.cc).
  void shed(const std::string& upstream, const proxy::ServerPtr& server, std::size_t count,
            conf::Duration spread);

  conf::ConfigPtr config_;
  tls::TlsSnapshotPtr tls_;
  metrics::AccessLog access_log_;
  std::shared_ptr<proxy::UpstreamPools> pools_;  // shared with workers and health checks
  std::vector<std::unique_ptr<Worker>> workers_;
  event_base* base_ = nullptr;
  bool draining_ = false;
  std::unique_ptr<Timer> drain_poll_;
};

}  // namespace wsgate::gateway
