// Idle keep-alive connections to upstream servers, for HTTP forwarding (issue 15): one
// pool per worker (gateway/worker.h), so nothing is shared between threads. A forwarded
// request whose response ended cleanly leaves its upstream connection here; the next
// request to the same server takes it instead of connecting (UpstreamConnector::
// reuse_from). While idle a connection is watched: the server closing it, sending
// anything, or the idle timeout drops it.
//
// Ownership: the pool owns its idle bufferevents and timers; it must be destroyed before
// the event_base they belong to. Each entry keeps its ServerState alive, so a key never
// names a different server than the one the connection goes to.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <unordered_map>

#include "conf/config.h"
#include "proxy/libevent_ptr.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::proxy {

class IdlePool {
 public:
  IdlePool() = default;
  IdlePool(const IdlePool&) = delete;
  IdlePool& operator=(const IdlePool&) = delete;

  // The most recently idled connection to `server`, or null. The caller sets its own
  // callbacks on it.
  BufferEventPtr take(const ServerState* server);
  // Keeps `bev` (nothing buffered either way) for the next request to `server`, at most
  // `max_idle` per server (the oldest goes first), for at most `timeout`.
  void put(const ServerPtr& server, BufferEventPtr bev, std::size_t max_idle,
           conf::Duration timeout);
  std::size_t size() const;

 private:
  struct Idle {
    IdlePool* pool = nullptr;
    ServerPtr server;
    BufferEventPtr bev;
    EventPtr timer;
  };
  using List = std::list<std::unique_ptr<Idle>>;

  static void on_read(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  static void on_timeout(evutil_socket_t fd, short what, void* self);
  void drop(Idle* idle);

  std::unordered_map<const ServerState*, List> idle_;
};

}  // namespace wsgate::proxy
