#include "gateway/dispatcher.h"

#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace wsgate::gateway {
namespace {

// Records its destruction, and optionally defers another object when it goes.
struct Tracked {
  Tracked(std::vector<int>* l, int i, Dispatcher* d = nullptr)
      : log(l), id(i), defer_on_destroy(d) {}
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  std::vector<int>* log;
  int id;
  Dispatcher* defer_on_destroy;
  ~Tracked() {
    log->push_back(id);
    if (defer_on_destroy) defer_on_destroy->defer_delete(std::make_unique<Tracked>(log, id + 100));
  }
};

TEST_CASE("dispatcher: post() from another thread runs the job on the loop's thread") {
  Dispatcher d;
  std::thread::id job_thread;
  std::atomic<bool> after_loop_ran{false};
  d.start([&] { after_loop_ran = true; });
  d.post([&] {
    job_thread = std::this_thread::get_id();
    d.stop();
  });
  d.join();
  CHECK(d.finished());
  CHECK(after_loop_ran);
  CHECK(job_thread != std::thread::id{});
  CHECK(job_thread != std::this_thread::get_id());
}

TEST_CASE("dispatcher: a deferred object outlives the callback that deferred it") {
  Dispatcher d;
  std::vector<int> log;
  bool alive_after_defer = false;
  int reaps = 0;
  d.set_after_reap([&] {
    ++reaps;
    d.stop();
  });
  d.post([&] {
    d.defer_delete(std::make_unique<Tracked>(&log, 1));
    alive_after_defer = log.empty() && !d.nothing_deferred();
  });
  d.start({});
  d.join();
  CHECK(alive_after_defer);
  CHECK(log == std::vector<int>{1});
  CHECK(reaps == 1);
  CHECK(d.nothing_deferred());
}

TEST_CASE("dispatcher: teardown destroys what deferred objects defer in turn") {
  std::vector<int> log;
  Dispatcher d;
  d.defer_delete(std::make_unique<Tracked>(&log, 1, &d));
  d.destroy_deferred();
  CHECK(log == std::vector<int>{1, 101});
  CHECK(d.nothing_deferred());
}

}  // namespace
}  // namespace wsgate::gateway
