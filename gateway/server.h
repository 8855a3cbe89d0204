// The process: opens listeners and the access log, starts the workers and the admin
// server, and turns signals into actions (SIGTERM/SIGINT: graceful drain, then exit 0;
// SIGUSR1: reopen the access log; SIGHUP: reload the configuration in place, see
// gateway/reload.cc; POST /reload on the admin listener does the same).
#pragma once

#include <memory>
#include <vector>

#include <string>
#include <string_view>

#include "conf/config.h"
#include "gateway/client_limits.h"
#include "gateway/systemd_notify.h"
#include "gateway/upgrade_listener.h"
#include "gateway/worker.h"
#include "metrics/access_log.h"
#include "metrics/admin/admin_server.h"
#include "metrics/reload_stats.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/upstream/rebalancer.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/upstream/upstream_resolver.h"
#include "tls/tls_snapshot.h"

namespace wsgate::proxy {
class JwksFetchers;
}

namespace wsgate::gateway {

class WorkerScraper;
class InheritedSockets;
class TakeoverClient;

// The error log's level and format from `config` (log_level, log_format): at start and
// after each reload that publishes a new config.
void apply_log_settings(const conf::Config& config);

class Server {
 public:
  // `takeover`: the upgrade_socket of a running wsgate whose listening sockets this
  // process takes over (binary upgrade, gateway/server_upgrade.cc); "" to bind its own.
  explicit Server(conf::ConfigPtr config, std::string takeover = {});
  ~Server();
  // Runs until drained after SIGTERM/SIGINT. Returns the process exit code.
  int run();
  // Main thread: closes, with Close 1001 spread over drain_spread, every WebSocket whose
  // upstream side is on `server`, in every worker (gateway/server_drain.cc). For servers
  // that leave the pool: DNS re-resolution calls it, and so does a config reload for each
  // server it removes (gateway/reload.cc).
  void drain_server(const std::string& upstream, const proxy::ServerPtr& server);
  // Loads the config file again and, only if all of it is valid and every new socket
  // opened, publishes it (gateway/reload.cc). `trigger` ("SIGHUP", "POST /reload") is
  // named in the log line. Main thread only.
  metrics::ReloadResult reload(std::string_view trigger);
  // reload() framed for systemd: RELOADING=1 before, READY=1 with the result after.
  metrics::ReloadResult reload_and_notify(std::string_view trigger);

 private:
  static void on_stop_signal(evutil_socket_t sig, short what, void* self);
  static void on_reopen_signal(evutil_socket_t sig, short what, void* self);
  static void on_reload_signal(evutil_socket_t sig, short what, void* self);
  // Drain: the workers close their connections while this loop keeps serving the admin
  // endpoints (/ready says 503); it exits once every worker has finished.
  void begin_drain();
  // After drain_delay (or at once): the workers stop accepting and close everything.
  void start_worker_drain();
  void check_drained();
  // Rebalancing (proxy/upstream/rebalancer.h): the workers close `count` of `server`'s youngest
  // connections with 1001, spread over `spread` (gateway/server_drain.cc).
  void shed(const std::string& upstream, const proxy::ServerPtr& server, std::size_t count,
            conf::Duration spread);
  // gateway/reload.cc
  std::string reload_refusal(const conf::Config& next) const;
  bool open_new_listeners(const conf::Config& next, std::vector<std::vector<ListenSocket>>& out,
                          std::string& error) const;
  void start_upstream_tasks();
  // gateway/server_upgrade.cc: the binary upgrade, both sides.
  bool open_upgrade_socket(std::string& error);
  std::string handover_refusal() const;
  std::vector<UpgradeListener::HandedSocket> handover_sockets(std::string& error);
  void handed_over(pid_t successor);
  // The sockets systemd passed (LISTEN_FDS) and, with --takeover, those of the running
  // wsgate; false (logged) when the takeover failed.
  bool collect_inherited_sockets(InheritedSockets& into);
  // systemd's STATUS= line: workers and relayed connections (one scrape of the workers),
  // refreshed every kStatusIntervalMs while $NOTIFY_SOCKET is set.
  std::string status_text();
  static constexpr long long kStatusIntervalMs = 10000;

  // The published snapshot. The pools hold references into config_ and the resolver and
  // health checker into both: declared in this order so that they go first, and
  // reload() stops them before it replaces config_ and pools_.
  conf::ConfigPtr config_;
  tls::TlsSnapshotPtr tls_;
  std::shared_ptr<metrics::AccessLog> access_log_;  // shared with the workers
  std::shared_ptr<proxy::UpstreamPools> pools_;     // shared with workers and health checks
  // [limits] counts of every worker's connections; null without limits. A reload that
  // changes [limits] publishes a new table (gateway/reload.cc).
  std::shared_ptr<ClientLimits> client_limits_;
  std::unique_ptr<proxy::UpstreamResolver> resolver_;
  std::unique_ptr<proxy::HealthChecker> health_checker_;
  std::unique_ptr<proxy::JwksFetchers> jwks_;  // routes' jwks_url (proxy/auth/jwks_fetcher.h)
  std::unique_ptr<proxy::Rebalancer> rebalancer_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<WorkerScraper> scraper_;
  std::unique_ptr<metrics::AdminServer> admin_;
  metrics::ReloadStats reload_stats_;
  event_base* base_ = nullptr;
  bool draining_ = false;
  std::string takeover_;                      // --takeover PATH, "" without
  bool retiring_ = false;                     // a new process took the listening sockets over
  std::unique_ptr<UpgradeListener> upgrade_;  // upgrade_socket, while this process accepts
  std::unique_ptr<Timer> upgrade_deadline_;   // retiring: the drain starts when it fires
  std::unique_ptr<TakeoverClient> takeover_client_;  // --takeover, until READY is answered
  std::unique_ptr<Timer> drain_poll_;
  std::unique_ptr<Timer> drain_delay_;  // pending while drain_delay runs
  SystemdNotifier systemd_;             // inactive unless started by systemd with Type=notify
  std::unique_ptr<Timer> status_timer_;
};

}  // namespace wsgate::gateway
