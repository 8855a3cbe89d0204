// One worker thread: its own event_base, its own SO_REUSEPORT listening sockets, and
// every connection it accepted (with that connection's upstream side). Connections
// never move between workers, so nothing on the relay path takes a lock. Other threads
// talk to a worker only through post().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "metrics/access_log.h"
#include "proxy/balancer.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

class H1Session;

// A listening socket made by the Server for one worker, bound to one [[listener]].
struct ListenSocket {
  evutil_socket_t fd = -1;
  const conf::Listener* listener = nullptr;
};

class Worker {
 public:
  Worker(int index, conf::ConfigPtr config, std::vector<ListenSocket> sockets,
         const metrics::AccessLog& access_log, std::shared_ptr<proxy::UpstreamPools> pools);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the loop on a new thread until the worker has drained.
  void start();
  void join();

  // Thread-safe: runs `fn` on the worker's thread, soon.
  void post(std::function<void()> fn);
  // Thread-safe: stop accepting, close every connection gracefully, exit when none is
  // left or after drain_timeout.
  void begin_drain();

  // For sessions (worker thread only).
  event_base* base() const { return base_.get(); }
  evdns_base* dns() const { return dns_.get(); }
  proxy::Balancers& balancers() { return balancers_; }
  const metrics::AccessLog& access_log() const { return access_log_; }
  // The session is over: it is destroyed after the current loop iteration.
  void session_done(H1Session* session);
  std::size_t connection_count() const { return sessions_.size(); }

 private:
  static void on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
  static void on_wakeup(evutil_socket_t fd, short what, void* arg);
  static void on_reap(evutil_socket_t fd, short what, void* arg);
  void run();
  void drain_now();
  void on_drain_deadline();
  void maybe_exit();

  const int index_;
  conf::ConfigPtr config_;
  const metrics::AccessLog& access_log_;
  EventBasePtr base_;
  DnsBasePtr dns_;
  proxy::Balancers balancers_;
  std::vector<ListenerPtr> listeners_;
  std::vector<const conf::Listener*> listener_configs_;
  std::unordered_map<H1Session*, std::unique_ptr<H1Session>> sessions_;
  std::vector<std::unique_ptr<H1Session>> graveyard_;
  EventPtr reap_event_;
  uint64_t next_connection_id_ = 1;
  bool draining_ = false;
  std::unique_ptr<Timer> drain_deadline_;

  // Cross-thread mailbox: the only lock, taken only by post() and the wakeup handler.
  int wake_fd_ = -1;  // eventfd
  EventPtr wake_event_;
  std::mutex mailbox_mutex_;
  std::vector<std::function<void()>> mailbox_;
  std::thread thread_;
};

}  // namespace wsgate::gateway
