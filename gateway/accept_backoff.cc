#include "gateway/accept_backoff.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "metrics/log.h"

namespace wsgate::gateway {
namespace {

// libevent hands the error callback the accept callback's argument (the Worker), not
// ours, so each base finds its backoff here. Touched only when a worker starts or stops
// and on an accept failure.
std::mutex registry_mutex;
std::unordered_map<event_base*, AcceptBackoff*>& registry() {
  static std::unordered_map<event_base*, AcceptBackoff*> by_base;
  return by_base;
}

void on_listener_error(evconnlistener* l, void* /*worker*/) {
  const int err = EVUTIL_SOCKET_ERROR();
  AcceptBackoff* backoff = nullptr;
  {
    std::lock_guard lock(registry_mutex);
    const auto it = registry().find(evconnlistener_get_base(l));
    if (it != registry().end()) backoff = it->second;
  }
  if (backoff != nullptr) backoff->failed(err);
}

}  // namespace

std::string_view accept_error_reason(int err) {
  switch (err) {
    case EMFILE:
      return "emfile";
    case ENFILE:
      return "enfile";
    case ENOBUFS:
    case ENOMEM:
      return "nomem";
    default:
      return "other";
  }
}

AcceptBackoff::AcceptBackoff(event_base* base, const std::vector<ListenerPtr>* listeners,
                             metrics::WorkerMetrics* metrics)
    : base_(base),
      listeners_(listeners),
      metrics_(metrics),
      resume_timer_(base, [this] { resume(); }) {
  std::lock_guard lock(registry_mutex);
  registry()[base_] = this;
}

AcceptBackoff::~AcceptBackoff() {
  std::lock_guard lock(registry_mutex);
  registry().erase(base_);
}

void AcceptBackoff::watch(evconnlistener* l) {
  if (l != nullptr) evconnlistener_set_error_cb(l, &on_listener_error);
}

void AcceptBackoff::failed(int err) {
  metrics_->accept_error(accept_error_reason(err));
  if (resume_timer_.pending()) return;  // already paused (another listener's failure)
  // Failing again soon after a resume: the shortage goes on, so pause twice as long.
  const auto now = std::chrono::steady_clock::now();
  const bool streak =
      pause_ms_ > 0 && now - resumed_at_ < std::chrono::milliseconds(2 * kMaxPauseMs);
  pause_ms_ = streak ? std::min(pause_ms_ * 2, kMaxPauseMs) : kFirstPauseMs;
  wsgate::log::warn(std::string("accept failed: ") + std::strerror(err) +
                    (err == EMFILE || err == ENFILE ? " (raise the open file limit)" : "") +
                    "; not accepting new connections for " + std::to_string(pause_ms_) + " ms");
  for (const auto& l : *listeners_)
    if (l) evconnlistener_disable(l.get());
  resume_timer_.arm_ms(pause_ms_);
}

void AcceptBackoff::resume() {
  resumed_at_ = std::chrono::steady_clock::now();
  for (const auto& l : *listeners_)
    if (l) evconnlistener_enable(l.get());
}

}  // namespace wsgate::gateway
