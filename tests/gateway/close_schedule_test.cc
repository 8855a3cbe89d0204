// CloseSchedule (gateway/close_schedule.h): the even offsets, and the closes falling due
// in order and on time on a real event_base.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "gateway/close_schedule.h"

using namespace std::chrono_literals;
using wsgate::gateway::CloseSchedule;
using wsgate::gateway::spread_offsets_ms;

TEST_CASE("spread_offsets_ms: i * spread / n") {
  CHECK(spread_offsets_ms(4, 2000) == std::vector<std::int64_t>{0, 500, 1000, 1500});
  CHECK(spread_offsets_ms(3, 1000) == std::vector<std::int64_t>{0, 333, 666});
  CHECK(spread_offsets_ms(1, 30000) == std::vector<std::int64_t>{0});
  CHECK(spread_offsets_ms(0, 1000).empty());
  CHECK(spread_offsets_ms(3, 0) == std::vector<std::int64_t>{0, 0, 0});
  // Many closes: every one inside the window, never two out of order.
  const auto big = spread_offsets_ms(10000, 30000);
  CHECK(big.front() == 0);
  CHECK(big.back() < 30000);
  for (std::size_t i = 1; i < big.size(); ++i) CHECK(big[i] >= big[i - 1]);
}

TEST_CASE("CloseSchedule closes in order, spread over the window") {
  wsgate::EventBasePtr base(event_base_new());
  std::vector<std::uint64_t> order;
  std::vector<double> at;
  const auto t0 = std::chrono::steady_clock::now();
  CloseSchedule schedule(
      base.get(), [&](const CloseSchedule::Target& t, const CloseSchedule::Close& c) {
        CHECK(c.code == 4000);
        order.push_back(t.id);
        at.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        return true;
      });
  auto close = std::make_shared<CloseSchedule::Close>();
  close->code = 4000;
  std::vector<CloseSchedule::Target> targets;
  for (std::uint64_t id = 1; id <= 5; ++id) targets.push_back({nullptr, id});
  schedule.add(targets, close, 500ms);
  CHECK(order.size() == 1);  // the first is due at once
  CHECK(schedule.scheduled(2));
  CHECK_FALSE(schedule.scheduled(1));
  event_base_dispatch(base.get());  // returns when no timer is left
  CHECK(order == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  REQUIRE(at.size() == 5);
  for (std::size_t i = 0; i < at.size(); ++i) {
    CAPTURE(i);
    CHECK(at[i] >= 0.1 * static_cast<double>(i) - 0.005);
    CHECK(at[i] < 0.1 * static_cast<double>(i) + 0.2);
  }
  CHECK(schedule.pending() == 0);
  // A zero spread closes everything before add() returns.
  order.clear();
  schedule.add(targets, close, 0ms);
  CHECK(order.size() == 5);
}
