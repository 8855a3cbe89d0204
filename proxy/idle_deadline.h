// "No progress for `limit`": a deadline that moves with every bit of progress without a
// timer operation each time. progress() only reads the loop's cached clock; the timer,
// armed once, re-arms itself for the time left when it fires before the deadline (the
// relay's idle check works the same way, proxy/relay/relay.cc). A forwarded request
// makes progress several times (connected, answered, each piece of content): one
// event_add instead of one per step.
#pragma once

#include <event2/event.h>

#include <functional>
#include <utility>

#include "proxy/libevent_ptr.h"

namespace wsgate::proxy {

class IdleDeadline {
 public:
  template <typename F>
  IdleDeadline(event_base* base, F&& on_expired)
      : base_(base), expired_(std::forward<F>(on_expired)), timer_(base, [this] { check(); }) {}
  IdleDeadline(const IdleDeadline&) = delete;
  IdleDeadline& operator=(const IdleDeadline&) = delete;

  // Starts (or restarts) the deadline: `limit_ms` from now, and from each progress().
  void start(long long limit_ms) {
    limit_ms_ = limit_ms;
    progress();
    timer_.arm_ms(limit_ms);
  }
  void progress() { event_base_gettimeofday_cached(base_, &last_); }
  void cancel() { timer_.cancel(); }

 private:
  void check() {
    timeval now{};
    event_base_gettimeofday_cached(base_, &now);
    const long long idle_ms =
        (now.tv_sec - last_.tv_sec) * 1000LL + (now.tv_usec - last_.tv_usec) / 1000;
    if (idle_ms + 1 >= limit_ms_) {
      expired_();
      return;
    }
    timer_.arm_ms(limit_ms_ - idle_ms);
  }

  event_base* base_;
  std::function<void()> expired_;
  long long limit_ms_ = 0;
  timeval last_{};
  Timer timer_;
};

}  // namespace wsgate::proxy
