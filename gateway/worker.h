// One worker thread: its own event loop (gateway/dispatcher.h), its own SO_REUSEPORT
// listening sockets, every connection it accepted with that connection's upstream side
// (gateway/connection_registry.h), and the configs those connections run under
// (gateway/config_generations.h). Connections never move between workers, so nothing on
// the relay path takes a lock. Other threads talk to a worker only through post().
//
// The Worker is what connections and exchanges see of their thread; it puts those three
// parts together with accepting, draining, reloading and [limits].
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "conf/config.h"
#include "gateway/accept_backoff.h"
#include "gateway/client_limits.h"
#include "gateway/close_schedule.h"
#include "gateway/config_generations.h"
#include "gateway/connection_registry.h"
#include "gateway/dispatcher.h"
#include "gateway/exchange/downstream.h"
#include "gateway/proxy_header_reader.h"
#include "metrics/access_log.h"
#include "metrics/scrape.h"
#include "metrics/worker_metrics.h"
#include "proxy/auth/forward_auth_cache.h"
#include "proxy/idle_timeouts.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/idle_pool.h"
#include "proxy/upstream/upstream_connector.h"
#include "tls/failure_log_limiter.h"
#include "tls/tls_snapshot.h"

namespace wsgate::gateway {

class Exchange;
class H1Connection;
class H2Session;

// A listening socket made by the Server for one worker, bound to one [[listener]].
struct ListenSocket {
  // In a Worker::Update, -1: keep the socket this worker already has for the listener's
  // address (reload; no accept gap).
  evutil_socket_t fd = -1;
  const conf::Listener* listener = nullptr;
  std::size_t listener_index = 0;  // in Config::listeners (and TlsSnapshot::listeners)
};

class Worker {
 public:
  Worker(int index, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
         std::vector<ListenSocket> sockets, std::shared_ptr<const metrics::AccessLog> access_log,
         std::shared_ptr<proxy::UpstreamPools> pools);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the loop on a new thread until the worker has drained.
  void start();
  void join();

  // Thread-safe: runs `fn` on the worker's thread, soon.
  void post(std::function<void()> fn) { dispatcher_.post(std::move(fn)); }
  // Thread-safe: stop accepting, close every connection gracefully, exit when none is
  // left or after drain_timeout.
  void begin_drain();
  // Thread-safe: binary upgrade. Another process accepts on this worker's sockets now:
  // stop accepting (closing only this process's copies of the sockets), tell HTTP/2
  // clients GOAWAY, let every connection run to its end; the worker exits when none is
  // left (or begin_drain() comes at the upgrade deadline).
  void retire();
  // Worker thread only: a duplicate of each listening socket, with its address, for the
  // process taking over (the caller owns the fds).
  std::vector<std::pair<conf::HostPort, int>> duplicate_listening_sockets() const;
  // A reload, as published to one worker (gateway/reload.cc builds it, completely
  // validated, before any worker sees it).
  struct Update {
    conf::ConfigPtr config;
    tls::TlsSnapshotPtr tls;  // built from `config`
    std::shared_ptr<const metrics::AccessLog> access_log;
    std::shared_ptr<proxy::UpstreamPools> pools;  // built from `config`
    // One per listener of `config`, in order; fd -1 keeps this worker's socket for that
    // address. Sockets of addresses not listed any more are closed.
    std::vector<ListenSocket> sockets;
    std::shared_ptr<ClientLimits> client_limits;  // [limits] for new connections; null: none
  };
  // Thread-safe: new connections use the update; established ones keep the generation
  // they started with (gateway/config_generations.h). Listeners whose address stays keep their
  // sockets; connections accepted on a removed listener go on.
  void adopt(Update update);

  // For sessions (worker thread only).
  event_base* base() const { return dispatcher_.base(); }
  evdns_base* dns() const { return dns_.get(); }
  proxy::IdlePool& idle_upstreams() { return idle_upstreams_; }
  // Forward-auth decisions ([route.auth] cache_ttl), this worker's only.
  proxy::ForwardAuthCaches& forward_auth_caches() { return forward_auth_caches_; }
  // The balancers of the generation new connections use.
  proxy::Balancers& balancers() { return generations_.balancers(); }
  // The balancers of the generation `config` belongs to (a session's own config, which
  // keeps that generation alive).
  proxy::Balancers& balancers_for(const conf::Config& config) {
    return generations_.balancers_for(config);
  }
  const metrics::AccessLog& access_log() const { return *access_log_; }
  // A TLS handshake failed: counted by reason, logged at a bounded rate.
  void record_tls_failure(const std::string& listener, const std::string& reason,
                          const std::string& client);
  // The connection is over: it is destroyed after the current loop iteration.
  void session_done(H1Connection* connection);
  // Takes and lists an exchange (gateway/exchange/exchange.h) until exchange_done, after
  // which it is destroyed at the end of the loop iteration.
  Exchange* add_exchange(std::unique_ptr<Exchange> exchange);
  void exchange_done(Exchange* exchange);
  // A finished connector (its callback may still be on the stack): destroyed later.
  void retire(std::unique_ptr<proxy::UpstreamConnector> connector);
  metrics::WorkerMetrics& metrics() { return metrics_; }
  // The idle timeouts of this worker's relays (proxy/idle_timeouts.h).
  proxy::IdleTimeouts& idle_timeouts() { return idle_timeouts_; }

