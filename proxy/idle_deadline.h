// "No progress for `limit`": a deadline that moves with every bit of progress. It is an
// entry on the worker's IdleTimeouts (proxy/idle_timeouts.h): starting, progress and
// cancelling are list operations on the loop's cached clock, with no libevent event made,
// added or deleted per request (issue 13). A forwarded request makes progress several
// times (connected, answered, each piece of content).
#pragma once

#include <functional>
#include <utility>

#include "proxy/idle_timeouts.h"

namespace wsgate::proxy {

class IdleDeadline final : private IdleTimeouts::Entry {
 public:
  template <typename F>
  IdleDeadline(IdleTimeouts& timeouts, F&& on_expired)
      : timeouts_(timeouts), expired_(std::forward<F>(on_expired)) {}
  IdleDeadline(const IdleDeadline&) = delete;
  IdleDeadline& operator=(const IdleDeadline&) = delete;
  ~IdleDeadline() override = default;

  // Starts (or restarts) the deadline: `limit_ms` from now, and from each progress().
  void start(long long limit_ms) { timeouts_.add(*this, limit_ms); }
  void progress() { timeouts_.touch(*this, timeouts_.now_ms()); }
  void cancel() { timeouts_.remove(*this); }

 private:
  void on_idle_timeout() override { expired_(); }

  IdleTimeouts& timeouts_;
  std::function<void()> expired_;
};

// A one-shot timer for a timeout taken from the config: on the worker's IdleTimeouts once
// use() names it (arming and cancelling are list operations; each distinct timeout is one
// list there, so the values must be few), else on its own libevent event.
class DeadlineTimer final : private IdleTimeouts::Entry {
 public:
  template <typename F>
  DeadlineTimer(event_base* base, F&& fn)
      : fn_(std::forward<F>(fn)), timer_(base, [this] { fn_(); }) {}
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;
  ~DeadlineTimer() override = default;

  void use(IdleTimeouts* timeouts) {
    cancel();
    timeouts_ = timeouts;
  }
  void arm_ms(long long ms) {
    if (timeouts_ != nullptr) {
      timeouts_->add(*this, ms);
    } else {
      timer_.arm_ms(ms);
    }
  }
  void cancel() {
    if (timeouts_ != nullptr) {
      timeouts_->remove(*this);
    } else {
      timer_.cancel();
    }
  }

 private:
  void on_idle_timeout() override { fn_(); }

  IdleTimeouts* timeouts_ = nullptr;
  std::function<void()> fn_;
  Timer timer_;  // its event is made on first use: never, once use() named the IdleTimeouts
};

}  // namespace wsgate::proxy
