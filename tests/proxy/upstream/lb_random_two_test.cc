// balancer = "random_two" (proxy/upstream/lb_random_two.cc): power of two choices, by weight.
#include <doctest/doctest.h>

#include <cmath>

#include "proxy/upstream/load_balancer.h"
#include "tests/proxy/upstream/lb_test_util.h"

using namespace wsgate::proxy;
using namespace wsgate::proxy::test;

TEST_CASE("random_two: 1000 long-lived connections over weights 1:1:2 land near 25/25/50") {
  auto lb = make_random_two(members({1, 1, 2}), 42);
  auto loads = all_eligible({1, 1, 2});
  for (int i = 0; i < 1000; ++i) ++loads[*lb->pick(loads, 0)].active;
  CHECK(std::abs(loads[0].active / 10.0 - 25) <= 5);
  CHECK(std::abs(loads[1].active / 10.0 - 25) <= 5);
  CHECK(std::abs(loads[2].active / 10.0 - 50) <= 5);
}

TEST_CASE("random_two: of two candidates the less loaded wins") {
  auto lb = make_random_two(members({1, 1}), 7);
  std::vector<MemberLoad> loads = {{true, 10}, {true, 0}};
  // With two members both are always drawn: the idle one always wins.
  for (int i = 0; i < 50; ++i) CHECK(*lb->pick(loads, 0) == 1);
}

TEST_CASE("random_two: one eligible member, or none") {
  auto lb = make_random_two(members({1, 1, 1}), 1);
  std::vector<MemberLoad> loads = {{false, 0}, {false, 0}, {true, 99}};
  for (int i = 0; i < 20; ++i) CHECK(*lb->pick(loads, 0) == 2);
  loads[2].eligible = false;
  CHECK_FALSE(lb->pick(loads, 0).has_value());
}
