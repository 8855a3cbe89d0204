// What a worker does when accept(2) fails on its listening sockets.
//
// libevent retries EAGAIN/EINTR/ECONNABORTED itself; any other failure (EMFILE: the
// process is out of file descriptors, ENFILE: the system is, ENOBUFS/ENOMEM) leaves the
// connection in the kernel's queue, so the listening socket stays readable and the loop
// would call accept again at once, forever (a busy loop that also starves the
// connections whose closing would free descriptors). Instead the worker stops accepting
// on all its listeners for a moment (100 ms, doubling up to 1 s while failures go on),
// counts the failure in wsgate_accept_errors_total{reason} and logs it (once per pause,
// so at most ten lines a second), then accepts again; the queued connections wait in the kernel
// meanwhile.
//
// One per worker, on the worker's thread: it re-enables the worker's own listener list
// (a pointer to Worker::listeners_, which stays the same vector across reloads, and is
// empty once draining, so a drain is never undone).
#pragma once

#include <event2/util.h>

#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "metrics/worker_metrics.h"
#include "proxy/libevent_ptr.h"

namespace wsgate::gateway {

// The reason label for an accept errno (names::kAcceptErrorReasons).
std::string_view accept_error_reason(int err);

class AcceptBackoff {
 public:
  static constexpr long long kFirstPauseMs = 100;
  static constexpr long long kMaxPauseMs = 1000;

  AcceptBackoff(event_base* base, const std::vector<ListenerPtr>* listeners,
                metrics::WorkerMetrics* metrics);
  ~AcceptBackoff();
  AcceptBackoff(const AcceptBackoff&) = delete;
  AcceptBackoff& operator=(const AcceptBackoff&) = delete;

  // Routes accept failures of `l` (a listener on this backoff's base) here.
  void watch(evconnlistener* l);

  // accept(2) failed with `err`: pause every listener, resume after the pause.
  void failed(int err);

 private:
  void resume();

  event_base* base_;
  const std::vector<ListenerPtr>* listeners_;
  metrics::WorkerMetrics* metrics_;
  Timer resume_timer_;
  long long pause_ms_ = 0;  // the last pause; 0: none yet
  std::chrono::steady_clock::time_point resumed_at_;
};

}  // namespace wsgate::gateway