  // This worker's metrics report (gateway/worker_report.cc): on the worker's thread
  // (gateway/worker_fanout.h gathers them), or on any thread once finished().
  metrics::WorkerReport build_report(bool with_connections) const;
  int index() const { return index_; }
  // Thread-safe: the loop has exited (drained); nothing runs on the worker's thread any more.
  bool finished() const { return dispatcher_.finished(); }
  std::size_t connection_count() const { return registry_.size(); }

  // HTTP/2 (worker thread only). A connection that chose h2 by ALPN, or sent the h2c
  // preface, leaves its H1Connection for an H2Session owned here like any connection.
  // `admission`: the TCP connection's place in the [limits] counts, kept while it is open.
  void start_h2(BufferEventPtr client, conf::ConfigPtr config, tls::TlsSnapshotPtr tls,
                const conf::Listener& listener, DownstreamFacts facts,
                ClientLimits::Decision admission = {});
  void h2_session_done(H2Session* session);
  uint64_t next_connection_id() { return next_connection_id_++; }

  // Closing chosen WebSockets, at once or spread over a window (gateway/worker_drain.cc).
  // All on the worker's thread: other threads post() these. A connection counts when it
  // is relaying and not already closing; `spread` 0 closes at once.
  // Every relayed WebSocket whose upstream side is on `server` (per-server drain when a
  // server leaves the pool; admin close of a server). Returns how many will be closed.
  std::size_t drain_server(const proxy::ServerState* server, uint16_t code,
                           const std::string& reason, conf::Duration spread);
  // Rebalancing: Close 1001 to the youngest of this worker's connections on `server`, one
  // per unit taken from `budget` (shared by all workers). Returns how many.
  std::size_t shed_server(const proxy::ServerPtr& server, std::atomic<std::int64_t>& budget,
                          conf::Duration spread);
  // Admin close of connection `id` (its number in /connections); false when this worker
  // has no such relayed connection.
  bool close_connection(uint64_t id, uint16_t code, const std::string& reason);
  // Connection limits ([limits]), shared by every worker; unset: no limits. Set before
  // start().
  void set_client_limits(std::shared_ptr<ClientLimits> limits) {
    client_limits_ = std::move(limits);
  }
  // A new connection (accepted TCP connection, or HTTP/2 WebSocket stream from the client
  // at `ip`) takes its place in the limits' counts; a refusal is counted in
  // wsgate_limit_rejections_total (gateway/worker_limits.cc). Worker thread only.
  // A connection (or HTTP/2 stream) from `addr`/`ip`. A peer in trusted_proxies carries
  // many clients: it is not counted here but per request (admit_forwarded_client).
  ClientLimits::Decision admit_client(const sockaddr* addr);
  ClientLimits::Decision admit_client(std::string_view ip);
  // One request from a trusted proxy, counted for the client its X-Forwarded-For names
  // (or the proxy itself without one) for as long as the exchange lasts.
  ClientLimits::Decision admit_forwarded_client(std::string_view ip);

 private:
  static void on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  // An accepted socket (after its PROXY header, if the listener wants one) becomes a
  // connection from `client`: [limits] admission, then an H1Connection.
  void open_connection(evutil_socket_t fd, const sockaddr* client, const AcceptedOn& on,
                       const ProxiedConnection* proxied);
  void make_dns();
  void listen_on(const ListenSocket& socket, std::vector<ListenerPtr>& listeners,
                 std::vector<ListenSocket>& sockets);
  void drain_now();
  void retire_now();
  // SIGTERM: handshakes get 503 at once, relayed WebSockets Close 1001 spread over `spread`.
  void drain_sessions(conf::Duration spread);
  CloseSchedule& close_schedule();
  bool close_now(const CloseSchedule::Target& target, const CloseSchedule::Close& close);
  void on_drain_deadline();
  void maybe_exit();
  void close_everything();
  void flush_tls_failure_summary();
  void report_tls_failures_not_logged(uint64_t count);
  void adopt_now(Update update);

  const int index_;
  ConfigGenerations generations_;
  Dispatcher dispatcher_;  // after generations_: the loop ends before any config does
  // The current one; sessions read it when they end, so it never outlives this worker's use.
  std::shared_ptr<const metrics::AccessLog> access_log_;
  DnsBasePtr dns_;
  // Idle keep-alive connections to upstream servers (HTTP forwarding); declared after
  // dispatcher_ so that they are freed before its event_base.
  proxy::IdlePool idle_upstreams_;
  // Every relay's idle timeout, on one timer; after dispatcher_ (its event_base). A relay
  // freed after it (deferred) is unlisted already.
  proxy::IdleTimeouts idle_timeouts_;
  proxy::ForwardAuthCaches forward_auth_caches_;
  std::vector<ListenerPtr> listeners_;
  std::vector<ListenSocket> listen_sockets_;       // parallel to listeners_
  std::unique_ptr<AcceptBackoff> accept_backoff_;  // pauses listeners_ on EMFILE and such
  tls::FailureLogLimiter tls_log_;
  std::unique_ptr<ProxyHeaderReaders> proxy_headers_;  // sockets whose PROXY header is awaited
  ConnectionRegistry registry_;
  uint64_t next_connection_id_ = 1;
  bool draining_ = false;
  bool retiring_ = false;           // handed over to a new process (retire())
  metrics::WorkerMetrics metrics_;  // written on the worker's thread only
  std::unique_ptr<Timer> drain_deadline_;
  std::unique_ptr<Timer> tls_log_flush_;  // logs the count of unlogged TLS failures
  std::shared_ptr<ClientLimits> client_limits_;
  std::unique_ptr<CloseSchedule> close_schedule_;  // made on first use
};

}  // namespace wsgate::gateway
