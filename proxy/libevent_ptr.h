// Owning smart pointers over libevent objects, so every fd and event has one owner and
// is released exactly once (DESIGN.md "Threads and ownership").
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <functional>
#include <memory>

namespace wsgate {

struct EventBaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};
struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
struct BufferEventDeleter {
  void operator()(bufferevent* b) const { bufferevent_free(b); }
};
struct ListenerDeleter {
  void operator()(evconnlistener* l) const { evconnlistener_free(l); }
};
struct DnsBaseDeleter {
  // 1: fail requests still in flight; their callbacks run with an error.
  void operator()(evdns_base* d) const { evdns_base_free(d, 1); }
};
struct EvbufferDeleter {
  void operator()(evbuffer* b) const { evbuffer_free(b); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using BufferEventPtr = std::unique_ptr<bufferevent, BufferEventDeleter>;
using ListenerPtr = std::unique_ptr<evconnlistener, ListenerDeleter>;
using DnsBasePtr = std::unique_ptr<evdns_base, DnsBaseDeleter>;
using EvbufferPtr = std::unique_ptr<evbuffer, EvbufferDeleter>;

// A timer bound to a member function: `Timer t(base, [this] { on_timeout(); });`.
// The callback runs on the base's thread; destroying the Timer cancels it.
//
// The libevent event (128 bytes, plus the allocator's header) is made the first time
// the timer is armed or activated, not at construction: most of a connection's timers
// (a refusal's body deadline, a close handshake's, pipelining and send staging on an
// HTTP/1.1 connection) never run on a relayed WebSocket, and each one held for the
// WebSocket's whole life was idle memory (docs/benchmarks.md, issue 13).
class Timer {
 public:
  template <typename F>
  Timer(event_base* base, F&& fn) : base_(base), fn_(std::forward<F>(fn)) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void arm(const timeval& after) { event_add(ev(), &after); }
  void arm_ms(long long ms) {
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    arm(tv);
  }
  // Runs once the callbacks of this loop iteration are done (no timer, no system call).
  void activate() { event_active(ev(), EV_TIMEOUT, 0); }
  void cancel() {
    if (ev_) event_del(ev_.get());
  }
  bool pending() const { return ev_ && event_pending(ev_.get(), EV_TIMEOUT, nullptr) != 0; }

 private:
  static void trampoline(evutil_socket_t, short, void* self) { static_cast<Timer*>(self)->fn_(); }
  event* ev() {
    if (!ev_) ev_.reset(event_new(base_, -1, 0, &Timer::trampoline, this));
    return ev_.get();
  }
  event_base* base_;
  std::function<void()> fn_;
  EventPtr ev_;  // made on first use
};

}  // namespace wsgate
