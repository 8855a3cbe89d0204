// IdleDeadline and DeadlineTimer (proxy/idle_deadline.h): request deadlines as entries on
// the worker's IdleTimeouts. Sweeps run by hand against a fake clock; the last case runs
// a DeadlineTimer without IdleTimeouts on the real libevent timer.
#include "proxy/idle_deadline.h"

#include <doctest/doctest.h>

using namespace wsgate;
using proxy::DeadlineTimer;
using proxy::IdleDeadline;
using proxy::IdleTimeouts;

namespace {

struct Fixture {
  EventBasePtr base{event_base_new()};
  int64_t now = 1'000'000;
  IdleTimeouts timeouts{base.get(), 512, [this] { return now; }};
  // The clock moves on by `ms`, then the timer's work runs.
  void advance(int64_t ms) {
    now += ms;
    timeouts.sweep();
  }
};

}  // namespace

TEST_CASE("an IdleDeadline expires limit after the last progress, once") {
  Fixture f;
  int expired = 0;
  IdleDeadline d(f.timeouts, [&] { ++expired; });
  d.start(100);
  f.now += 80;
  d.progress();
  f.advance(90);  // 170 since start, 90 since progress
  CHECK(expired == 0);
  f.advance(11);  // 101 since progress
  CHECK(expired == 1);
  f.advance(1000);
  CHECK(expired == 1);
}

TEST_CASE("a cancelled or destroyed IdleDeadline never expires") {
  Fixture f;
  int expired = 0;
  IdleDeadline d(f.timeouts, [&] { ++expired; });
  d.start(50);
  d.cancel();
  {
    IdleDeadline gone(f.timeouts, [&] { ++expired; });
    gone.start(50);
  }
  CHECK(f.timeouts.size() == 0);
  f.advance(100);
  CHECK(expired == 0);
}

TEST_CASE("a DeadlineTimer on IdleTimeouts fires once after its delay and re-arming restarts it") {
  Fixture f;
  int fired = 0;
  DeadlineTimer t(f.base.get(), [&] { ++fired; });
  t.use(&f.timeouts);
  t.arm_ms(200);
  f.now += 150;
  t.arm_ms(200);  // restarted: due at 350 from the start
  f.advance(100);
  CHECK(fired == 0);
  f.advance(101);
  CHECK(fired == 1);
  t.arm_ms(10);
  t.cancel();
  f.advance(100);
  CHECK(fired == 1);
}

TEST_CASE("a DeadlineTimer without IdleTimeouts runs on its own libevent timer") {
  EventBasePtr base{event_base_new()};
  int fired = 0;
  DeadlineTimer t(base.get(), [&] {
    ++fired;
    event_base_loopbreak(base.get());
  });
  t.arm_ms(5);
  // Bounded: the loop ends at the timer, or after 5 s at most.
  timeval limit{5, 0};
  event_base_loopexit(base.get(), &limit);
  event_base_dispatch(base.get());
  CHECK(fired == 1);
}
