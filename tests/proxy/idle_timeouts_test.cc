// IdleTimeouts (proxy/idle_timeouts.h): many idle deadlines on one timer. Sweeps are run
// by hand against a fake clock, except for the last case, which runs the real timer.
#include "proxy/idle_timeouts.h"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace wsgate;
using proxy::IdleTimeouts;

namespace {

struct Clock {
  int64_t now = 1'000'000;
};

struct Item final : IdleTimeouts::Entry {
  Item(std::string n, std::vector<std::string>& l) : name(std::move(n)), log(l) {}
  std::string name;
  std::vector<std::string>& log;
  std::function<void()> then;  // runs after the expiry is logged
  int quiet = 0;
  void on_idle_timeout() override {
    log.push_back(name);
    if (then) then();
  }
  void on_quiet() override { ++quiet; }
  using Entry::listed;
};

struct Fixture {
  EventBasePtr base{event_base_new()};
  Clock clock;
  std::vector<std::string> log;
  IdleTimeouts idle;
  explicit Fixture(std::size_t max_per_sweep = 512)
      : idle(base.get(), max_per_sweep, [this] { return clock.now; }) {}
};

}  // namespace

TEST_CASE("IdleTimeouts: entries expire in deadline order, across timeouts") {
  Fixture f;
  Item a("a", f.log), b("b", f.log), c("c", f.log);
  f.idle.add(a, 300);  // due at +300
  f.clock.now += 100;
  f.idle.add(b, 100);  // due at +200
  f.idle.add(c, 300);  // due at +400
  CHECK(f.idle.size() == 3);
  CHECK(f.idle.armed_for() == f.clock.now + 50);  // b's quiet point (half its timeout)
  f.clock.now += 98;
  f.idle.sweep();
  CHECK(f.log.empty());
  CHECK(a.quiet == 1);  // idle for half its timeout
  f.clock.now += 2;     // +200
  CHECK(f.idle.sweep() == 1);
  CHECK(f.log == std::vector<std::string>{"b"});
  CHECK_FALSE(b.listed());
  CHECK(f.idle.armed_for() == 1'000'000 + 250);  // c's quiet point, then a's deadline
  f.clock.now += 200;                            // +400: a and c
  CHECK(f.idle.sweep() == 2);
  CHECK(f.log == std::vector<std::string>{"b", "a", "c"});
  CHECK(f.idle.size() == 0);
  CHECK(f.idle.armed_for() == -1);
}

TEST_CASE("IdleTimeouts: due within the loop clock's millisecond, as the relay's old timer") {
  Fixture f;
  Item a("a", f.log);
  f.idle.add(a, 100);
  f.clock.now += 98;
  CHECK(f.idle.sweep() == 0);
  f.clock.now += 1;
  CHECK(f.idle.sweep() == 1);
}

TEST_CASE("IdleTimeouts: activity moves the deadline, and add() again re-arms") {
  Fixture f;
  Item a("a", f.log), b("b", f.log);
  f.idle.add(a, 1000);
  f.idle.add(b, 1000);
  f.clock.now += 900;
  f.idle.touch(a, f.clock.now);  // a is now due at +1900
  f.clock.now += 100;
  CHECK(f.idle.sweep() == 1);
  CHECK(f.log == std::vector<std::string>{"b"});
  f.clock.now += 898;
  CHECK(f.idle.sweep() == 0);
  f.clock.now += 2;
  CHECK(f.idle.sweep() == 1);
  CHECK(f.log == std::vector<std::string>{"b", "a"});
  // An expired entry is off the list: add() starts it again.
  f.idle.add(a, 50);
  f.clock.now += 50;
  CHECK(f.idle.sweep() == 1);
  CHECK(f.log == std::vector<std::string>{"b", "a", "a"});
}

