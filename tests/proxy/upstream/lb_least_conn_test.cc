// balancer = "least_conn" (proxy/upstream/lb_least_conn.cc): fewest connections per weight, ties
// by smooth weighted round robin.
#include <doctest/doctest.h>

#include <cmath>

#include "proxy/upstream/load_balancer.h"
#include "tests/proxy/upstream/lb_test_util.h"

using namespace wsgate::proxy;
using namespace wsgate::proxy::test;

TEST_CASE("least_conn: 1000 long-lived connections over weights 1:1:2 end at 25/25/50") {
  auto lb = make_least_conn(members({1, 1, 2}));
  auto loads = all_eligible({1, 1, 2});
  for (int i = 0; i < 1000; ++i) ++loads[*lb->pick(loads, 0)].active;  // none closes
  CHECK(std::abs(loads[0].active / 10.0 - 25) <= 5);
  CHECK(std::abs(loads[1].active / 10.0 - 25) <= 5);
  CHECK(std::abs(loads[2].active / 10.0 - 50) <= 5);
}

TEST_CASE("least_conn: short connections (all idle) still follow the weights") {
  auto lb = make_least_conn(members({1, 1, 2}));
  const auto s = shares(*lb, all_eligible({1, 1, 2}), 1000);
  CHECK(std::abs(s[0] - 25) <= 5);
  CHECK(std::abs(s[1] - 25) <= 5);
  CHECK(std::abs(s[2] - 50) <= 5);
}

TEST_CASE(
    "least_conn: a server holding long-lived connections gets new ones only once "
    "the others catch up") {
  auto lb = make_least_conn(members({1, 1, 1}));
  auto loads = all_eligible({1, 1, 1});
  loads[0].active = 50;  // e.g. it was alone for a while
  for (int i = 0; i < 100; ++i) {
    const std::size_t m = *lb->pick(loads, 0);
    CHECK(m != 0);
    ++loads[m].active;
  }
  CHECK(loads[0].active == 50);
  CHECK(loads[1].active == 50);
  CHECK(loads[2].active == 50);
  // Now all tie: new connections spread evenly again.
  int to_first = 0;
  for (int i = 0; i < 30; ++i) {
    const std::size_t m = *lb->pick(loads, 0);
    to_first += m == 0 ? 1 : 0;
    ++loads[m].active;
  }
  CHECK(to_first == 10);
}

TEST_CASE("least_conn: ineligible members are skipped even when least loaded") {
  auto lb = make_least_conn(members({1, 1}));
  std::vector<MemberLoad> loads = {{false, 0}, {true, 7}};
  CHECK(*lb->pick(loads, 0) == 1);
  loads[1].eligible = false;
  CHECK_FALSE(lb->pick(loads, 0).has_value());
}
