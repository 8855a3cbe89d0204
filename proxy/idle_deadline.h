// "No progress for `limit`": a deadline that moves with every bit of progress without a
// timer operation each time. progress() only reads the loop's cached clock; the timer,
// armed once, re-arms itself for the time left when it fires before the deadline (the
// relay's idle check works the same way, proxy/relay/relay.cc). A forwarded request
// makes progress several times (connected, answered, each piece of content): one
// event_add instead of one per step.
#pragma once

#include <event2/event.h>
#include <sys/time.h>

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

  // Starts (or restarts) the deadline: `limit_ms` from now, and from each progress(). A
  // timer still pending from an earlier start that fires no later is left alone: it
  // re-arms itself for the rest (a kept-alive connection's wait for each next request
  // costs no event_add then).
  void start(long long limit_ms) {
    limit_ms_ = limit_ms;
    active_ = true;
    progress();
    const timeval due = after_ms(last_, limit_ms);
    if (!timer_.pending() || timercmp(&armed_for_, &due, >)) arm(limit_ms);
  }
  void progress() { event_base_gettimeofday_cached(base_, &last_); }
  // Off until the next start(), without an event_del: a pending timer that fires finds
  // the deadline off and does nothing.
  void pause() { active_ = false; }
  void cancel() {
    active_ = false;
    timer_.cancel();
  }

 private:
  static timeval after_ms(timeval t, long long ms) {
    const timeval d{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    timeval sum{};
    timeradd(&t, &d, &sum);
    return sum;
  }
  void arm(long long ms) {
    timer_.arm_ms(ms);
    timeval now{};
    event_base_gettimeofday_cached(base_, &now);
    armed_for_ = after_ms(now, ms);
  }
  void check() {
    if (!active_) return;
    timeval now{};
    event_base_gettimeofday_cached(base_, &now);
    const long long idle_ms =
        (now.tv_sec - last_.tv_sec) * 1000LL + (now.tv_usec - last_.tv_usec) / 1000;
    if (idle_ms + 1 >= limit_ms_) {
      active_ = false;
      expired_();
      return;
    }
    arm(limit_ms_ - idle_ms);
  }

  event_base* base_;
  std::function<void()> expired_;
  long long limit_ms_ = 0;
  bool active_ = false;
  timeval last_{};
  timeval armed_for_{};  // when the timer fires, while it is pending
  Timer timer_;
};

}  // namespace wsgate::proxy