TEST_CASE("IdleTimeouts: a removed or destroyed entry never expires") {
  Fixture f;
  Item a("a", f.log);
  f.idle.add(a, 100);
  {
    Item gone("gone", f.log);
    f.idle.add(gone, 100);
    CHECK(f.idle.size() == 2);
  }
  CHECK(f.idle.size() == 1);
  f.idle.remove(a);
  f.idle.remove(a);  // twice is harmless
  CHECK_FALSE(a.listed());
  f.clock.now += 1000;
  CHECK(f.idle.sweep() == 0);
  CHECK(f.log.empty());
}

TEST_CASE("IdleTimeouts: an expiry may remove or add other entries") {
  Fixture f;
  Item a("a", f.log), b("b", f.log), c("c", f.log), d("d", f.log);
  f.idle.add(a, 100);
  f.idle.add(b, 100);
  f.idle.add(c, 100);
  a.then = [&] {
    f.idle.remove(b);     // the next in line goes
    f.idle.add(d, 7000);  // a timeout with no list yet
  };
  f.clock.now += 100;
  CHECK(f.idle.sweep() == 2);
  CHECK(f.log == std::vector<std::string>{"a", "c"});
  CHECK(d.listed());
  f.clock.now += 7000;
  f.idle.sweep();
  CHECK(f.log == std::vector<std::string>{"a", "c", "d"});
}

TEST_CASE("IdleTimeouts: a sweep expires at most max_per_sweep, the rest on the next turn") {
  Fixture f(3);
  std::vector<std::unique_ptr<Item>> items;
  for (int i = 0; i < 7; ++i) {
    items.push_back(std::make_unique<Item>(std::to_string(i), f.log));
    f.idle.add(*items.back(), 10);
  }
  f.clock.now += 10;
  CHECK(f.idle.sweep() == 3);
  CHECK(f.idle.armed_for() == f.clock.now);  // at once: the next loop turn
  CHECK(f.idle.sweep() == 3);
  CHECK(f.idle.sweep() == 1);
  CHECK(f.log == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6"});  // in order
  CHECK(f.idle.armed_for() == -1);
}

TEST_CASE("IdleTimeouts: an entry is told once when quiet, again after new activity") {
  Fixture f;
  Item a("a", f.log), b("b", f.log);
  const int64_t quiet = IdleTimeouts::quiet_ms(60'000);
  CHECK(quiet == 5000);
  CHECK(IdleTimeouts::quiet_ms(2000) == 1000);  // half a short timeout
  f.idle.add(a, 60'000);
  f.idle.add(b, 60'000);
  CHECK(f.idle.armed_for() == f.clock.now + quiet);
  f.clock.now += quiet - 2;
  f.idle.sweep();
  CHECK(a.quiet == 0);
  f.clock.now += 2;
  f.idle.sweep();
  CHECK(a.quiet == 1);
  CHECK(b.quiet == 1);
  f.idle.sweep();
  CHECK(a.quiet == 1);  // once
  f.idle.touch(a, f.clock.now);
  CHECK(f.idle.armed_for() == f.clock.now + quiet);  // a's next quiet point
  f.clock.now += quiet;
  f.idle.sweep();
  CHECK(a.quiet == 2);
  CHECK(b.quiet == 1);
  CHECK(f.log.empty());
  // The last one of the list touched while all are quiet: it alone is active again.
  f.idle.touch(a, f.clock.now);
  f.clock.now += quiet;
  f.idle.sweep();
  CHECK(a.quiet == 3);
  CHECK(b.quiet == 1);
}

TEST_CASE("IdleTimeouts: the loop's timer runs the sweeps") {
  EventBasePtr base{event_base_new()};
  IdleTimeouts idle(base.get());
  std::vector<std::string> log;
  Item a("a", log), b("b", log);
  idle.add(a, 40);
  idle.add(b, 20);
  const auto start = std::chrono::steady_clock::now();
  while (log.size() < 2 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5))
    event_base_loop(base.get(), EVLOOP_ONCE);
  CHECK(log == std::vector<std::string>{"b", "a"});
  CHECK(a.quiet == 1);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(35));
}
