// Idle keep-alive connections to upstream servers, for HTTP forwarding (issue 15): one
// pool per worker (gateway/worker.h), so nothing is shared between threads. A forwarded
// request whose response ended cleanly leaves its upstream connection here; the next
// request to the same server takes it instead of connecting (UpstreamConnector::
// reuse_from). While idle a connection is watched: the server closing it, sending
// anything, or the idle timeout drops it.
//
// Ownership: the pool owns its idle bufferevents and timers; it must be destroyed before
// the event_base they belong to. Each entry keeps its ServerState alive, so a key never
// names a different server than the one the connection goes to. With a WorkerMetrics the
// pool counts, per (upstream, server), its idle connections, hits, misses and the idle
// connections it closed (wsgate_upstream_idle_connections and friends).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "metrics/worker_metrics.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::proxy {

class IdlePool {
 public:
  // `metrics` (may be null: nothing counted) must outlive the pool's use.
  explicit IdlePool(metrics::WorkerMetrics* metrics = nullptr) : metrics_(metrics) {}
  IdlePool(const IdlePool&) = delete;
  IdlePool& operator=(const IdlePool&) = delete;

  // The most recently idled connection to `server` (of the upstream named `upstream`), or
  // null: a hit or a miss. The caller sets its own callbacks on it.
  UpstreamConnection take(std::string_view upstream, const ServerState* server);
  // Keeps `bev` (nothing buffered either way) for the next request to `server`, at most
  // `max_idle` per server (the oldest goes first), for at most `timeout`.
  void put(std::string_view upstream, const ServerPtr& server, UpstreamConnection bev,
           std::size_t max_idle, conf::Duration timeout);
  std::size_t size() const;

 private:
  struct Idle {
    IdlePool* pool = nullptr;
    const ServerState* server = nullptr;
    metrics::UpstreamPoolStats* stats = nullptr;
    UpstreamConnection bev;
    EventPtr timer;  // made once: an entry is reused for later idle connections
    // When this connection's keepalive_timeout ends, and when the timer, if pending, fires.
    // The timer is not stopped when the connection is taken: it fires no later than the
    // next deadline, and on_timeout() waits out the rest (no event_del and event_add for
    // every request on a pooled connection).
    timeval due{};
    timeval armed_for{};
  };
  // One server's idle connections, oldest first. The entry keeps its ServerState alive
  // (so its address names no other server) and its counts, looked up once.
  struct Server {
    ServerPtr state;
    metrics::UpstreamPoolStats* stats = nullptr;
    std::vector<std::unique_ptr<Idle>> idle;
  };
  // Entries kept for reuse: a request's connection going idle costs no allocation.
  static constexpr std::size_t kMaxSpare = 256;

  static void on_read(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  static void on_timeout(evutil_socket_t fd, short what, void* self);
  void drop(Idle* idle, std::size_t reason);  // reason: an index of kIdleCloseReasons
  metrics::UpstreamPoolStats* stats(std::string_view upstream, const ServerState* server);
  // Takes entry `i` out of `server` (the connection stays in it; its timer may still fire,
  // and then finds no connection).
  static std::unique_ptr<Idle> remove(Server& server, std::size_t i);
  void recycle(std::unique_ptr<Idle> idle);

  metrics::WorkerMetrics* metrics_;
  std::unordered_map<const ServerState*, Server> idle_;
  std::vector<std::unique_ptr<Idle>> spare_;
};

}  // namespace wsgate::proxy
